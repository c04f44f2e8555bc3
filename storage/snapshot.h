// State-machine snapshots: a RocksDB checkpoint of a KvStore at its applied index,
// streamed as CRC32C-checksummed chunks and installed on another KvStore atomically.
//
// Stream: chunk 0 carries the SnapshotManifest (the Raft SnapshotMetadata — index,
// term, conf state — plus every file's name, size and CRC32C); then each file's bytes
// in manifest order, at least one chunk per file; the last chunk has done = true. Each
// chunk has a CRC32C over its fields (ChunkCrc), so corruption in transit or on disk
// is kDataLoss, never a silently wrong state machine.
//
// Install: chunks are written into <store dir>/incoming.tmp; Finish() checks that the
// stream was complete and every file matches its size and CRC, fsyncs the files and the
// directory, then KvStore::InstallStaged renames it into place and switches the CURRENT
// pointer with an atomic rename (fsync of the parent directory after each step). A crash
// at any point leaves either the old state or the new one; leftovers are removed on Open.
//
// Thread-safety: each object is used by one thread. SnapshotReader::Create and
// SnapshotInstaller::Finish run on the store's apply thread (they call KvStore's
// apply-side methods).
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/internal.pb.h"
#include "proto/raft.pb.h"
#include "storage/kv_store.h"

namespace keel::storage {

// The CRC32C a chunk must carry in its crc32c field.
[[nodiscard]] uint32_t ChunkCrc(const internalpb::SnapshotChunk& chunk);

class SnapshotReader {
 public:
  // Checkpoints `store` into `checkpoint_dir` (must not exist; removed again when the
  // reader is destroyed). metadata.index() must equal store.AppliedIndex().
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SnapshotReader>> Create(
      KvStore& store, const raftpb::SnapshotMetadata& metadata, std::string checkpoint_dir,
      uint64_t chunk_bytes = 1u << 20);
  ~SnapshotReader();

  [[nodiscard]] const internalpb::SnapshotManifest& manifest() const { return manifest_; }
  // Fills the next chunk; false once the stream is over.
  [[nodiscard]] absl::StatusOr<bool> Next(internalpb::SnapshotChunk* chunk);

 private:
  SnapshotReader(std::string dir, uint64_t chunk_bytes)
      : dir_(std::move(dir)), chunk_bytes_(chunk_bytes) {}

  std::string dir_;
  uint64_t chunk_bytes_;
  internalpb::SnapshotManifest manifest_;
  uint64_t seq_ = 0;
  int file_ = -1;  // -1: the manifest chunk is next.
  uint64_t offset_ = 0;
  bool done_ = false;
  std::ifstream in_;
};

class SnapshotInstaller {
 public:
  // Starts receiving into <store_dir>/incoming.tmp (replacing any older attempt).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SnapshotInstaller>> Begin(
      const std::string& store_dir);
  ~SnapshotInstaller();

  // Chunks must come in order. kDataLoss on a checksum mismatch, kInvalidArgument on an
  // out-of-order or malformed chunk; after an error the installer is unusable.
  [[nodiscard]] absl::Status Add(const internalpb::SnapshotChunk& chunk);
  // Verifies the staged files and replaces `store`'s whole state with them. Returns the
  // manifest (its metadata is the Raft snapshot metadata to record in the log store).
  [[nodiscard]] absl::StatusOr<internalpb::SnapshotManifest> Finish(KvStore& store);

 private:
  explicit SnapshotInstaller(std::string dir) : dir_(std::move(dir)) {}
  [[nodiscard]] absl::Status CloseFile();

  std::string dir_;
  internalpb::SnapshotManifest manifest_;
  uint64_t next_seq_ = 0;
  int file_ = -1;
  uint64_t offset_ = 0;
  uint32_t file_crc_ = 0;
  int fd_ = -1;
  bool done_ = false;
  bool failed_ = false;
  bool installed_ = false;
};

}  // namespace keel::storage
