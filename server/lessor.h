// Lessor: the leader's live countdown of every lease. Pure bookkeeping — no threads, no
// raft, no I/O, and time comes from an injected monotonic clock — so that tests drive it
// step by step. LeaseManager (lease_manager.h) runs it on the leader and carries its
// decisions out through raft.
//
// Who decides what.
//  - The state machine (storage::KvStore, "lease" column family) holds which leases
//    exist, their granted TTL, their attached keys and their last checkpointed remaining
//    TTL. It never reads a clock: every replica agrees on it.
//  - Only the primary (the lessor of the current leader, promoted for one term) counts
//    down. An expired lease is revoked by a LeaseRevoke entry that the primary proposes
//    for its own term only (RaftNode::Propose's leader_term), so every member deletes
//    the attached keys at the same revision and no deposed leader can expire a lease.
//  - Keep-alives renew on the primary only (followers forward them, lease_manager.h).
//
// The failover rule (remaining TTLs survive a leader change). Every
// `checkpoint_interval` the primary records each lease's remaining TTL (rounded up to a
// whole second) in the state machine through a LeaseCheckpoint entry. A new primary
// starts each lease at
//     deadline = (time it is promoted) + (checkpointed remaining TTL, or the granted TTL
//                if none is recorded) + promotion_extension (one election timeout),
// so after a leader change a lease
//  - expires NO LATER than its last checkpointed remaining TTL + one election timeout
//    after the new leader takes office (etcd without checkpoints restarts every lease at
//    its full TTL on every leader change, so a leader that changes often keeps a dead
//    client's keys forever), and
//  - expires NO EARLIER than the deadline the old leader last acknowledged to a client:
//    a checkpoint only ever records the remaining TTL at a moment before the new leader
//    took office, and a keep-alive of a lease that has a recorded checkpoint is
//    acknowledged only after a LeaseCheckpoint that clears it (remaining 0: "the full
//    granted TTL") has committed. (Clocks are assumed to run at the same rate.)
// The extension gives clients time to find the new leader and send a keep-alive there.
//
// Thread-safety: all methods may be called from any thread (one internal mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "proto/internal.pb.h"

namespace keel::server {

// Time since an arbitrary fixed origin that never goes backwards.
using MonotonicClock = std::function<absl::Duration()>;
// std::chrono::steady_clock.
[[nodiscard]] MonotonicClock SteadyClock();

struct LessorOptions {
  MonotonicClock now;  // Default: SteadyClock().
  // Added to every lease's remaining TTL when a lessor is promoted: one election timeout.
  absl::Duration promotion_extension = absl::Seconds(1);
  // How often the primary records remaining TTLs (TakeCheckpoints).
  absl::Duration checkpoint_interval = absl::Seconds(5);
  // A revoke handed out by TakeExpired that neither applied nor failed within this time
  // is handed out again (its proposal may have been lost).
  absl::Duration revoke_retry = absl::Seconds(5);
};

class Lessor {
 public:
  explicit Lessor(LessorOptions options);

  // Becomes primary for raft term `term` (the caller is leader of it and has applied
  // everything committed before it): `load` reads the state machine's lease table and
  // every lease restarts by the failover rule above. Runs `load` under the lessor's
  // lock, so OnGranted/OnRevoked calls wait for it and none is lost between the load and
  // the promotion. On a `load` error the lessor stays a follower.
  [[nodiscard]] absl::Status Promote(
      uint64_t term,
      absl::FunctionRef<absl::StatusOr<std::vector<internalpb::StoredLease>>()> load);
  // Stops counting down and forgets every lease (the state machine keeps them).
  void Demote();
  [[nodiscard]] bool primary() const;
  // The term the lessor is primary for; 0 when not primary.
  [[nodiscard]] uint64_t primary_term() const;

  // The state machine applied a grant / a revoke (any proposer). Ignored unless primary.
  // Idempotent: a grant of a known lease and a revoke of an unknown one change nothing
  // (they may repeat what Promote's load already saw).
  void OnGranted(int64_t id, int64_t ttl_s);
  void OnRevoked(int64_t id);

  enum class RenewOutcome {
    kRenewed,     // Deadline is now + granted TTL; ttl_s is the granted TTL.
    kUnknown,     // No such lease here (perhaps granted but not yet applied).
    kExpired,     // Past its deadline: being revoked. Answer TTL 0 (etcd's "not found").
    kNotPrimary,  // Not the primary: forward to the leader.
  };
  struct RenewResult {
    RenewOutcome outcome = RenewOutcome::kUnknown;
    int64_t ttl_s = 0;
    // The state machine holds a checkpointed remaining TTL for this lease: acknowledge
    // the renewal only after a LeaseCheckpoint{id, 0} committed (see the failover rule).
    // On failure call RestoreCheckpointed.
    bool clear_checkpoint = false;
  };
  [[nodiscard]] RenewResult Renew(int64_t id);
  // A checkpoint clear from Renew could not be committed: the state machine may still
  // hold the old remaining TTL.
  void RestoreCheckpointed(int64_t id);

  struct TimeToLiveResult {
    bool found = false;        // Known to the primary and not expired.
    int64_t remaining_s = -1;  // Whole seconds left (truncated, as etcd); -1: not found.
    int64_t granted_s = 0;
  };
  // kUnavailable when not primary.
  [[nodiscard]] absl::StatusOr<TimeToLiveResult> TimeToLive(int64_t id) const;

  // Up to `max` leases whose deadline passed and whose revoke is not in flight; marks
  // them as being revoked (renewals then answer kExpired).
  [[nodiscard]] std::vector<int64_t> TakeExpired(size_t max);
  // The revoke of `id` failed: it may be handed out again at once.
  void RevokeFailed(int64_t id);

  // When a checkpoint round is due (every checkpoint_interval while primary): the
  // remaining TTL of every lease that is not expired, rounded up to whole seconds; a
  // lease at its full TTL is left out (the state machine's "none recorded" already
  // means that), unless a recorded value must be cleared (then remaining_ttl 0).
  // Empty when no round is due.
  [[nodiscard]] std::vector<etcdserverpb::LeaseCheckpoint> TakeCheckpoints();

  // Leases the primary counts down (0 when not primary).
  [[nodiscard]] size_t size() const;

 private:
  struct Lease {
    int64_t granted_ttl_s = 0;
    absl::Duration deadline;
    // The state machine holds (or a proposal in flight will set) a non-zero remaining TTL.
    bool checkpointed = false;
    bool revoking = false;
    // Key in by_time_: the deadline, or for a lease being revoked the time its revoke
    // is handed out again.
    absl::Duration queue_time;
  };
  void Enqueue(int64_t id, Lease& lease, absl::Duration at);  // Requires mu_.
  void Forget();                                              // Requires mu_.

  const LessorOptions options_;
  mutable std::mutex mu_;
  uint64_t term_ = 0;  // 0: not primary.
  absl::flat_hash_map<int64_t, Lease> leases_;
  std::set<std::pair<absl::Duration, int64_t>> by_time_;  // Every lease, by queue_time.
  absl::Duration next_checkpoint_;
};

}  // namespace keel::server
