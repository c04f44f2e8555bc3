#include "client/client_core.h"

#include <utility>

namespace keel::client {
namespace {

uint64_t SeedOf(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

ClientCore::ClientCore(ClientOptions options)
    : options_(std::move(options)),
      pool_(options_.circuit_breaker),
      budget_(options_.retry_budget, absl::Now()),
      request_ids_([this] { return Random(); }),
      random_(SeedOf(options_.random_seed)) {
  for (const auto& address : options_.endpoints) pool_.Add(address);
}

ClientCore::~ClientCore() { Shutdown(); }

uint64_t ClientCore::Random() {
  absl::MutexLock lock(&random_mu_);
  return random_();
}

bool ClientCore::BeginOp() {
  absl::MutexLock lock(&ops_mu_);
  if (closing_.load()) return false;
  ++ops_;
  return true;
}

void ClientCore::EndOp() {
  absl::MutexLock lock(&ops_mu_);
  --ops_;
}

void ClientCore::Shutdown() {
  {
    absl::MutexLock lock(&ops_mu_);
    if (closing_.exchange(true)) return;
  }
  // Streams end (their closers cancel them); waiting retries and refreshes are
  // cancelled; attempts on the wire end by their deadline.
  std::map<uint64_t, std::function<void()>> closers;
  {
    absl::MutexLock lock(&closers_mu_);
    closers_run_ = true;
    closers.swap(closers_);
  }
  for (auto& [id, close] : closers) close();
  scheduler_.Shutdown();
  absl::MutexLock lock(&ops_mu_);
  ops_mu_.Await(absl::Condition(
      +[](int64_t* ops) { return *ops == 0; }, &ops_));
}

uint64_t ClientCore::AddCloser(std::function<void()> closer) {
  absl::MutexLock lock(&closers_mu_);
  if (closers_run_) return 0;
  const uint64_t id = next_closer_++;
  closers_[id] = std::move(closer);
  return id;
}

void ClientCore::RemoveCloser(uint64_t id) {
  absl::MutexLock lock(&closers_mu_);
  closers_.erase(id);
}

void ClientCore::OnAttemptSent(Endpoint& endpoint) {
  endpoint.attempts.fetch_add(1, std::memory_order_relaxed);
}

void ClientCore::OnAttemptDone(Endpoint& endpoint, const char* method, int attempt,
                               const absl::Status& status, absl::Duration latency,
                               bool endpoint_failed) {
  if (endpoint_failed) {
    endpoint.failures.fetch_add(1, std::memory_order_relaxed);
    endpoint.breaker.OnFailure(absl::Now());
  } else {
    endpoint.breaker.OnSuccess();
  }
  if (options_.on_attempt) {
    options_.on_attempt(AttemptEvent{endpoint.address, method, attempt, status, latency});
  }
}

ClientStats ClientCore::Stats() {
  ClientStats stats;
  const std::shared_ptr<Endpoint> leader = pool_.leader();
  for (const auto& e : pool_.All()) {
    EndpointStats s;
    s.address = e->address;
    s.member_id = e->member_id.load();
    s.is_leader = e == leader;
    s.breaker = e->breaker.state();
    s.attempts = e->attempts.load();
    s.failures = e->failures.load();
    s.breaker_opened = e->breaker.times_opened();
    stats.endpoints.push_back(std::move(s));
  }
  stats.calls = calls_.load();
  stats.retries = retries_.load();
  stats.retries_denied = retries_denied_.load();
  stats.refreshes = refreshes_.load();
  stats.request_id_sessions = request_ids_.sessions_created();
  return stats;
}

}  // namespace keel::client
