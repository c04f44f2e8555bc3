#include "client/scheduler.h"

#include <utility>
#include <vector>

namespace keel::client {

Scheduler::Scheduler() : thread_([this] { Loop(); }) {}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::RunAt(absl::Time when, Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      tasks_.emplace(when, std::move(task));
      return;
    }
  }
  task(/*cancelled=*/true);
}

void Scheduler::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (stopping_) break;
    const absl::Time now = absl::Now();
    if (!tasks_.empty() && tasks_.begin()->first <= now) {
      Task task = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
      mu_.Unlock();
      task(/*cancelled=*/false);
      mu_.Lock();
      continue;
    }
    const absl::Time wake = tasks_.empty() ? absl::InfiniteFuture() : tasks_.begin()->first;
    auto ready = [this, wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!tasks_.empty() && tasks_.begin()->first < wake);
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
  }
  // Stopping: cancel what is left, including tasks those tasks schedule (they run
  // inline in RunAt once stopping_ is set).
  std::multimap<absl::Time, Task> left;
  left.swap(tasks_);
  mu_.Unlock();
  for (auto& [when, task] : left) task(/*cancelled=*/true);
  mu_.Lock();
}

}  // namespace keel::client
