// Small durable-file helpers for the state machine's directory handling (CURRENT
// pointer, snapshot staging): fsync of files and directories, atomic file replace.
//
// Thread-safety: functions; callers serialize access to the paths they touch.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace keel::storage::mvcc {

// fsync(2) of a file or a directory.
[[nodiscard]] absl::Status FsyncPath(const std::string& path);
// Writes `contents` to `path` atomically and durably: path.tmp, fsync, rename, fsync
// of the parent directory.
[[nodiscard]] absl::Status WriteFileDurably(const std::string& path, const std::string& contents);
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(const std::string& path);
// Parent directory of `path` ("." if none).
[[nodiscard]] std::string ParentDir(const std::string& path);

}  // namespace keel::storage::mvcc
