#include "bench/keel_bench_cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace keel::bench {

absl::StatusOr<uint64_t> ParseProcStatCpuTicks(std::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) {
    return absl::InvalidArgumentError("no ')' after the command name");
  }
  // After ") ": field 3 (state) is first, so utime (14) and stime (15) are at 11 and 12.
  const std::string_view rest = stat.substr(paren + 1);
  const std::vector<std::string> fields =
      absl::StrSplit(absl::string_view(rest.data(), rest.size()), ' ', absl::SkipEmpty());
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("utime/stime fields missing or not numbers");
  }
  return utime + stime;
}

absl::StatusOr<double> ProcessesCpuSeconds(const std::vector<int>& pids) {
  static const double kTicksPerSecond = static_cast<double>(sysconf(_SC_CLK_TCK));
  uint64_t ticks = 0;
  for (int pid : pids) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return absl::NotFoundError(absl::StrCat("process ", pid, " is not running"));
    auto t = ParseProcStatCpuTicks(text.str());
    if (!t.ok()) {
      return absl::InternalError(absl::StrCat("/proc/", pid, "/stat: ", t.status().message()));
    }
    ticks += *t;
  }
  return static_cast<double>(ticks) / kTicksPerSecond;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

}  // namespace keel::bench
