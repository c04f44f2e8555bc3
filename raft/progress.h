// Progress: what a leader knows about one peer's log, and the flow control that decides
// whether it may send more. States (etcd's design):
//   kProbe      next is a guess; send one MsgApp, wait for its answer (or a heartbeat
//               answer) before the next. Entered on election, rejection, unreachability.
//   kReplicate  the peer accepted an append; stream MsgApps optimistically (pipelining),
//               bounded by the in-flight window.
//   kSnapshot   the peer needs a snapshot; send nothing until it reports back.
//
// Invariant: match < next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

namespace keel::raft {

// The window of MsgApps in flight to one peer: (last index, bytes) of each.
class Inflights {
 public:
  Inflights(int max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}
  void Add(uint64_t last_index, uint64_t bytes);
  // Frees every message whose last index is <= index (they were acknowledged).
  void FreeLE(uint64_t index);
  void FreeFirstOne();
  bool Full() const;
  void Reset();
  size_t count() const { return window_.size(); }

 private:
  int max_count_;
  uint64_t max_bytes_;  // 0: no byte bound.
  uint64_t bytes_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> window_;
};

class Progress {
 public:
  enum class State { kProbe, kReplicate, kSnapshot };

  Progress(uint64_t next, int max_inflight_msgs, uint64_t max_inflight_bytes, bool is_learner)
      : next(next), is_learner(is_learner), inflights(max_inflight_msgs, max_inflight_bytes) {}

  // Forgets everything learned in an earlier term: probe from `next`, nothing matched.
  void ResetForNewTerm(uint64_t next);
  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);

  // An append up to `index` was acknowledged. Returns true if match advanced.
  bool MaybeUpdate(uint64_t index);
  // An append at `rejected` was refused; `match_hint` is the highest index that may
  // match. Returns false for a stale rejection.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  // Records that a MsgApp with entries ending at last_index (count > 0) went out.
  void SentEntries(uint64_t last_index, uint64_t count, uint64_t bytes);
  // No more MsgApps until something comes back.
  bool IsPaused() const;

  const char* StateName() const;

  uint64_t match = 0;
  uint64_t next = 1;
  State state = State::kProbe;
  uint64_t pending_snapshot = 0;  // Index of the snapshot in flight (kSnapshot).
  bool recent_active = false;     // Heard from since the last check-quorum round.
  bool probe_sent = false;        // kProbe: one MsgApp is out, wait for its answer.
  bool is_learner = false;
  Inflights inflights;
};

}  // namespace keel::raft
