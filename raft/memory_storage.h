// MemoryStorage: a LogStorage held in memory, for unit tests, the simulator and
// benchmarks of the core. Its write methods mirror what storage/'s RocksDB log does
// after each Ready; "persisting" here is just keeping the data.
//
// Thread-safety: none.
#pragma once

#include <vector>

#include "raft/log_storage.h"

namespace keel::raft {

class MemoryStorage final : public LogStorage {
 public:
  MemoryStorage();

  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  absl::StatusOr<raftpb::Snapshot> GetSnapshot() const override;

  void SetHardState(const raftpb::HardState& hard_state) { hard_state_ = hard_state; }
  // Sets the membership reported by GetInitialState (bootstrap of a new cluster).
  void SetConfState(const raftpb::ConfState& conf_state);

  // Appends entries, replacing stored entries at the same or later indices. Entries
  // must be contiguous and start at or below LastIndex() + 1. Entries wholly below
  // FirstIndex() are ignored.
  [[nodiscard]] absl::Status Append(const std::vector<raftpb::Entry>& entries);

  // Installs a snapshot, dropping the whole log (kFailedPrecondition if it is older
  // than the current one).
  [[nodiscard]] absl::Status ApplySnapshot(const raftpb::Snapshot& snapshot);

  // Records a snapshot the application took at `index` (<= LastIndex()).
  [[nodiscard]] absl::StatusOr<raftpb::Snapshot> CreateSnapshot(uint64_t index,
                                                                const raftpb::ConfState& conf_state,
                                                                std::string data);

  // Discards entries below `compact_index` (which must be <= LastIndex()).
  [[nodiscard]] absl::Status Compact(uint64_t compact_index);

  // Makes GetSnapshot fail with "temporarily unavailable" (tests).
  void set_snapshot_unavailable(bool v) { snapshot_unavailable_ = v; }

 private:
  raftpb::HardState hard_state_;
  raftpb::Snapshot snapshot_;
  // entries_[0] is a dummy holding the snapshot's index and term.
  std::vector<raftpb::Entry> entries_;
  bool snapshot_unavailable_ = false;
};

}  // namespace keel::raft
