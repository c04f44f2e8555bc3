#include "client/scheduler.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace keel::client {
namespace {

TEST(SchedulerTest, RunsTasksInDeadlineOrder) {
  Scheduler scheduler;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification all;
  const absl::Time now = absl::Now();
  for (int i : {3, 1, 2}) {
    scheduler.RunAt(now + absl::Milliseconds(10 * i), [&, i](bool cancelled) {
      EXPECT_FALSE(cancelled);
      absl::MutexLock lock(&mu);
      order.push_back(i);
      if (order.size() == 3) all.Notify();
    });
  }
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(SchedulerTest, ShutdownCancelsPendingTasksAndLaterOnes) {
  Scheduler scheduler;
  std::atomic<int> cancelled{0};
  scheduler.RunAt(absl::Now() + absl::Hours(1), [&](bool c) { cancelled += c ? 1 : 100; });
  scheduler.Shutdown();
  EXPECT_EQ(cancelled.load(), 1);
  scheduler.RunAt(absl::Now(), [&](bool c) { cancelled += c ? 1 : 100; });
  EXPECT_EQ(cancelled.load(), 2);
}

}  // namespace
}  // namespace keel::client
