#include "client/retry_budget.h"

#include "gtest/gtest.h"

namespace keel::client {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

RetryBudgetOptions Options(double ratio, double floor_per_s, double max_tokens) {
  RetryBudgetOptions o;
  o.retry_ratio = ratio;
  o.min_retries_per_second = floor_per_s;
  o.max_tokens = max_tokens;
  return o;
}

TEST(RetryBudgetTest, StartsWithOneSecondOfTheFloor) {
  RetryBudget budget(Options(0.2, 3, 100), kT0);
  EXPECT_TRUE(budget.TryRetry(kT0));
  EXPECT_TRUE(budget.TryRetry(kT0));
  EXPECT_TRUE(budget.TryRetry(kT0));
  EXPECT_FALSE(budget.TryRetry(kT0));
}

TEST(RetryBudgetTest, RetriesAreBoundedByTheRatioOfCalls) {
  // A cluster that fails every call: each call wants to retry forever. Over 1000
  // calls in one instant, retries stay at ratio * calls (+ the initial floor).
  RetryBudget budget(Options(0.2, 0, 1000), kT0);
  int retries = 0;
  for (int call = 0; call < 1000; ++call) {
    budget.OnCall(kT0);
    while (budget.TryRetry(kT0)) ++retries;
  }
  EXPECT_EQ(retries, 200);
}

TEST(RetryBudgetTest, FloorRefillsWithTimeButNotPastMax) {
  RetryBudget budget(Options(0.0, 10, 5), kT0);
  while (budget.TryRetry(kT0)) {
  }
  EXPECT_LT(budget.tokens(kT0), 1.0);
  EXPECT_NEAR(budget.tokens(kT0 + absl::Milliseconds(300)), 3.0, 1e-9);
  EXPECT_DOUBLE_EQ(budget.tokens(kT0 + absl::Seconds(60)), 5.0);  // Capped.
}

TEST(RetryBudgetTest, ClockGoingBackRefillsNothing) {
  RetryBudget budget(Options(0.0, 10, 100), kT0);
  while (budget.TryRetry(kT0)) {
  }
  const double before = budget.tokens(kT0);
  EXPECT_DOUBLE_EQ(budget.tokens(kT0 - absl::Seconds(5)), before);
}

TEST(RetryBudgetTest, DepositsAreCappedSoAnIdleBurstIsBounded) {
  RetryBudget budget(Options(0.5, 0, 10), kT0);
  for (int i = 0; i < 1000; ++i) budget.OnCall(kT0);
  EXPECT_DOUBLE_EQ(budget.tokens(kT0), 10.0);
}

}  // namespace
}  // namespace keel::client
