// Scheduler: one thread that runs delayed tasks (retry backoff, periodic refresh) for
// one Client, so a waiting call holds no thread.
//
// Tasks run one at a time on the scheduler thread, in deadline order, and must be
// quick. Shutdown() runs every pending task at once with `cancelled` = true and joins
// the thread; tasks scheduled after that run inline, cancelled.
// Thread-safety: all methods may be called concurrently (not Shutdown from a task).
#pragma once

#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace keel::client {

class Scheduler {
 public:
  using Task = std::function<void(bool cancelled)>;

  Scheduler();
  ~Scheduler();  // Shutdown().
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void RunAt(absl::Time when, Task task);
  void Shutdown();

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<absl::Time, Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace keel::client
