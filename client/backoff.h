// Exponential backoff with full jitter (see BackoffOptions). Pure: the caller passes
// the random draw, so tests choose it.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "keel/client_options.h"

namespace keel::client {

// The ceiling of retry `retry` (0-based): min(max, initial * multiplier^retry).
[[nodiscard]] absl::Duration BackoffCeiling(absl::Duration initial, absl::Duration max,
                                            double multiplier, int retry);

// A delay uniformly in [0, ceiling]: `random` is a uniform 64-bit draw (0 gives 0,
// UINT64_MAX gives the ceiling).
[[nodiscard]] absl::Duration FullJitter(absl::Duration ceiling, uint64_t random);

// The delay before retry `retry` of a call; `overloaded` (RESOURCE_EXHAUSTED) starts
// from options.overloaded_initial instead of options.initial.
[[nodiscard]] absl::Duration BackoffDelay(const BackoffOptions& options, int retry, bool overloaded,
                                          uint64_t random);

}  // namespace keel::client
