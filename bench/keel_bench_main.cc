// keel-bench: a load generator for any etcd v3 gRPC server (keeld or etcd), so both are
// measured by the same client. See Usage() in keel_bench_options.cc.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/keel_bench_options.h"
#include "bench/keel_bench_report.h"
#include "bench/keel_bench_runner.h"

int main(int argc, char** argv) {
  // As in keeld: Debian's abseil keeps a deadlock-detection graph for every gRPC lock
  // unless told not to; the load generator should spend its CPU on requests.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> args(argv, argv + argc);
  if (argc >= 2 && (args[1] == "-h" || args[1] == "--help")) {
    std::fputs(keel::bench::Usage().c_str(), stdout);
    return 0;
  }
  auto options = keel::bench::ParseArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "keel-bench: %s\n\n%s", std::string(options.status().message()).c_str(),
                 keel::bench::Usage().c_str());
    return 2;
  }
  auto result = keel::bench::Run(*options);
  if (!result.ok()) {
    std::fprintf(stderr, "keel-bench: %s\n", result.status().ToString().c_str());
    return 1;
  }
  const std::string out = options->json ? keel::bench::FormatJson(*options, *result) + "\n"
                                        : keel::bench::FormatTable(*options, *result);
  std::fputs(out.c_str(), stdout);
  // Exit 3 when some requests failed or a watcher missed or repeated events, so scripts
  // notice.
  const bool watch_ok = result->watch.wrong_count == 0 && result->watch.order_violations == 0;
  return result->ok == result->requests && watch_ok ? 0 : 3;
}
