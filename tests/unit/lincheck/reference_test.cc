// The checker against a brute-force reference on thousands of tiny random histories (any mix
// of valid and invalid, values repeating, every outcome): the search's reductions (forced reads,
// junk states, pools, observer-only after unknown ops, dead unknown cas, the fast check) must
// never change a verdict.
#include <algorithm>
#include <optional>
#include <random>

#include "gtest/gtest.h"
#include "tools/lincheck/checker.h"

namespace keel::lincheck {
namespace {

using State = std::optional<std::string>;

// The model on real values; nullopt if `op` cannot happen in `state`.
std::optional<State> Step(const Operation& op, const State& state) {
  switch (op.type) {
    case OpType::kRead:
      if (op.found ? state == op.result : !state.has_value()) return state;
      return std::nullopt;
    case OpType::kWrite:
      return State(op.value);
    case OpType::kDelete:
      return State();
    case OpType::kCas:
      if (op.outcome == Outcome::kUnknown) return state == op.expect ? State(op.value) : state;
      if (op.cas_succeeded) {
        if (state == op.expect) return State(op.value);
        return std::nullopt;
      }
      if (state != op.expect) return state;
      return std::nullopt;
  }
  return std::nullopt;
}

// Tries every order that respects real time, with every subset of the unknown operations.
bool BruteForce(const std::vector<Operation>& ops, std::vector<bool>& used, const State& state) {
  bool all_known_used = true;
  for (size_t i = 0; i < ops.size(); ++i) all_known_used &= used[i] || ops[i].end_ns == 0;
  if (all_known_used) return true;  // Unknown ops left over never took effect.
  for (size_t i = 0; i < ops.size(); ++i) {
    if (used[i]) continue;
    bool ready = true;  // Every known op that returned before i was called is placed.
    for (size_t j = 0; j < ops.size() && ready; ++j) {
      ready = used[j] || ops[j].end_ns == 0 || ops[j].end_ns >= ops[i].start_ns;
    }
    if (!ready) continue;
    const auto next = Step(ops[i], state);
    if (!next.has_value()) continue;
    used[i] = true;
    const bool ok = BruteForce(ops, used, *next);
    used[i] = false;
    if (ok) return true;
  }
  return false;
}

Operation RandomOp(std::mt19937_64& rng, uint64_t id) {
  auto pick = [&rng](int n) { return static_cast<int>(rng() % n); };
  static const char* kValues[] = {"a", "b", "c"};
  Operation op;
  op.id = id;
  op.process = id;
  op.key = "k";
  op.start_ns = 1 + pick(20);  // end_ns 0 means unknown.
  op.end_ns = op.start_ns + pick(8);
  op.outcome = pick(5) == 0 ? Outcome::kUnknown : Outcome::kOk;
  switch (pick(4)) {
    case 0:
      op.type = OpType::kRead;
      op.found = pick(4) != 0;
      if (op.found) op.result = kValues[pick(3)];
      break;
    case 1:
      op.type = OpType::kWrite;
      op.value = kValues[pick(3)];
      break;
    case 2:
      op.type = OpType::kCas;
      op.expect = kValues[pick(3)];
      op.value = kValues[pick(3)];
      op.cas_succeeded = pick(2) == 0;
      break;
    default:
      op.type = OpType::kDelete;
      break;
  }
  if (op.outcome == Outcome::kUnknown) {
    op.end_ns = 0;
    op.found = false;
    op.result.clear();
    op.cas_succeeded = false;
  }
  return op;
}

TEST(ReferenceTest, TinyRandomHistoriesAgreeWithBruteForce) {
  std::mt19937_64 rng(42);
  int valid = 0;
  int invalid = 0;
  for (int round = 0; round < 4000; ++round) {
    const size_t n = 1 + rng() % 7;
    History history;
    for (size_t i = 0; i < n; ++i) history.push_back(RandomOp(rng, i + 1));
    // The reference sees what the checker keeps: no unknown reads.
    std::vector<Operation> kept;
    for (const Operation& op : history) {
      if (!(op.type == OpType::kRead && op.outcome == Outcome::kUnknown)) kept.push_back(op);
    }
    std::vector<bool> used(kept.size(), false);
    const Verdict expected = BruteForce(kept, used, State()) ? Verdict::kValid : Verdict::kInvalid;
    (expected == Verdict::kValid ? valid : invalid)++;
    CheckOptions search_only;
    search_only.fast_check = false;
    std::string dump;
    for (const Operation& op : history) dump += OperationToJson(op) + "\n";
    ASSERT_EQ(CheckHistory(history).verdict, expected) << "round " << round << "\n" << dump;
    ASSERT_EQ(CheckHistory(history, search_only).verdict, expected)
        << "search only, round " << round << "\n"
        << dump;
  }
  // Both verdicts are well represented, or the comparison proves little.
  EXPECT_GT(valid, 800);
  EXPECT_GT(invalid, 800);
}

}  // namespace
}  // namespace keel::lincheck
