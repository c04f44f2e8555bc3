// RaftLog: the log as the consensus core sees it — the durable part in LogStorage plus
// the "unstable" tail (entries and possibly a snapshot) that the application has not yet
// persisted, with the commit and apply cursors.
//
// Index layout:
//   storage:  [FirstIndex() .......... storage last]
//   unstable:                  [unstable_offset_ ...... LastIndex()]
// Unstable entries win where the two overlap (they replace a conflicting stored suffix
// once persisted).
//
// Invariant: applied_ <= committed_ <= LastIndex().
// Thread-safety: none (owned by Raft).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "raft/log_storage.h"

namespace keel::raft {

class RaftLog {
 public:
  RaftLog(LogStorage* storage, uint64_t max_committed_size_per_ready_bytes);

  // Reads the storage's bounds; committed and applied start just below its first index.
  [[nodiscard]] absl::Status Init();

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Term at i; 0 for an index beyond the log or unknown; errors from storage (compacted).
  [[nodiscard]] absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Term at i, or 0 when it cannot be read (never matches a real term).
  uint64_t TermOrZero(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;
  // Raft §5.4.1: is a log ending at (last_index, last_term) at least as up to date?
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // AppendEntries on a follower: if the entry at `index` has `log_term`, appends `entries`
  // (dropping any conflicting suffix), commits up to min(`commit`, last new index), and
  // returns the last new index. nullopt when the consistency check fails.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t commit,
                                      const std::vector<raftpb::Entry>& entries);
  // Appends to the unstable tail (entries[0].index() <= LastIndex() + 1) and returns the
  // new last index. CHECKs that committed entries are never overwritten.
  uint64_t Append(const std::vector<raftpb::Entry>& entries);

  // The largest index <= `index` whose term is <= `term` (fast log backtracking).
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  // Entries [lo, LastIndex()] up to max_bytes (at least one). Errors: compacted.
  [[nodiscard]] absl::StatusOr<std::vector<raftpb::Entry>> EntriesFrom(uint64_t lo,
                                                                       uint64_t max_bytes) const;
  // Entries [lo, hi) up to max_bytes.
  [[nodiscard]] absl::StatusOr<std::vector<raftpb::Entry>> Slice(uint64_t lo, uint64_t hi,
                                                                 uint64_t max_bytes) const;

  void CommitTo(uint64_t index);  // Only ever increases committed.
  void AppliedTo(uint64_t index);

  // Last index known durable (persisted and matching this log); 0 while an unstable
  // snapshot is pending.
  uint64_t StableLastIndex() const;
  // Committed entries that are durable here and not yet handed out for apply.
  bool HasNextCommittedEntries() const;
  [[nodiscard]] absl::StatusOr<std::vector<raftpb::Entry>> NextCommittedEntries() const;

  // The follower side of InstallSnapshot: the log becomes the snapshot alone.
  void Restore(const raftpb::Snapshot& snapshot);
  [[nodiscard]] absl::StatusOr<raftpb::Snapshot> Snapshot() const;

  // Persistence acknowledgements (RawNode::Advance).
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapshotTo(uint64_t index);

  const std::vector<raftpb::Entry>& unstable_entries() const { return unstable_entries_; }
  const std::optional<raftpb::Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  void set_committed_for_restart(uint64_t committed) { committed_ = committed; }

 private:
  // First index the unstable tail may cover.
  uint64_t UnstableLastIndexOr(uint64_t fallback) const;
  // First index in `entries` whose term differs from ours (or beyond our last); 0 if none.
  uint64_t FindConflict(const std::vector<raftpb::Entry>& entries) const;

  LogStorage* storage_;
  const uint64_t max_committed_size_per_ready_bytes_;
  std::optional<raftpb::Snapshot> unstable_snapshot_;
  std::vector<raftpb::Entry> unstable_entries_;
  uint64_t unstable_offset_ = 0;  // Index of unstable_entries_[0] (or where it would be).
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
};

}  // namespace keel::raft
