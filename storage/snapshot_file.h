// keel's snapshot file: what Maintenance.Snapshot streams and `keel snapshot save`
// (or `etcdctl snapshot save`) writes — a state-machine snapshot (snapshot.h) made
// self-checking so it can sit on a backup disk and be restored later.
//
//   file    := magic record* end
//   magic   := "KEELSNP1"                               (8 bytes)
//   record  := BE32(n) n bytes of a SnapshotChunk       (n > 0; the chunk's own CRC32C)
//   end     := BE32(0) zero-padding trailer
//   trailer := "KEELEND1" BE32(CRC32C of every byte before the trailer) 20 zero bytes
//
// The padding makes the file's size 32 more than a multiple of 512: etcdctl 3.4's
// `snapshot save` refuses a download whose size is not (it expects bbolt's 512-byte
// aligned file plus a 32-byte SHA-256), so with it the same command saves keel's file.
//
// The first record carries the manifest (revision, compaction point, the RocksDB
// checkpoint's files and their CRC32Cs), then the files' bytes; the last chunk has
// done = true. etcd streams its bbolt file followed by a SHA-256 of it; a keel snapshot
// is not a bbolt file (etcd's tools cannot restore it, keel's cannot restore etcd's).
//
// Thread-safety: each object is used by one thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/internal.pb.h"

namespace keel::storage {

inline constexpr char kSnapshotFileMagic[] = "KEELSNP1";
inline constexpr size_t kSnapshotFileMagicBytes = 8;
inline constexpr char kSnapshotFileTrailerMagic[] = "KEELEND1";
inline constexpr size_t kSnapshotFileTrailerBytes = 32;

// Turns a chunk stream into the file's bytes, piece by piece.
class SnapshotFileEncoder {
 public:
  // The bytes for `chunk` (the magic is prepended to the first one).
  [[nodiscard]] std::string Record(const internalpb::SnapshotChunk& chunk);
  // The end marker and the whole-file checksum; nothing may follow.
  [[nodiscard]] std::string End();

 private:
  std::string Track(std::string bytes);
  bool started_ = false;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;  // Emitted so far.
};

// Reads a snapshot file back as chunks. Open() checks the magic, the end marker and the
// whole-file CRC32C first (one pass), so a truncated or corrupt file is refused before
// anything is installed from it (kDataLoss with what is wrong).
class SnapshotFileReader {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SnapshotFileReader>> Open(
      const std::string& path);
  // The next chunk (each chunk's own CRC is checked by SnapshotInstaller); false after
  // the last one.
  [[nodiscard]] absl::StatusOr<bool> Next(internalpb::SnapshotChunk* chunk);
  [[nodiscard]] uint64_t file_bytes() const { return file_bytes_; }

 private:
  std::ifstream in_;
  std::string path_;
  uint64_t file_bytes_ = 0;
  bool done_ = false;
};

}  // namespace keel::storage
