#include "server/lessor.h"

#include <chrono>
#include <cmath>

#include "server/errors.h"

namespace keel::server {
namespace {

// Whole seconds in `d`, rounded up (a checkpoint must never shorten a lease).
int64_t CeilSeconds(absl::Duration d) {
  return static_cast<int64_t>(std::ceil(absl::FDivDuration(d, absl::Seconds(1))));
}

}  // namespace

MonotonicClock SteadyClock() {
  return [] { return absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch()); };
}

Lessor::Lessor(LessorOptions options)
    : options_([&] {
        if (!options.now) options.now = SteadyClock();
        return std::move(options);
      }()) {}

absl::Status Lessor::Promote(
    uint64_t term, absl::FunctionRef<absl::StatusOr<std::vector<internalpb::StoredLease>>()> load) {
  std::lock_guard<std::mutex> lock(mu_);
  Forget();
  absl::StatusOr<std::vector<internalpb::StoredLease>> stored = load();
  if (!stored.ok()) return stored.status();
  const absl::Duration now = options_.now();
  leases_.reserve(stored->size());
  for (const auto& s : *stored) {
    Lease& lease = leases_[s.id()];
    lease.granted_ttl_s = s.granted_ttl_s();
    lease.checkpointed = s.remaining_ttl_s() > 0;
    const int64_t remaining_s = lease.checkpointed ? s.remaining_ttl_s() : s.granted_ttl_s();
    lease.deadline = now + absl::Seconds(remaining_s) + options_.promotion_extension;
    Enqueue(s.id(), lease, lease.deadline);
  }
  next_checkpoint_ = now + options_.checkpoint_interval;
  term_ = term;
  return absl::OkStatus();
}

void Lessor::Demote() {
  std::lock_guard<std::mutex> lock(mu_);
  Forget();
}

void Lessor::Forget() {
  term_ = 0;
  leases_.clear();
  by_time_.clear();
}

bool Lessor::primary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return term_ != 0;
}

uint64_t Lessor::primary_term() const {
  std::lock_guard<std::mutex> lock(mu_);
  return term_;
}

size_t Lessor::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.size();
}

void Lessor::Enqueue(int64_t id, Lease& lease, absl::Duration at) {
  by_time_.erase({lease.queue_time, id});
  lease.queue_time = at;
  by_time_.emplace(at, id);
}

void Lessor::OnGranted(int64_t id, int64_t ttl_s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (term_ == 0 || leases_.contains(id)) return;
  Lease& lease = leases_[id];
  lease.granted_ttl_s = ttl_s;
  lease.deadline = options_.now() + absl::Seconds(ttl_s);
  Enqueue(id, lease, lease.deadline);
}

void Lessor::OnRevoked(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  by_time_.erase({it->second.queue_time, id});
  leases_.erase(it);
}

Lessor::RenewResult Lessor::Renew(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  RenewResult result;
  if (term_ == 0) {
    result.outcome = RenewOutcome::kNotPrimary;
    return result;
  }
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    result.outcome = RenewOutcome::kUnknown;
    return result;
  }
  Lease& lease = it->second;
  const absl::Duration now = options_.now();
  if (lease.revoking || lease.deadline <= now) {
    result.outcome = RenewOutcome::kExpired;
    return result;
  }
  lease.deadline = now + absl::Seconds(lease.granted_ttl_s);
  Enqueue(id, lease, lease.deadline);
  result.outcome = RenewOutcome::kRenewed;
  result.ttl_s = lease.granted_ttl_s;
  result.clear_checkpoint = lease.checkpointed;
  lease.checkpointed = false;
  return result;
}

void Lessor::RestoreCheckpointed(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.checkpointed = true;
}

absl::StatusOr<Lessor::TimeToLiveResult> Lessor::TimeToLive(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (term_ == 0) return ErrNotLeader();
  TimeToLiveResult result;
  auto it = leases_.find(id);
  if (it == leases_.end()) return result;
  const Lease& lease = it->second;
  result.granted_s = lease.granted_ttl_s;
  const absl::Duration left = lease.deadline - options_.now();
  if (lease.revoking || left <= absl::ZeroDuration()) return result;
  result.found = true;
  result.remaining_s = absl::ToInt64Seconds(left);
  return result;
}

std::vector<int64_t> Lessor::TakeExpired(size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> expired;
  if (term_ == 0) return expired;
  const absl::Duration now = options_.now();
  while (expired.size() < max && !by_time_.empty() && by_time_.begin()->first <= now) {
    const int64_t id = by_time_.begin()->second;
    Lease& lease = leases_.at(id);
    lease.revoking = true;
    Enqueue(id, lease, now + options_.revoke_retry);
    expired.push_back(id);
  }
  return expired;
}

void Lessor::RevokeFailed(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end() || !it->second.revoking) return;
  Enqueue(id, it->second, options_.now());
}

std::vector<etcdserverpb::LeaseCheckpoint> Lessor::TakeCheckpoints() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<etcdserverpb::LeaseCheckpoint> checkpoints;
  const absl::Duration now = options_.now();
  if (term_ == 0 || now < next_checkpoint_) return checkpoints;
  next_checkpoint_ = now + options_.checkpoint_interval;
  for (auto& [id, lease] : leases_) {
    const absl::Duration left = lease.deadline - now;
    if (lease.revoking || left <= absl::ZeroDuration()) continue;  // About to be revoked.
    const int64_t remaining_s = CeilSeconds(left);
    int64_t record;
    if (remaining_s < lease.granted_ttl_s) {
      record = remaining_s;
    } else if (lease.checkpointed) {
      record = 0;  // Back at its full TTL (renewed): clear the stale record.
    } else {
      continue;  // "None recorded" already means the full TTL.
    }
    lease.checkpointed = record != 0;
    auto& cp = checkpoints.emplace_back();
    cp.set_id(id);
    cp.set_remaining_ttl(record);
  }
  return checkpoints;
}

}  // namespace keel::server
