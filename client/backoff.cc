#include "client/backoff.h"

#include <algorithm>
#include <cmath>

namespace keel::client {

absl::Duration BackoffCeiling(absl::Duration initial, absl::Duration max, double multiplier,
                              int retry) {
  if (initial <= absl::ZeroDuration() || max <= absl::ZeroDuration()) return absl::ZeroDuration();
  // Compare in doubles: multiplier^retry overflows any Duration for large `retry`.
  const double ceiling_s =
      absl::ToDoubleSeconds(initial) * std::pow(std::max(multiplier, 1.0), std::max(retry, 0));
  if (!std::isfinite(ceiling_s) || ceiling_s >= absl::ToDoubleSeconds(max)) return max;
  return absl::Seconds(ceiling_s);
}

absl::Duration FullJitter(absl::Duration ceiling, uint64_t random) {
  if (ceiling <= absl::ZeroDuration()) return absl::ZeroDuration();
  const double fraction = static_cast<double>(random) / 18446744073709551615.0;  // 2^64 - 1
  return absl::Nanoseconds(
      static_cast<int64_t>(fraction * static_cast<double>(absl::ToInt64Nanoseconds(ceiling))));
}

absl::Duration BackoffDelay(const BackoffOptions& options, int retry, bool overloaded,
                            uint64_t random) {
  const absl::Duration initial = overloaded ? options.overloaded_initial : options.initial;
  return FullJitter(
      BackoffCeiling(initial, std::max(options.max, initial), options.multiplier, retry), random);
}

}  // namespace keel::client
