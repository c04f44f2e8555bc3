// Options of keel::Client: endpoints, deadlines, and the retry machinery (backoff,
// retry budget, circuit breaker). Every field states its default; the defaults suit a
// 3- or 5-member cluster on a LAN.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace keel {

// Exponential backoff with full jitter: retry n (0-based) waits a uniformly random
// time in [0, min(max, initial * multiplier^n)]. Full jitter spreads the retries of
// many clients that failed at the same moment (a leader crash) instead of bunching
// them into waves.
struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(25);
  absl::Duration max = absl::Seconds(1);
  double multiplier = 2.0;
  // RESOURCE_EXHAUSTED ("too many requests") means the cluster is overloaded: its
  // retries start from this larger ceiling so they back off for real.
  absl::Duration overloaded_initial = absl::Milliseconds(100);
};

// A token bucket that bounds retries to a fraction of the requests: every call
// deposits `retry_ratio` tokens, every retry takes one, and `min_retries_per_second`
// tokens trickle in so a client that sends little can still retry a little. The
// bucket holds at most `max_tokens`. When it is empty a call fails with its last
// error instead of retrying, so a failing cluster sees at most ~(1 + retry_ratio)
// times the offered load, never a retry storm.
struct RetryBudgetOptions {
  double retry_ratio = 0.2;
  double min_retries_per_second = 10;
  double max_tokens = 200;
};

// A circuit breaker per endpoint: after `failure_threshold` consecutive failures
// (connection errors, attempt timeouts) the endpoint is skipped ("open") for
// `open_initial`; then one probe request may go ("half-open"): success closes the
// breaker, failure re-opens it for twice as long, up to `open_max`.
struct CircuitBreakerOptions {
  int failure_threshold = 3;
  absl::Duration open_initial = absl::Seconds(1);
  absl::Duration open_max = absl::Seconds(30);
};

// One attempt of one call on one endpoint, for ClientOptions::on_attempt.
struct AttemptEvent {
  std::string endpoint;  // "host:port"
  const char* method;    // "Put", "Range", "Status", ...
  int attempt;           // 1 for the first try of a call.
  absl::Status status;   // The attempt's own result.
  absl::Duration latency;
};

struct ClientOptions {
  // Client URLs of some members: "host:port", "http://host:port" or
  // "https://..." (TLS is not supported yet: an error). At least one is required;
  // the client learns the others from the member list.
  std::vector<std::string> endpoints;

  // Deadline of a call (all its attempts and backoff), unless the call sets its own.
  absl::Duration call_timeout = absl::Seconds(10);
  // Deadline of one attempt on one endpoint. A member that hangs (SIGSTOP, a
  // partition) is given up on after this and the call moves on.
  absl::Duration attempt_timeout = absl::Seconds(3);
  // Connect() waits at most this for the first member to answer.
  absl::Duration connect_timeout = absl::Seconds(5);
  // How often the member list and the leader are refreshed in the background (they
  // are also refreshed right after an error that suggests a change).
  absl::Duration member_refresh_interval = absl::Seconds(30);
  // Add members that join and drop members that leave (from MemberList). Off: use
  // exactly `endpoints`.
  bool follow_membership = true;

  BackoffOptions backoff;
  RetryBudgetOptions retry_budget;
  CircuitBreakerOptions circuit_breaker;

  // Seeds the client's one random source (request ids, jitter, load spreading).
  // 0: from std::random_device.
  uint64_t random_seed = 0;

  // Called after every attempt (from a gRPC or client thread; must be quick and
  // thread-safe). For metrics and tests; Client::Stats() has the counters.
  std::function<void(const AttemptEvent&)> on_attempt;
};

// Per-call settings, accepted by every call.
struct CallOptions {
  // The call's deadline from now; zero: ClientOptions::call_timeout.
  absl::Duration timeout = absl::ZeroDuration();
};

}  // namespace keel
