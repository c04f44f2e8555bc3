// The outcome of one keel-bench run and its two renderings: a readable table and one JSON
// line. Pure formatting, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/keel_bench_histogram.h"
#include "bench/keel_bench_options.h"

namespace keel::bench {

// gRPC status codes run from 0 (OK) to 16 (UNAUTHENTICATED).
inline constexpr int kNumGrpcCodes = 17;

// The watch workload's outcome.
struct WatchResult {
  int64_t watchers = 0;              // 0: not a watch run.
  int64_t expected_per_watcher = 0;  // Every acknowledged put.
  int64_t delivered = 0;             // Events, all watchers together.
  int64_t wrong_count = 0;           // Watchers that did not get exactly the expected events.
  int64_t order_violations = 0;      // Revisions that went back or repeated.
  double events_per_response = 0;
  double drain_s = 0;         // From the last put's answer until the last watcher had everything.
  std::string first_failure;  // A watcher's cancel reason or stream error, if any.
  LatencyHistogram delivery;  // Put sent -> event received, for puts sent after warmup.
};

struct Result {
  int64_t requests = 0;  // Completed and counted (after warmup), OK or not.
  int64_t ok = 0;
  std::array<int64_t, kNumGrpcCodes> errors_by_code{};  // Index: grpc::StatusCode.
  double elapsed_s = 0;                // From the end of warmup to the last counted completion.
  LatencyHistogram latency;            // Successful requests only.
  int64_t txn_succeeded = 0;           // txn: compare held, put applied.
  int64_t txn_failed = 0;              // txn: compare failed (another client wrote the key).
  std::vector<std::string> endpoints;  // Where requests went (after --target-leader).
  int64_t ok_all = 0;                  // Successful requests, warmup included.
  WatchResult watch;
  // CPU seconds spent in the counted window (end of warmup to the end) by the
  // --server-pids processes together and by keel-bench itself; < 0 when not measured.
  double server_cpu_s = -1;
  double client_cpu_s = -1;

  [[nodiscard]] double throughput_rps() const {
    return elapsed_s > 0 ? static_cast<double>(requests) / elapsed_s : 0;
  }
  // Microseconds of CPU per counted request; < 0 when not measured.
  [[nodiscard]] static double PerOpUs(double cpu_s, int64_t requests) {
    return cpu_s < 0 || requests == 0 ? -1 : cpu_s * 1e6 / static_cast<double>(requests);
  }
};

// "UNAVAILABLE" for 14, and so on; "CODE_<n>" outside the known range.
[[nodiscard]] std::string GrpcCodeName(int code);
[[nodiscard]] std::string FormatTable(const Options& options, const Result& result);
[[nodiscard]] std::string FormatJson(const Options& options, const Result& result);

}  // namespace keel::bench
