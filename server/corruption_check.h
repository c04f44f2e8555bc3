// CorruptionCheck: etcd's periodic corruption check (--corrupt-check-time, etcd's
// --experimental-corrupt-check-time). Every interval the leader hashes its key space and
// history (KvStore::HashKv) at its current revision and asks every other member for the
// same hash at that revision (Maintenance.HashKV on its client URL). A member that has
// the same compaction point but a different hash holds different data: the leader
// raises a CORRUPT alarm for it through raft, which makes every member refuse reads and
// writes of keys and leases with etcd's "etcdserver: corrupt cluster" until an operator
// disarms it (keel alarm disarm / etcdctl alarm disarm) — divergent replicas must not
// keep answering. Members that lag (the revision is in their future), have compacted
// further, or do not answer are skipped until the next round.
//
// Cost: one full scan of the key space and the history since the last compaction per
// member per round, which is why it is off by default (as in etcd).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"
#include "server/membership.h"
#include "server/periodic_task.h"
#include "server/raft_node.h"
#include "storage/kv_store.h"

namespace keel::server {

class CorruptionCheck {
 public:
  // interval 0: off (Start does nothing). `kv`, `node` and `members` must outlive it.
  CorruptionCheck(absl::Duration interval, uint64_t member_id, storage::KvStore* kv, RaftNode* node,
                  const MemberDirectory* members);
  ~CorruptionCheck();
  CorruptionCheck(const CorruptionCheck&) = delete;
  CorruptionCheck& operator=(const CorruptionCheck&) = delete;

  void Start() {
    if (interval_ > absl::ZeroDuration()) task_.Start();
  }
  void Stop() { task_.Stop(); }  // Idempotent.

  // One round now, if this member leads: the ids of the members whose hash differed
  // (a CORRUPT alarm is proposed for each that has none yet).
  std::vector<uint64_t> CheckOnce();

 private:
  etcdserverpb::Maintenance::Stub* Stub(const std::string& address);

  const absl::Duration interval_;
  const uint64_t member_id_;
  storage::KvStore* const kv_;
  RaftNode* const node_;
  const MemberDirectory* const members_;
  std::map<std::string, std::unique_ptr<etcdserverpb::Maintenance::Stub>> stubs_;  // Loop only.
  std::atomic<bool> proposing_{false};  // One alarm proposal in flight at a time.
  PeriodicTask task_;                   // Last: stopped before the rest goes.
};

}  // namespace keel::server
