// Client: Connect, lifetime, and the calls about the client itself.
#include "keel/client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client_core.h"
#include "client/endpoint.h"

namespace keel {
namespace {

absl::Status CheckPositive(absl::Duration d, const char* name) {
  if (d > absl::ZeroDuration()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("ClientOptions.", name, " must be > 0"));
}

absl::Status Validate(ClientOptions* options) {
  if (options->endpoints.empty()) {
    return absl::InvalidArgumentError("ClientOptions.endpoints is empty: give at least one");
  }
  for (auto& e : options->endpoints) {
    absl::StatusOr<std::string> address = client::NormalizeEndpoint(e);
    if (!address.ok()) return address.status();
    e = *std::move(address);
  }
  for (auto [d, name] : {std::pair{options->call_timeout, "call_timeout"},
                         std::pair{options->attempt_timeout, "attempt_timeout"},
                         std::pair{options->connect_timeout, "connect_timeout"}}) {
    absl::Status s = CheckPositive(d, name);
    if (!s.ok()) return s;
  }
  if (options->backoff.multiplier < 1.0) {
    return absl::InvalidArgumentError("ClientOptions.backoff.multiplier must be >= 1");
  }
  if (options->retry_budget.retry_ratio < 0 || options->retry_budget.max_tokens < 0 ||
      options->retry_budget.min_retries_per_second < 0) {
    return absl::InvalidArgumentError("ClientOptions.retry_budget fields must be >= 0");
  }
  if (options->circuit_breaker.failure_threshold < 1) {
    return absl::InvalidArgumentError(
        "ClientOptions.circuit_breaker.failure_threshold must be >= 1");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  absl::Status valid = Validate(&options);
  if (!valid.ok()) return valid;
  const std::string endpoints = absl::StrJoin(options.endpoints, ", ");
  const absl::Duration timeout = options.connect_timeout;
  auto core = std::make_unique<client::ClientCore>(std::move(options));
  absl::Status refreshed = core->RefreshBlocking(timeout);
  if (!refreshed.ok()) {
    return absl::UnavailableError(absl::StrCat("keel: cannot reach any of ", endpoints, " within ",
                                               absl::FormatDuration(timeout), ": ",
                                               refreshed.message()));
  }
  core->StartPeriodicRefresh();
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::Client(std::unique_ptr<client::ClientCore> core) : core_(std::move(core)) {}

Client::~Client() { core_->Shutdown(); }

std::vector<std::string> Client::Endpoints() const {
  std::vector<std::string> out;
  for (const auto& e : core_->pool().All()) out.push_back(e->address);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Client::Leader() const {
  std::shared_ptr<client::Endpoint> leader = core_->pool().leader();
  return leader == nullptr ? std::string() : leader->address;
}

absl::Status Client::Refresh(const CallOptions& options) {
  return core_->RefreshBlocking(
      options.timeout > absl::ZeroDuration() ? options.timeout : core_->options().call_timeout);
}

ClientStats Client::Stats() const { return core_->Stats(); }

}  // namespace keel
