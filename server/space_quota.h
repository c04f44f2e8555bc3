// SpaceQuota: etcd's --quota-backend-bytes. A background check compares the state
// machine's live data (storage::KvStore::Space().live_bytes) with the quota; once it is
// exceeded, this member proposes a NOSPACE alarm for itself through raft, so every
// member records it, it survives restarts, and the state machine refuses Put, Txn with
// a put and LeaseGrant on all members alike (read-and-delete-only mode). The alarm is
// disarmed by Alarm DEACTIVATE (also through raft); if the data is still over the
// quota, the next check raises it again.
//
// The services also refuse such writes up front while Exceeded() (no raft round trip),
// as etcd's API layer does.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "server/periodic_task.h"
#include "server/raft_node.h"
#include "storage/kv_store.h"

namespace keel::server {

class SpaceQuota {
 public:
  // quota_bytes 0: no quota (never raises an alarm). `kv` and `node` must outlive it.
  SpaceQuota(int64_t quota_bytes, uint64_t member_id, storage::KvStore* kv, RaftNode* node,
             absl::Duration check_interval = absl::Milliseconds(500));
  ~SpaceQuota();
  SpaceQuota(const SpaceQuota&) = delete;
  SpaceQuota& operator=(const SpaceQuota&) = delete;

  void Start() {
    if (quota_bytes_ > 0) task_.Start();
  }
  void Stop() { task_.Stop(); }  // Idempotent.

  // The last check found the live data over the quota.
  [[nodiscard]] bool Exceeded() const { return exceeded_.load(); }
  [[nodiscard]] int64_t quota_bytes() const { return quota_bytes_; }

  // One check now: updates Exceeded() and proposes the alarm if needed.
  void Check();

 private:
  const int64_t quota_bytes_;
  const uint64_t member_id_;
  storage::KvStore* const kv_;
  RaftNode* const node_;
  std::atomic<bool> exceeded_{false};
  std::atomic<bool> proposing_{false};  // One alarm proposal in flight at a time.
  PeriodicTask task_;                   // Last: stopped before the rest goes.
};

}  // namespace keel::server
