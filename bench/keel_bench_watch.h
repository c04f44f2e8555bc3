// keel-bench's `watch` workload: a fleet of watchers on the written keys while the put
// requesters write, measuring event delivery latency (from the put's send time, carried
// in the value, to the event's arrival) and checking that every watcher got every
// acknowledged write exactly once, in revision order.
//
// Watchers open one Watch stream each (with one watch: the single key when --key-space
// is 1, otherwise the key space's interval), spread over --watch-conns channels to every
// endpoint in turn, and are all created before the writers start.
//
// Thread-safety: WatchFleet is driven from Run()'s thread; gRPC calls the watchers'
// reactions on its threads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/keel_bench_options.h"
#include "bench/keel_bench_report.h"
#include "grpcpp/grpcpp.h"

namespace keel::bench {

class WatchFleet {
 public:
  WatchFleet(const Options& options, std::vector<std::shared_ptr<grpc::Channel>> channels);
  ~WatchFleet();  // Cancels every watch and waits for the streams to end.
  WatchFleet(const WatchFleet&) = delete;
  WatchFleet& operator=(const WatchFleet&) = delete;

  // Opens every watch; fails if they are not all created within the timeout.
  [[nodiscard]] absl::Status Start(std::chrono::seconds timeout);
  // From now on, latency is recorded for events whose put was sent at or after `from`.
  void CountFrom(std::chrono::steady_clock::time_point from);
  // Waits until every watcher received `expected` events (or the timeout), then fills
  // result->watch.
  void Finish(int64_t expected, std::chrono::seconds timeout, Result* result);

 private:
  class Watcher;
  const Options options_;
  std::atomic<int64_t> count_from_ns_{0};  // Read by the watchers' reactions.
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
};

}  // namespace keel::bench
