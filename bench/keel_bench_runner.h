// Runs one keel-bench workload against etcd v3 gRPC endpoints and returns its Result.
//
// Closed loop on gRPC's callback API: each of `clients` requesters keeps exactly one
// request in flight and issues the next one from the completion callback of the previous
// one, so no thread is tied to a request. Requesters share `conns` channels; each channel
// has its own subchannel pool, hence its own TCP connection.
//
// Thread-safety: Run() blocks the calling thread until the run ends (by --total,
// --duration, or both; every request has a deadline, so it always ends).
#pragma once

#include "absl/status/statusor.h"
#include "bench/keel_bench_options.h"
#include "bench/keel_bench_report.h"

namespace keel::bench {

// kUnavailable if --target-leader finds no member that is its own leader; kFailedPrecondition
// if --preload got errors (the measured phase would read missing keys).
[[nodiscard]] absl::StatusOr<Result> Run(const Options& options);

}  // namespace keel::bench
