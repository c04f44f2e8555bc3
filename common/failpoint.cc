#include "common/failpoint.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace keel::failpoint {
namespace {

constexpr auto kWatchInterval = std::chrono::milliseconds(50);

struct State {
  std::mutex mu;
  Settings settings;                            // Guarded by mu.
  std::mt19937_64 rng{std::random_device{}()};  // Guarded by mu.
  std::atomic<bool> any_set{false};             // Settings ever non-default: take the lock.
  std::atomic<bool> watching{false};
  std::atomic<uint32_t> unsafe_bugs{0};  // Bit per UnsafeBug.
};

State& state() {
  static State* s = new State();  // Never destroyed: hooks may run during exit.
  return *s;
}

absl::Status ParseProbability(absl::string_view value, double* out) {
  if (!absl::SimpleAtod(value, out) || *out < 0 || *out > 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a probability in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status ParseMs(absl::string_view value, int* out) {
  if (!absl::SimpleAtoi(value, out) || *out < 0 || *out > 600'000) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a time in 0..600000 ms"));
  }
  return absl::OkStatus();
}

struct FileStamp {
  bool exists = false;
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  off_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp Stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{true, st.st_ino, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                   st.st_size};
}

void Load(const std::string& path) {
  std::string text;
  {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  Settings settings;
  absl::Status status = ParseSettings(text, &settings);
  if (!status.ok()) {
    std::fprintf(stderr, "keeld: failpoints file %s ignored: %s\n", path.c_str(),
                 std::string(status.message()).c_str());
    return;
  }
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.settings = settings;
  s.any_set = true;
}

}  // namespace

absl::Status ParseSettings(const std::string& text, Settings* settings) {
  Settings parsed;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": not key = value"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(kv[0]);
    const absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
    absl::Status status;
    if (key == "net_drop") {
      status = ParseProbability(value, &parsed.net_drop);
    } else if (key == "net_duplicate") {
      status = ParseProbability(value, &parsed.net_duplicate);
    } else if (key == "net_delay") {
      status = ParseProbability(value, &parsed.net_delay);
    } else if (key == "net_delay_ms_max") {
      status = ParseMs(value, &parsed.net_delay_ms_max);
    } else if (key == "fsync_delay") {
      status = ParseProbability(value, &parsed.fsync_delay);
    } else if (key == "fsync_delay_ms_max") {
      status = ParseMs(value, &parsed.fsync_delay_ms_max);
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("unknown key '", key, "'"));
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", status.message()));
    }
  }
  *settings = parsed;
  return absl::OkStatus();
}

absl::Status EnableUnsafeBug(const std::string& name) {
  if (name == "stale-local-reads") {
    state().unsafe_bugs |= 1u << static_cast<int>(UnsafeBug::kStaleLocalReads);
    return absl::OkStatus();
  }
  if (name == "watch-skip-event") {
    state().unsafe_bugs |= 1u << static_cast<int>(UnsafeBug::kWatchSkipEvent);
    return absl::OkStatus();
  }
  if (name == "diverge-state") {
    state().unsafe_bugs |= 1u << static_cast<int>(UnsafeBug::kDivergeState);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown UNSAFE bug '", name,
                   "' (known: stale-local-reads, watch-skip-event, diverge-state)"));
}

bool UnsafeBugOn(UnsafeBug bug) {
  return (state().unsafe_bugs.load(std::memory_order_relaxed) & (1u << static_cast<int>(bug))) != 0;
}

absl::Status WatchSettingsFile(const std::string& path) {
  State& s = state();
  if (s.watching.exchange(true)) {
    return absl::FailedPreconditionError("a failpoints file is already watched");
  }
  // Stamp before reading, so a change in between is seen by the first poll.
  FileStamp loaded = Stamp(path);
  Load(path);
  std::thread([path, seen = loaded]() mutable {
    for (;;) {
      std::this_thread::sleep_for(kWatchInterval);
      const FileStamp now = Stamp(path);
      if (now == seen) continue;
      seen = now;
      Load(path);
    }
  }).detach();  // Lives as long as the process; it only reads a file and takes a lock.
  return absl::OkStatus();
}

Settings Current() {
  State& s = state();
  if (!s.any_set.load(std::memory_order_relaxed)) return Settings();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.settings;
}

double Uniform() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return std::uniform_real_distribution<double>(0, 1)(s.rng);
}

void DelayFsync() {
  const Settings settings = Current();
  if (settings.fsync_delay <= 0 || settings.fsync_delay_ms_max <= 0) return;
  if (Uniform() >= settings.fsync_delay) return;
  const int ms = static_cast<int>(Uniform() * (settings.fsync_delay_ms_max + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace keel::failpoint
