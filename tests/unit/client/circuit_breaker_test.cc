#include "client/circuit_breaker.h"

#include "gtest/gtest.h"

namespace keel::client {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

CircuitBreakerOptions Options() {
  CircuitBreakerOptions o;
  o.failure_threshold = 3;
  o.open_initial = absl::Seconds(1);
  o.open_max = absl::Seconds(5);
  return o;
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresOnly) {
  CircuitBreaker b(Options());
  b.OnFailure(kT0);
  b.OnFailure(kT0);
  b.OnSuccess();  // Resets the run.
  b.OnFailure(kT0);
  b.OnFailure(kT0);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(kT0));
  b.OnFailure(kT0);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_FALSE(b.Allow(kT0));
  EXPECT_FALSE(b.Allow(kT0 + absl::Milliseconds(999)));
  EXPECT_EQ(b.open_until(), kT0 + absl::Seconds(1));
}

TEST(CircuitBreakerTest, HalfOpenLetsExactlyOneProbeThrough) {
  CircuitBreaker b(Options());
  for (int i = 0; i < 3; ++i) b.OnFailure(kT0);
  const absl::Time later = kT0 + absl::Seconds(1);
  EXPECT_TRUE(b.WouldAllow(later));
  EXPECT_TRUE(b.Allow(later));  // The probe.
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(b.Allow(later));
  EXPECT_FALSE(b.WouldAllow(later));
  b.OnSuccess();
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(later));
  EXPECT_TRUE(b.Allow(later));
}

TEST(CircuitBreakerTest, FailedProbeReopensForTwiceAsLongUpToMax) {
  CircuitBreaker b(Options());
  for (int i = 0; i < 3; ++i) b.OnFailure(kT0);
  absl::Time t = kT0;
  absl::Duration expected = absl::Seconds(1);
  for (int round = 0; round < 5; ++round) {
    t = b.open_until();
    ASSERT_TRUE(b.Allow(t));
    b.OnFailure(t);
    expected = std::min(expected * 2, absl::Seconds(5));
    EXPECT_EQ(b.open_until() - t, expected) << "round " << round;
  }
  EXPECT_EQ(b.times_opened(), 6u);
  // A successful probe resets the period: the next opening is short again.
  t = b.open_until();
  ASSERT_TRUE(b.Allow(t));
  b.OnSuccess();
  for (int i = 0; i < 3; ++i) b.OnFailure(t);
  EXPECT_EQ(b.open_until() - t, absl::Seconds(1));
}

TEST(CircuitBreakerTest, StragglersWhileOpenAreIgnored) {
  CircuitBreaker b(Options());
  for (int i = 0; i < 3; ++i) b.OnFailure(kT0);
  b.OnSuccess();  // An attempt sent before the breaker opened answered late.
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  b.OnFailure(kT0 + absl::Milliseconds(500));
  EXPECT_EQ(b.open_until(), kT0 + absl::Seconds(1));  // Not extended.
  EXPECT_EQ(b.times_opened(), 1u);
}

}  // namespace
}  // namespace keel::client
