#include "client/backoff.h"

#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace keel::client {
namespace {

constexpr uint64_t kMaxDraw = std::numeric_limits<uint64_t>::max();

TEST(BackoffTest, CeilingGrowsExponentiallyUpToMax) {
  const absl::Duration initial = absl::Milliseconds(25), max = absl::Seconds(1);
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 0), absl::Milliseconds(25));
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 1), absl::Milliseconds(50));
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 3), absl::Milliseconds(200));
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 5), absl::Milliseconds(800));
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 6), max);
  // No overflow for absurd retry counts.
  EXPECT_EQ(BackoffCeiling(initial, max, 2.0, 100000), max);
}

TEST(BackoffTest, FullJitterSpansZeroToCeiling) {
  const absl::Duration ceiling = absl::Milliseconds(400);
  EXPECT_EQ(FullJitter(ceiling, 0), absl::ZeroDuration());
  EXPECT_EQ(FullJitter(ceiling, kMaxDraw), ceiling);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(FullJitter(ceiling, kMaxDraw / 2)), 200.0, 0.001);
  EXPECT_EQ(FullJitter(absl::ZeroDuration(), kMaxDraw), absl::ZeroDuration());
}

TEST(BackoffTest, JitteredDelaysAreSpreadOverTheWholeInterval) {
  // Full jitter, not "ceiling/2 + jitter": with a seeded source, delays of retry 4
  // (ceiling 400 ms) fill [0, 400] roughly evenly.
  BackoffOptions options;
  std::mt19937_64 rng(42);
  int buckets[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) {
    const absl::Duration d = BackoffDelay(options, 4, /*overloaded=*/false, rng());
    ASSERT_GE(d, absl::ZeroDuration());
    ASSERT_LE(d, absl::Milliseconds(400));
    ++buckets[std::min(3, static_cast<int>(absl::ToDoubleMilliseconds(d) / 100))];
  }
  for (int b : buckets) EXPECT_GT(b, 800) << "quarter of [0, 400 ms] underused";
}

TEST(BackoffTest, OverloadedStartsFromTheLargerCeiling) {
  BackoffOptions options;  // initial 25 ms, overloaded_initial 100 ms, max 1 s.
  EXPECT_EQ(BackoffDelay(options, 0, /*overloaded=*/false, kMaxDraw), absl::Milliseconds(25));
  EXPECT_EQ(BackoffDelay(options, 0, /*overloaded=*/true, kMaxDraw), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(options, 10, /*overloaded=*/true, kMaxDraw), absl::Seconds(1));
}

}  // namespace
}  // namespace keel::client
