// The watch checker of keel-chaos: what every watcher received, compared with the
// authoritative event history (read back from the healed cluster) and with the writes
// the clients made.
//
// Per watcher, over its key range from its start revision to the end of the run:
//   gap         an event of the history the watcher never received
//   duplicate   an event received more than once
//   disorder    an event received after one of a later revision (or, within a
//               revision, not in the history's order)
//   split       the events of one revision spread over several responses
//   phantom     a received event that is not in the history (or differs from it)
// Against the writes (whatever watched them):
//   acked_no_event   an acknowledged write whose put is not in the history
//   failed_applied   a put in the history of a write that certainly failed (or a cas
//                    whose compare was answered false, or a value nobody wrote)
//   applied_twice    one write's put in the history twice (a retried proposal
//                    applied again)
//   diverged         (the caller's) members that serve different histories
// And the history itself must be gap-free: every revision from its first to its last
// has events (each revision is one applied change).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::chaos {

struct WatchEvent {
  int64_t revision = 0;
  std::string key;
  bool is_put = true;
  std::string value;  // Puts only.

  friend bool operator==(const WatchEvent&, const WatchEvent&) = default;
};

// Keys [begin, end): end "" is the key `begin` alone; end "\0" is every key >= begin.
struct KeyRange {
  std::string begin;
  std::string end;
  [[nodiscard]] bool Contains(const std::string& key) const;
  [[nodiscard]] std::string ToString() const;
};

struct WatcherLog {
  std::string name;
  KeyRange range;
  int64_t start_revision = 1;
  // The responses received, in order, each one's events (progress responses omitted).
  std::vector<std::vector<WatchEvent>> batches;
  std::string ended;  // Why the watch ended early ("" if it ran to the end).
};

// A write a client made: `key` set to `value` (values are unique per key).
struct WriteRecord {
  enum class Effect {
    kApplied,     // acknowledged: its put must be in the history once
    kNotApplied,  // certainly not: its put must not be in the history
    kMaybe,       // unknown outcome: at most once
  };
  std::string key;
  std::string value;
  Effect effect = Effect::kMaybe;
};

struct WatchCheckResult {
  uint64_t events = 0;  // Events received by the watchers, in total.
  uint64_t history_events = 0;
  uint64_t gaps = 0;
  uint64_t duplicates = 0;
  uint64_t disorder = 0;
  uint64_t split = 0;
  uint64_t phantom = 0;
  uint64_t ended = 0;  // Watches that ended before the end of the run.
  uint64_t history_gaps = 0;
  uint64_t acked_no_event = 0;
  uint64_t failed_applied = 0;
  uint64_t applied_twice = 0;
  uint64_t diverged = 0;  // Members whose event history differs (set by the caller).
  // The first few findings, one sentence each.
  std::vector<std::string> examples;

  [[nodiscard]] bool ok() const {
    return gaps + duplicates + disorder + split + phantom + ended + history_gaps + acked_no_event +
               failed_applied + applied_twice + diverged ==
           0;
  }
  // "watch_events=N watch_gaps=0 ...".
  [[nodiscard]] std::string Summary() const;
};

// `history`: every event of the cluster from revision `history_first` (1 unless
// compacted) to `history_last`, in revision order. Watchers are compared from
// max(start_revision, history_first) to history_last; what they received after it
// (writes applied after the history was read) is not compared.
[[nodiscard]] WatchCheckResult CheckWatch(const std::vector<WatchEvent>& history,
                                          int64_t history_first, int64_t history_last,
                                          const std::vector<WatcherLog>& watchers,
                                          const std::vector<WriteRecord>& writes);

}  // namespace keel::chaos
