#include "server/space_quota.h"

namespace keel::server {

SpaceQuota::SpaceQuota(int64_t quota_bytes, uint64_t member_id, storage::KvStore* kv,
                       RaftNode* node, absl::Duration check_interval)
    : quota_bytes_(quota_bytes),
      member_id_(member_id),
      kv_(kv),
      node_(node),
      task_("keel-quota", check_interval, PeriodicTask::FirstRun::kAtStart, [this] { Check(); }) {}

SpaceQuota::~SpaceQuota() { Stop(); }

void SpaceQuota::Check() {
  if (quota_bytes_ <= 0) return;
  const bool exceeded = kv_->Space().live_bytes > quota_bytes_;
  exceeded_ = exceeded;
  if (!exceeded) return;
  for (const auto& a : kv_->Alarms()) {
    if (a.memberid() == member_id_ && a.alarm() == etcdserverpb::NOSPACE) return;
  }
  if (proposing_.exchange(true)) return;
  internalpb::Request request;
  request.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  request.mutable_alarm()->set_memberid(member_id_);
  request.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  // Without a leader this fails; the next check tries again.
  node_->Propose(std::move(request), absl::Now() + absl::Seconds(5),
                 [this](absl::StatusOr<storage::ApplyResult>) { proposing_ = false; });
}

}  // namespace keel::server
