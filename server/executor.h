// Executor: a fixed pool of worker threads running queued tasks, with a bounded queue.
// Used to finish client reads off the apply thread. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::server {

class Executor {
 public:
  Executor(int threads, size_t queue_max);
  ~Executor();  // Runs what is queued, then joins.
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`; false (task not run) when the queue is full or the executor stopped.
  [[nodiscard]] bool Submit(std::function<void()> task);
  void Stop();

 private:
  void Run();

  const size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // Guarded by mu_.
  bool stopped_ = false;                     // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace keel::server
