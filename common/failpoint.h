// Test-only fault injection ("failpoints") and UNSAFE bug switches for the chaos tests
// (tests/chaos/). Compiled in only when CMake's KEEL_FAILPOINTS is ON (the `default`
// preset that tools/test.sh and CI build); release and benchmark builds contain none of it:
// every hook in production code is one macro call that expands to nothing there,
//   KEEL_FAILPOINT(failpoint::DelayFsync());
// and KEEL_UNSAFE_BUG(kStaleLocalReads) is the constant false.
//
// Settings come from a file (keeld --failpoints-file) of `key = value` lines, re-read
// whenever it changes, so a test driver can switch faults on and off while keeld runs
// (write a temp file and rename it over the old one). An empty or missing file means no
// faults. Keys (probabilities in [0, 1], times in ms):
//   net_drop           a peer message received is dropped
//   net_duplicate      a peer message received is delivered twice
//   net_delay          a peer message received is held back for up to net_delay_ms_max
//   net_delay_ms_max   (held-back messages overtake nothing but are overtaken: reordering)
//   fsync_delay        a synced raft log write first sleeps up to fsync_delay_ms_max
//   fsync_delay_ms_max
// UNSAFE bugs (keeld --UNSAFE-bug NAME) break keel the way a user would suffer, so a test
// can prove that the chaos checker notices; they are fixed for the life of the process.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

#if defined(KEEL_FAILPOINTS) && KEEL_FAILPOINTS
#define KEEL_FAILPOINTS_COMPILED 1
#define KEEL_FAILPOINT(...) (__VA_ARGS__)
#define KEEL_UNSAFE_BUG(bug) (::keel::failpoint::UnsafeBugOn(::keel::failpoint::UnsafeBug::bug))
#else
#define KEEL_FAILPOINTS_COMPILED 0
#define KEEL_FAILPOINT(...) ((void)0)
#define KEEL_UNSAFE_BUG(bug) false
#endif

namespace keel::failpoint {

struct Settings {
  double net_drop = 0;
  double net_duplicate = 0;
  double net_delay = 0;
  int net_delay_ms_max = 0;
  double fsync_delay = 0;
  int fsync_delay_ms_max = 0;

  bool net_active() const { return net_drop > 0 || net_duplicate > 0 || net_delay > 0; }
};

enum class UnsafeBug : uint8_t {
  // Linearizable reads are served from the local state machine without ReadIndex, on
  // any member: a deposed leader or a lagging follower answers with stale data.
  kStaleLocalReads,
  // The watch dispatcher drops one event in kWatchSkipEventEvery it would send to a
  // watch: a watcher misses a change (and sees a revision incompletely).
  kWatchSkipEvent,
  // This member's state machine stores every put's value with its first byte changed:
  // its data diverges from the other members' (what a disk or memory fault, or a
  // non-deterministic apply, would do). The corruption check must notice.
  kDivergeState,
};
inline constexpr int kWatchSkipEventEvery = 50;

// "stale-local-reads" -> kStaleLocalReads, "watch-skip-event" -> kWatchSkipEvent,
// "diverge-state" -> kDivergeState. kInvalidArgument lists the known names.
[[nodiscard]] absl::Status EnableUnsafeBug(const std::string& name);
[[nodiscard]] bool UnsafeBugOn(UnsafeBug bug);

// Parses a settings file's text. kInvalidArgument names the bad line.
[[nodiscard]] absl::Status ParseSettings(const std::string& text, Settings* settings);

// Starts a thread that re-reads `path` whenever it changes (polled every 50 ms). A file
// that does not parse is reported on stderr and leaves the settings as they were.
// Errors: kFailedPrecondition if a watch is already running.
[[nodiscard]] absl::Status WatchSettingsFile(const std::string& path);

// The current settings (a copy; cheap when no fault was ever set).
[[nodiscard]] Settings Current();

// Hook: a synced raft log write about to happen. Sleeps as fsync_delay says.
void DelayFsync();

// Uniform draw in [0, 1) from this module's seeded generator (for hooks elsewhere).
[[nodiscard]] double Uniform();

}  // namespace keel::failpoint
