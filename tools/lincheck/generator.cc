#include "tools/lincheck/generator.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace keel::lincheck {
namespace {

uint64_t Uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}

bool Coin(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }

OpType PickType(std::mt19937_64& rng, const GeneratorOptions& o) {
  std::discrete_distribution<int> mix(
      {o.read_weight, o.write_weight, o.cas_weight, o.delete_weight});
  switch (mix(rng)) {
    case 0:
      return OpType::kRead;
    case 1:
      return OpType::kWrite;
    case 2:
      return OpType::kCas;
    default:
      return OpType::kDelete;
  }
}

// Applies the operations that took effect on one key in linearization order, filling in what
// the clients saw (read results, cas outcomes) and choosing cas expectations that match often.
void ApplyInOrder(std::vector<std::pair<uint64_t, size_t>>& effects, History& history,
                  std::mt19937_64& rng) {
  std::sort(effects.begin(), effects.end());
  std::optional<std::string> state;
  std::deque<std::string> recent;  // The last values written, for cas expectations.
  for (const auto& [at, index] : effects) {
    Operation& op = history[index];
    switch (op.type) {
      case OpType::kRead:
        if (op.outcome == Outcome::kOk) {
          op.found = state.has_value();
          op.result = state.value_or("");
        }
        break;
      case OpType::kWrite:
        state = op.value;
        break;
      case OpType::kDelete:
        state.reset();
        break;
      case OpType::kCas: {
        if (state.has_value() && Coin(rng, 0.6)) {
          op.expect = *state;
        } else if (!recent.empty()) {
          op.expect = recent[Uniform(rng, 0, recent.size() - 1)];
        }  // Else it keeps the never-written expectation it was generated with.
        const bool matches = state == op.expect;
        if (op.outcome == Outcome::kOk) op.cas_succeeded = matches;
        if (matches) state = op.value;
        break;
      }
    }
    if (state.has_value() && (recent.empty() || recent.back() != *state)) {
      recent.push_back(*state);
      if (recent.size() > 4) recent.pop_front();
    }
  }
}

}  // namespace

History GenerateHistory(const GeneratorOptions& o) {
  std::mt19937_64 rng(o.seed);
  History history;
  history.reserve(o.ops);
  const size_t keys = std::max<size_t>(o.keys, 1);
  // Per key: (linearization point, index into history) of each operation that took effect.
  std::vector<std::vector<std::pair<uint64_t, size_t>>> effects(keys);
  // Processes ordered by when they issue their next operation.
  using Ready = std::pair<uint64_t, uint64_t>;  // (time, process)
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready;
  constexpr uint64_t kEpochNs = 1'000'000'000;
  for (uint64_t p = 0; p < std::max<size_t>(o.processes, 1); ++p) {
    ready.emplace(kEpochNs + Uniform(rng, 0, o.max_think_ns), p);
  }
  for (uint64_t id = 1; id <= o.ops; ++id) {
    const auto [now, process] = ready.top();
    ready.pop();
    const size_t key = Uniform(rng, 0, keys - 1);
    Operation op;
    op.id = id;
    op.process = process;
    op.key = absl::StrCat("k", key);
    op.type = PickType(rng, o);
    if (op.type == OpType::kWrite || op.type == OpType::kCas) op.value = absl::StrCat("v", id);
    if (op.type == OpType::kCas) op.expect = absl::StrCat("never-", id);
    uint64_t latency = Uniform(rng, o.min_latency_ns, std::max(o.min_latency_ns, o.max_latency_ns));
    if (Coin(rng, 0.05)) latency = Uniform(rng, latency, 10 * latency);
    op.start_ns = now;
    const uint64_t end = now + latency;
    const double r = std::uniform_real_distribution<double>(0, 1)(rng);
    std::optional<uint64_t> effect_at;
    if (r < o.unknown_fraction) {
      op.outcome = Outcome::kUnknown;  // end_ns stays 0.
      if (Coin(rng, 0.5)) effect_at = Uniform(rng, now, end + 10 * latency);
    } else if (r < o.unknown_fraction + o.fail_fraction) {
      op.outcome = Outcome::kFail;
      op.end_ns = end;
    } else {
      op.outcome = Outcome::kOk;
      op.end_ns = end;
      effect_at = Uniform(rng, now, end);
    }
    if (effect_at.has_value()) effects[key].emplace_back(*effect_at, history.size());
    history.push_back(std::move(op));
    ready.emplace(end + Uniform(rng, 0, o.max_think_ns), process);
  }
  for (auto& key_effects : effects) ApplyInOrder(key_effects, history, rng);
  return history;
}

absl::StatusOr<uint64_t> InjectStaleRead(History* history, uint64_t seed) {
  const History& h = *history;
  auto writes_value = [](const Operation& op) {
    return op.outcome != Outcome::kFail && (op.type == OpType::kWrite || op.type == OpType::kCas);
  };
  auto acknowledged = [](const Operation& op) {
    return op.outcome == Outcome::kOk && (op.type == OpType::kWrite || op.type == OpType::kDelete ||
                                          (op.type == OpType::kCas && op.cas_succeeded));
  };
  absl::flat_hash_map<std::string, int> writers;                  // value -> ops that may write it.
  absl::flat_hash_map<std::string, std::vector<size_t>> changes;  // key -> acknowledged changes.
  std::vector<size_t> reads;
  for (size_t i = 0; i < h.size(); ++i) {
    if (writes_value(h[i])) writers[h[i].value]++;
    if (acknowledged(h[i])) changes[h[i].key].push_back(i);
    if (h[i].type == OpType::kRead && h[i].outcome == Outcome::kOk && h[i].found) {
      reads.push_back(i);
    }
  }
  std::mt19937_64 rng(seed);
  std::shuffle(reads.begin(), reads.end(), rng);
  for (const size_t r : reads) {
    const Operation& read = h[r];
    const auto it = changes.find(read.key);
    if (it == changes.end()) continue;
    // W2: the latest-returning acknowledged change that returned before the read was called.
    const Operation* w2 = nullptr;
    for (const size_t c : it->second) {
      if (h[c].end_ns < read.start_ns && (w2 == nullptr || h[c].end_ns > w2->end_ns)) w2 = &h[c];
    }
    if (w2 == nullptr) continue;
    // W1: an acknowledged value write that returned before W2 was called, whose value nobody
    // else writes.
    const Operation* w1 = nullptr;
    for (const size_t c : it->second) {
      const Operation& op = h[c];
      if (op.type != OpType::kDelete && op.end_ns < w2->start_ns && op.value != read.result &&
          writers[op.value] == 1 && (w1 == nullptr || op.end_ns > w1->end_ns)) {
        w1 = &op;
      }
    }
    if (w1 == nullptr) continue;
    (*history)[r].result = w1->value;
    return read.id;
  }
  return absl::NotFoundError("no read that can be made stale");
}

}  // namespace keel::lincheck
