// RetryBudget: the token bucket of RetryBudgetOptions. Time is passed in (`now`),
// so tests drive it with a fake clock.
//
// Invariant: 0 <= tokens <= max_tokens.
// Thread-safety: all methods may be called concurrently (internal mutex).
#pragma once

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "keel/client_options.h"

namespace keel::client {

class RetryBudget {
 public:
  // Starts with one second's worth of the floor (min_retries_per_second), so a new
  // client can retry a little before it has sent anything.
  RetryBudget(const RetryBudgetOptions& options, absl::Time now);

  // A call started: deposits retry_ratio tokens.
  void OnCall(absl::Time now);
  // Takes one token for a retry; false (and nothing taken) if less than one is left.
  [[nodiscard]] bool TryRetry(absl::Time now);
  [[nodiscard]] double tokens(absl::Time now);

 private:
  void RefillLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RetryBudgetOptions options_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_refill_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keel::client
