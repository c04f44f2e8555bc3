// PeriodicTask: runs one function on its own named thread every interval until stopped
// (the space quota check, the corruption check). Stop wakes the thread at once and
// joins it; a run in progress finishes first.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "server/thread_name.h"

namespace keel::server {

class PeriodicTask {
 public:
  enum class FirstRun { kAtStart, kAfterInterval };

  PeriodicTask(std::string thread_name, absl::Duration interval, FirstRun first,
               std::function<void()> run)
      : thread_name_(std::move(thread_name)),
        interval_(interval),
        first_(first),
        run_(std::move(run)) {}
  ~PeriodicTask() { Stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Starts the thread (once; not after Stop).
  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || thread_.joinable()) return;
    thread_ = std::thread([this] { Loop(); });
  }

  // Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    SetThreadName(thread_name_.c_str());
    std::unique_lock<std::mutex> lock(mu_);
    bool wait = first_ == FirstRun::kAfterInterval;
    while (!stopping_) {
      if (wait) {
        cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [this] { return stopping_; });
        if (stopping_) break;
      }
      wait = true;
      lock.unlock();
      run_();
      lock.lock();
    }
  }

  const std::string thread_name_;
  const absl::Duration interval_;
  const FirstRun first_;
  const std::function<void()> run_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace keel::server
