// Random histories of a real linearizable register store, for testing and timing the checker.
//
// GenerateHistory simulates `processes` clients, each issuing one operation at a time on a
// random key with a random latency; each operation takes effect at a random instant inside its
// interval (its linearization point), and results are computed by applying the operations to a
// register per key in that order, so the history is linearizable by construction. Operations
// with outcome unknown take effect in half the cases, possibly long after the client gave up
// (their end_ns is 0); operations with outcome fail take no effect. Written values are unique
// ("v<id>"), as a checker's adversary would write them. Deterministic in `seed`.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "tools/lincheck/history.h"

namespace keel::lincheck {

struct GeneratorOptions {
  uint64_t seed = 1;
  size_t ops = 1000;
  size_t keys = 10;
  size_t processes = 16;
  double unknown_fraction = 0.02;  // Share of operations whose outcome is unknown.
  double fail_fraction = 0.01;     // Share of operations that fail (no effect).
  // Operation mix (weights): reads, writes, cas, deletes.
  double read_weight = 0.5;
  double write_weight = 0.3;
  double cas_weight = 0.15;
  double delete_weight = 0.05;
  // Latency is uniform in [min, max] ns, with 5% of operations up to 10x max (stragglers);
  // the pause between a process's operations is uniform in [0, max_think_ns].
  uint64_t min_latency_ns = 50'000;
  uint64_t max_latency_ns = 1'000'000;
  uint64_t max_think_ns = 100'000;
};

[[nodiscard]] History GenerateHistory(const GeneratorOptions& options);

// Makes one successful read return a stale value: a value written by an acknowledged write W1
// that an acknowledged write or delete W2 overwrote, where W1 returned before W2 was called and
// W2 returned before the read was called. No other operation writes that value, so the history
// is certainly not linearizable. Returns the id of the changed read, or kNotFound if the
// history has no such triple. Deterministic in `seed`.
[[nodiscard]] absl::StatusOr<uint64_t> InjectStaleRead(History* history, uint64_t seed);

}  // namespace keel::lincheck
