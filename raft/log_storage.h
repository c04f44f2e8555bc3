// LogStorage: the durable Raft log as the consensus core reads it.
//
// raft/ only reads through this interface; the application writes to it (after each
// Ready) through its own methods: storage/ implements it on RocksDB, MemoryStorage
// (memory_storage.h) in memory for tests and the simulator.
//
// Index ranges: the log holds entries [FirstIndex(), LastIndex()]. Entries below
// FirstIndex() were compacted into the snapshot, whose index is FirstIndex() - 1 and
// whose term Term(FirstIndex() - 1) still answers. An empty log after a snapshot at
// index s has FirstIndex() == s + 1 and LastIndex() == s.
//
// Errors: kOutOfRange "compacted" when asking below the snapshot (see IsCompacted),
// kUnavailable "snapshot temporarily unavailable" from Snapshot(), kDataLoss on a
// checksum mismatch (the node must stop). Any other error is fatal to the node.
//
// Thread-safety: the node loop calls these from one thread at a time; implementations
// that are also written from another thread must synchronise internally.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"

namespace keel::raft {

// What a node recovers on start.
struct InitialState {
  raftpb::HardState hard_state;
  raftpb::ConfState conf_state;  // Membership as of the latest snapshot.
};

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  [[nodiscard]] virtual absl::StatusOr<InitialState> GetInitialState() const = 0;

  // Entries [lo, hi), lo >= FirstIndex(), hi <= LastIndex() + 1. Returns at least one
  // entry when lo < hi, then stops before the total ByteSize() would exceed max_bytes.
  [[nodiscard]] virtual absl::StatusOr<std::vector<raftpb::Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const = 0;

  // Term of the entry at i, for FirstIndex() - 1 <= i <= LastIndex().
  [[nodiscard]] virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;

  [[nodiscard]] virtual uint64_t FirstIndex() const = 0;
  [[nodiscard]] virtual uint64_t LastIndex() const = 0;

  // The most recent snapshot (its metadata and data handle).
  [[nodiscard]] virtual absl::StatusOr<raftpb::Snapshot> GetSnapshot() const = 0;
};

// The error a LogStorage returns for an index below its first index.
[[nodiscard]] absl::Status CompactedError(uint64_t index);
[[nodiscard]] bool IsCompacted(const absl::Status& status);

// The error GetSnapshot returns while a snapshot is being made; raft retries later.
[[nodiscard]] absl::Status SnapshotTemporarilyUnavailableError();
[[nodiscard]] bool IsSnapshotTemporarilyUnavailable(const absl::Status& status);

// Total ByteSize() of entries, as the byte limits count them.
[[nodiscard]] uint64_t EntriesSize(const std::vector<raftpb::Entry>& entries);

// Truncates `entries` to the longest prefix within max_bytes, keeping at least one.
void LimitSize(std::vector<raftpb::Entry>* entries, uint64_t max_bytes);

}  // namespace keel::raft
