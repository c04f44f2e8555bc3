// The linearizability checker: is there a total order of the history's operations that respects
// real time (an operation that completed before another started comes first) and in which every
// operation's result is what a single register per key would have answered?
//
// Model: each key is an independent register, absent at the start (linearizability is local,
// so keys are checked one by one). read sees the value or absence; write sets; delete makes
// absent; cas sets `value` iff the register holds `expect` (absent never matches), and a cas ok
// with cas_succeeded=false saw something other than `expect`. Operations with outcome fail are
// dropped (they had no effect); reads with outcome unknown are dropped (they constrain nothing);
// other unknown operations complete at +infinity, so they may take effect at any point after
// their start, or never (linearized after everything else).
//
// First a fast, polynomial proof for the common anomalies (impossible_read.h: stale read, lost
// write, a value never written). Then the search: Wing & Gong's with Lowe's just-in-time
// linearization and memoisation of (linearized set, register state), as in porcupine: call
// and return entries of the known operations in one time-ordered doubly linked list, from
// which linearized operations are lifted and restored on backtracking. Reductions that keep it
// exact (search.h; a brute-force reference test checks them): a legal read is linearized
// without alternatives; states no pending operation can tell apart are one state; unknown
// writes/deletes leading to the same state are interchangeable, so only their number used
// matters; after an unknown operation only one that observes the register may follow; the set
// is stored as the few pending ops around the frontier. Candidates are tried in a heuristic
// order that spares valid histories most backtracking. The search is exponential in the worst
// case (many operations in flight on one key at once); the per-key timeout and memory budget
// bound it, and a key that hits either is reported UNKNOWN, never VALID.
//
// Thread-safety: the functions are pure; call them from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tools/lincheck/history.h"

namespace keel::lincheck {

// kUnknown: the per-key timeout or memory budget ran out before an answer.
enum class Verdict { kValid, kInvalid, kUnknown };

[[nodiscard]] const char* VerdictName(Verdict verdict);  // "VALID", "INVALID", "UNKNOWN"

struct CheckOptions {
  // Per key; after it the key's verdict is kUnknown. Infinite by default.
  absl::Duration timeout_per_key = absl::InfiniteDuration();
  // Per key: memory the search's memo of visited (linearized set, state) pairs may take before
  // the search gives up with kUnknown.
  uint64_t max_memory_bytes_per_key = uint64_t{1} << 30;
  // Run the fast check for impossible reads before the search (see Counterexample). Off only
  // to test the search alone: the verdict is the same either way, only time and the
  // counterexample differ.
  bool fast_check = true;
};

// Why a key is not linearizable. Found one of two ways:
//  - a fast check first (impossible_read.h): a read or successful compare needs a state that
//    every operation that could produce it was certainly followed by a change away from before
//    the read was called (stale read, lost write, a value never written). Then `stuck` is that
//    read, `context` the change, `sources` the possible producers, linearized_count 0.
//  - else the search: it got furthest with a partial linearization of `linearized_count` ops,
//    after which none of `stuck` could be placed. The window to look at is `context` (the end
//    of that partial linearization), `stuck`, and `sources`.
struct Counterexample {
  bool found_by_search = false;  // Else by the fast check.
  std::string reason;            // One sentence, for the report.
  size_t linearized_count = 0;   // Known ops in the longest partial linearization found.
  // The register after it (nullopt: absent), and the operation that set it (nullopt: nothing
  // was written yet).
  std::optional<std::string> state;
  std::optional<Operation> state_set_by;
  // The tail of the partial linearization, in linearization order: the operation that set the
  // state and every linearized operation overlapping the stuck ones in time (at most
  // kMaxContext, the last ones).
  std::vector<Operation> context;
  // The candidates that could not be linearized next, in call order: the not yet linearized
  // operation that returns first, and every one called before it returned.
  std::vector<Operation> stuck;
  // The operations that wrote the values the stuck reads and compares need (none for a value
  // that was never written), in call order.
  std::vector<Operation> sources;
  static constexpr size_t kMaxContext = 40;
};

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::kValid;
  size_t ops = 0;          // Operations checked (after dropping fail and unknown reads).
  size_t unknown_ops = 0;  // Of which with outcome unknown.
  uint64_t states = 0;     // Distinct (linearized set, state) pairs the search visited.
  absl::Duration elapsed;
  std::optional<Counterexample> counterexample;  // Set iff verdict is kInvalid.
  std::string unknown_reason;  // Set iff verdict is kUnknown: which limit was hit.
};

struct CheckResult {
  // kInvalid if any key is invalid, else kUnknown if any key timed out, else kValid.
  Verdict verdict = Verdict::kValid;
  size_t ops = 0;               // Operations in the history (before dropping).
  std::vector<KeyResult> keys;  // Sorted by key.
  absl::Duration elapsed;
  // The first invalid key in key order, or nullptr.
  [[nodiscard]] const KeyResult* FirstInvalid() const;
};

[[nodiscard]] CheckResult CheckHistory(const History& history, const CheckOptions& options = {});

// Checks the operations of one key (all of `ops` must have that key).
[[nodiscard]] KeyResult CheckKey(const std::string& key, const std::vector<const Operation*>& ops,
                                 const CheckOptions& options = {});

}  // namespace keel::lincheck
