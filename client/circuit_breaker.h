// CircuitBreaker: one endpoint's breaker (CircuitBreakerOptions).
//
//   closed --(failure_threshold consecutive failures)--> open
//   open --(open period over; the next Allow() gets the one probe)--> half-open
//   half-open --probe succeeds--> closed;  --probe fails--> open (period doubled,
//                                                          up to open_max)
//
// A "failure" is the endpoint not answering (connection error, attempt timeout); any
// answer from the server, even an error, is a success: the endpoint is alive.
// Results of attempts sent before the breaker opened are ignored while it is open.
// Time is passed in (`now`), so tests drive it with a fake clock.
// Thread-safety: all methods may be called concurrently (internal mutex).
#pragma once

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "keel/client_options.h"
#include "keel/stats.h"

namespace keel::client {

class CircuitBreaker {
 public:
  explicit CircuitBreaker(const CircuitBreakerOptions& options) : options_(options) {}

  // Whether an attempt may be sent now. In half-open, only the first caller gets
  // true (the probe) until the probe's result is reported.
  [[nodiscard]] bool Allow(absl::Time now);
  // Whether Allow(now) would return true, without taking the probe.
  [[nodiscard]] bool WouldAllow(absl::Time now);
  void OnSuccess();
  void OnFailure(absl::Time now);

  [[nodiscard]] BreakerState state();
  // When an open breaker lets its probe through (InfinitePast unless open).
  [[nodiscard]] absl::Time open_until();
  [[nodiscard]] uint64_t times_opened();

 private:
  void OpenLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CircuitBreakerOptions options_;
  absl::Mutex mu_;
  BreakerState state_ ABSL_GUARDED_BY(mu_) = BreakerState::kClosed;
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration open_period_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t times_opened_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace keel::client
