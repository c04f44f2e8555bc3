// Raising an alarm from a background check (the space quota's NOSPACE, the corruption
// check's CORRUPT): an ACTIVATE alarm request through raft, so every member records it.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "server/raft_node.h"

namespace keel::server {

// Proposes `type` for `member_id` unless a proposal of the caller's is still in flight
// (`in_flight`, cleared when raft answers). Without a leader it fails quietly: the
// caller's next round tries again. `in_flight` must outlive the node's answer.
inline void ProposeAlarm(RaftNode* node, uint64_t member_id, etcdserverpb::AlarmType type,
                         std::atomic<bool>* in_flight) {
  if (in_flight->exchange(true)) return;
  internalpb::Request request;
  request.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  request.mutable_alarm()->set_memberid(member_id);
  request.mutable_alarm()->set_alarm(type);
  node->Propose(std::move(request), absl::Now() + absl::Seconds(5),
                [in_flight](absl::StatusOr<storage::ApplyResult>) { *in_flight = false; });
}

}  // namespace keel::server
