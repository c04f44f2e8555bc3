// Command-line options of keel-bench and their checks. Parsing is pure (no I/O), so the
// rules are unit-tested; keel_bench_main.cc prints Usage() when ParseArgs fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace keel::bench {

enum class Workload { kPut, kRange, kTxn, kMixed, kWatch };

struct Options {
  Workload workload = Workload::kPut;
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  // Send only to the member that is leader (asked via Maintenance.Status).
  bool target_leader = false;
  int conns = 1;    // gRPC channels, each its own TCP connection.
  int clients = 1;  // Concurrent requesters, each with one request in flight.
  // Stop after `total` requests (0: no limit) or `duration_s` seconds (0: no limit),
  // whichever comes first. If both are 0, duration_s becomes kDefaultDurationS.
  int64_t total = 0;
  double duration_s = 0;
  // Requests completing in the first warmup_s seconds are not counted.
  double warmup_s = 0;
  int timeout_ms = 5000;  // Per-request deadline.
  // Open loop: requests/s offered in total (0: closed loop). Requester i of M sends at
  // the intended times start + (i + k*M)/rate, and a request's latency counts from its
  // intended time, so a slow server cannot hide queueing (no coordinated omission).
  double rate = 0;

  int key_size = 8;  // Bytes; keys are zero-padded decimal indices in [0, key_space).
  int val_size = 256;
  int64_t key_space = 10000;
  bool sequential_keys = false;

  bool serializable = false;  // --consistency s
  int range_keys = 1;         // Keys per range request.
  bool preload = false;       // Put every key of the key space before measuring.
  double read_ratio = 0.5;    // mixed: share of ranges.

  // watch: Watch streams (one watch each) on the written keys while the clients put,
  // over watch_conns channels spread over every endpoint.
  int watchers = 100;
  int watch_conns = 10;

  // Servers whose CPU time (utime + stime from /proc/<pid>/stat) is reported per
  // counted request, from the end of warmup to the end of the run.
  std::vector<int> server_pids;

  bool json = false;
  bool progress = true;  // A progress line on stderr once a second.
  uint64_t seed = 1;
};

inline constexpr double kDefaultDurationS = 10;

// Parses `keel-bench WORKLOAD [--flag value | --flag=value]...` (argv[0] is skipped).
// Returns kInvalidArgument naming the offending flag or value.
[[nodiscard]] absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args);

[[nodiscard]] std::string Usage();
[[nodiscard]] const char* WorkloadName(Workload workload);

// watch: the first kStampBytes of every put value carry its send time (steady clock
// ns, zero-padded decimal), so each watcher can time the event's delivery.
inline constexpr int kStampBytes = 20;
void StampSendTime(std::string* value, std::chrono::steady_clock::time_point sent);
// The send time stamped into `value`; false if there is none.
[[nodiscard]] bool ReadSendTime(std::string_view value,
                                std::chrono::steady_clock::time_point* sent);

// The key with index `index`: zero-padded decimal, exactly key_size bytes. Requires
// index < 10^key_size (ParseArgs checks key_space against key_size).
[[nodiscard]] std::string MakeKey(int64_t index, int key_size);

}  // namespace keel::bench
