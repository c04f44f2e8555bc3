#include "client/retry_budget.h"

#include <algorithm>

namespace keel::client {

RetryBudget::RetryBudget(const RetryBudgetOptions& options, absl::Time now)
    : options_(options),
      tokens_(std::clamp(options.min_retries_per_second, 0.0, std::max(options.max_tokens, 0.0))),
      last_refill_(now) {}

void RetryBudget::RefillLocked(absl::Time now) {
  if (now <= last_refill_) return;  // A clock that went back refills nothing.
  const double elapsed_s = absl::ToDoubleSeconds(now - last_refill_);
  tokens_ = std::min(options_.max_tokens, tokens_ + elapsed_s * options_.min_retries_per_second);
  last_refill_ = now;
}

void RetryBudget::OnCall(absl::Time now) {
  absl::MutexLock lock(&mu_);
  RefillLocked(now);
  tokens_ = std::min(options_.max_tokens, tokens_ + options_.retry_ratio);
}

bool RetryBudget::TryRetry(absl::Time now) {
  absl::MutexLock lock(&mu_);
  RefillLocked(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

double RetryBudget::tokens(absl::Time now) {
  absl::MutexLock lock(&mu_);
  RefillLocked(now);
  return tokens_;
}

}  // namespace keel::client
