#include "server/space_quota.h"

#include "server/alarm_proposal.h"

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
  ProposeAlarm(node_, member_id_, etcdserverpb::NOSPACE, &proposing_);
}

}  // namespace keel::server
