#include "client/endpoint_pool.h"

#include <algorithm>

namespace keel::client {

void EndpointPool::Add(const std::string& address) {
  absl::MutexLock lock(&mu_);
  for (const auto& e : endpoints_) {
    if (e->address == address) return;
  }
  endpoints_.push_back(std::make_shared<Endpoint>(address, breaker_options_));
  std::sort(endpoints_.begin(), endpoints_.end(),
            [](const auto& a, const auto& b) { return a->address < b->address; });
}

std::shared_ptr<Endpoint> EndpointPool::Pick(const Route& route, const Endpoint* avoid,
                                             absl::Time now, absl::Time* retry_at) {
  absl::MutexLock lock(&mu_);
  switch (route.kind) {
    case Route::Kind::kFixed:
      for (const auto& e : endpoints_) {
        if (e->address == route.address) return e;
      }
      return std::make_shared<Endpoint>(route.address, breaker_options_);
    case Route::Kind::kLeader:
      if (leader_ != nullptr && leader_.get() != avoid && leader_->breaker.Allow(now)) {
        return leader_;
      }
      return PickAnyLocked(avoid, now, retry_at);
    case Route::Kind::kAny:
      return PickAnyLocked(avoid, now, retry_at);
  }
  return nullptr;
}

std::shared_ptr<Endpoint> EndpointPool::PickAnyLocked(const Endpoint* avoid, absl::Time now,
                                                      absl::Time* retry_at) {
  const size_t n = endpoints_.size();
  const size_t start = next_++;
  for (size_t i = 0; i < n; ++i) {
    const auto& e = endpoints_[(start + i) % n];
    if (e.get() != avoid && e->breaker.Allow(now)) return e;
  }
  // Only the avoided endpoint is left: better than nothing.
  for (const auto& e : endpoints_) {
    if (e.get() == avoid && e->breaker.Allow(now)) return e;
  }
  absl::Time first = absl::InfiniteFuture();
  for (const auto& e : endpoints_) first = std::min(first, e->breaker.open_until());
  *retry_at = first;
  return nullptr;
}

std::vector<std::shared_ptr<Endpoint>> EndpointPool::All() const {
  absl::MutexLock lock(&mu_);
  return endpoints_;
}

std::shared_ptr<Endpoint> EndpointPool::leader() const {
  absl::MutexLock lock(&mu_);
  return leader_;
}

void EndpointPool::SetLeader(uint64_t member_id) {
  absl::MutexLock lock(&mu_);
  leader_ = nullptr;
  if (member_id == 0) return;
  for (const auto& e : endpoints_) {
    if (e->member_id.load() == member_id) leader_ = e;
  }
}

void EndpointPool::SuspectLeader(const Endpoint* endpoint) {
  absl::MutexLock lock(&mu_);
  if (leader_.get() == endpoint) leader_ = nullptr;
}

void EndpointPool::ApplyMembers(const etcdserverpb::MemberListResponse& members) {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Endpoint>> next;
  for (const auto& m : members.members()) {
    std::shared_ptr<Endpoint> chosen;
    for (const auto& e : endpoints_) {  // The member's endpoint we already talk to.
      if (e->member_id.load() == m.id()) chosen = e;
    }
    for (int i = 0; chosen == nullptr && i < m.clienturls_size(); ++i) {
      absl::StatusOr<std::string> address = NormalizeEndpoint(m.clienturls(i));
      if (!address.ok()) continue;
      for (const auto& e : endpoints_) {
        if (e->address == *address) chosen = e;
      }
      if (chosen == nullptr) chosen = std::make_shared<Endpoint>(*address, breaker_options_);
    }
    if (chosen == nullptr) continue;  // No usable client URL (yet).
    chosen->member_id.store(m.id());
    if (std::find(next.begin(), next.end(), chosen) == next.end()) next.push_back(chosen);
  }
  if (next.empty()) return;
  std::sort(next.begin(), next.end(),
            [](const auto& a, const auto& b) { return a->address < b->address; });
  endpoints_ = std::move(next);
  if (leader_ != nullptr &&
      std::find(endpoints_.begin(), endpoints_.end(), leader_) == endpoints_.end()) {
    leader_ = nullptr;
  }
}

}  // namespace keel::client
