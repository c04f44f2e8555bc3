#include "client/circuit_breaker.h"

#include <algorithm>

namespace keel::client {

bool CircuitBreaker::Allow(absl::Time now) {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now < open_until_) return false;
      state_ = BreakerState::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

bool CircuitBreaker::WouldAllow(absl::Time now) {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      return now >= open_until_;
    case BreakerState::kHalfOpen:
      return !probe_in_flight_;
  }
  return false;
}

void CircuitBreaker::OnSuccess() {
  absl::MutexLock lock(&mu_);
  if (state_ == BreakerState::kOpen) return;  // A straggler from before it opened.
  state_ = BreakerState::kClosed;
  consecutive_failures_ = 0;
  open_period_ = absl::ZeroDuration();
  probe_in_flight_ = false;
}

void CircuitBreaker::OnFailure(absl::Time now) {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case BreakerState::kOpen:
      return;  // A straggler: the breaker already knows.
    case BreakerState::kHalfOpen:
      probe_in_flight_ = false;
      OpenLocked(now);
      return;
    case BreakerState::kClosed:
      if (++consecutive_failures_ >= std::max(options_.failure_threshold, 1)) OpenLocked(now);
      return;
  }
}

void CircuitBreaker::OpenLocked(absl::Time now) {
  open_period_ =
      open_period_ == absl::ZeroDuration()
          ? options_.open_initial
          : std::min(open_period_ * 2, std::max(options_.open_max, options_.open_initial));
  state_ = BreakerState::kOpen;
  open_until_ = now + open_period_;
  consecutive_failures_ = 0;
  ++times_opened_;
}

BreakerState CircuitBreaker::state() {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Time CircuitBreaker::open_until() {
  absl::MutexLock lock(&mu_);
  return state_ == BreakerState::kOpen ? open_until_ : absl::InfinitePast();
}

uint64_t CircuitBreaker::times_opened() {
  absl::MutexLock lock(&mu_);
  return times_opened_;
}

}  // namespace keel::client
