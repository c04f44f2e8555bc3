// CPU time of other processes (the servers under test), read from /proc/<pid>/stat, so
// keel-bench can report CPU per operation: the figure that stays meaningful on a shared,
// noisy machine where throughput does not.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace keel::bench {

// utime + stime, in clock ticks, from the text of /proc/<pid>/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
[[nodiscard]] absl::StatusOr<uint64_t> ParseProcStatCpuTicks(std::string_view stat);

// Sum of utime + stime of `pids`, in seconds. kNotFound if a process is gone.
[[nodiscard]] absl::StatusOr<double> ProcessesCpuSeconds(const std::vector<int>& pids);

// This process's own CPU time (all threads), in seconds.
[[nodiscard]] double SelfCpuSeconds();

}  // namespace keel::bench
