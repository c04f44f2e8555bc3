// Internal to keel_lincheck: a fast proof of non-linearizability for the common anomalies
// (stale read, lost write, read of a value never written or written only later), run before
// the search, which on a long busy history would have to exhaust every order of the prefix
// before the bad read to prove the same thing.
#pragma once

#include <optional>
#include <vector>

#include "tools/lincheck/checker.h"

namespace keel::lincheck::internal {

// `ops`: one key's operations without failed ones and unknown reads, sorted by call time.
// A read of v (or a successful cas expecting v) is impossible if every operation that may have
// produced v (a write, cas or delete, acknowledged or unknown, called before the read returned;
// for absence also the initial state) is followed for certain by an acknowledged change to
// something else that returned before the read was called. Returns a counterexample for the
// first such read in call order, or nullopt. O(n log n).
[[nodiscard]] std::optional<Counterexample> FindImpossibleRead(
    const std::vector<const Operation*>& ops);

}  // namespace keel::lincheck::internal
