#include "tools/lincheck/checker.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "tools/lincheck/impossible_read.h"
#include "tools/lincheck/search.h"

namespace keel::lincheck {
namespace {

using internal::kAbsent;
using internal::kInfinity;
using internal::Pool;
using internal::Search;
using internal::SearchOp;
using internal::Step;

// The register's value after applying `op` to `state`, on real values (for the report).
void ApplyForReport(const Operation& op, std::optional<std::string>* state,
                    const Operation** set_by) {
  const bool writes = op.type == OpType::kWrite ||
                      (op.type == OpType::kCas &&
                       (op.outcome == Outcome::kOk ? op.cas_succeeded : *state == op.expect));
  if (writes) {
    *state = op.value;
    *set_by = &op;
  } else if (op.type == OpType::kDelete) {
    state->reset();
    *set_by = &op;
  }
}

Counterexample Explain(const std::vector<SearchOp>& ops, const std::vector<uint32_t>& longest) {
  Counterexample cx;
  cx.found_by_search = true;
  for (const uint32_t i : longest) cx.linearized_count += ops[i].unknown ? 0 : 1;
  cx.reason = absl::StrCat("no order of the key's operations explains every result; the ",
                           "furthest the search got placed ", cx.linearized_count,
                           " of the acknowledged ones");
  std::vector<bool> linearized(ops.size(), false);
  const Operation* set_by = nullptr;
  size_t set_by_position = 0;
  for (size_t i = 0; i < longest.size(); ++i) {
    linearized[longest[i]] = true;
    const Operation* before = set_by;
    ApplyForReport(*ops[longest[i]].op, &cx.state, &set_by);
    if (set_by != before) set_by_position = i;
  }
  if (set_by != nullptr) cx.state_set_by = *set_by;

  // The stuck candidates: the pending known op that returns first, and all called before it.
  uint64_t bound = kInfinity;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!linearized[i] && !ops[i].unknown) bound = std::min(bound, ops[i].end);
  }
  uint64_t window_start = kInfinity;
  for (size_t i = 0; i < ops.size() && ops[i].start <= bound; ++i) {
    if (!linearized[i] && !ops[i].unknown) window_start = std::min(window_start, ops[i].start);
  }
  // Pending unknown ops are candidates too; pooled ones only if called inside the window, or
  // every old timed-out write or delete would be listed.
  for (size_t i = 0; i < ops.size() && ops[i].start <= bound; ++i) {
    if (linearized[i] || (ops[i].pool >= 0 && ops[i].start < window_start)) continue;
    // An unknown op that would change nothing now (a cas whose compare fails) is no candidate.
    const Operation& op = *ops[i].op;
    if (ops[i].unknown && op.type == OpType::kCas && cx.state != op.expect) continue;
    cx.stuck.push_back(*ops[i].op);
  }
  // Sources: who wrote the values the stuck ops need.
  absl::flat_hash_set<absl::string_view> needed;
  for (const Operation& op : cx.stuck) {
    if (op.type == OpType::kRead && op.found) needed.insert(op.result);
    if (op.type == OpType::kCas && (op.outcome != Outcome::kOk || op.cas_succeeded)) {
      needed.insert(op.expect);
    }
  }
  for (const SearchOp& o : ops) {
    const Operation& op = *o.op;
    if ((op.type == OpType::kWrite || op.type == OpType::kCas) && needed.contains(op.value)) {
      cx.sources.push_back(op);
    }
  }
  // Context: the state's setter and what follows it, and the known ops overlapping the window.
  std::vector<const Operation*> context;
  for (size_t i = 0; i < longest.size(); ++i) {
    const SearchOp& o = ops[longest[i]];
    const bool overlaps = !o.unknown && o.end >= window_start;
    if ((set_by != nullptr && i >= set_by_position) || overlaps) context.push_back(o.op);
  }
  const size_t skip = context.size() > Counterexample::kMaxContext
                          ? context.size() - Counterexample::kMaxContext
                          : 0;
  for (size_t i = skip; i < context.size(); ++i) cx.context.push_back(*context[i]);
  return cx;
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kValid:
      return "VALID";
    case Verdict::kInvalid:
      return "INVALID";
    case Verdict::kUnknown:
      return "UNKNOWN";
  }
  return "?";
}

const KeyResult* CheckResult::FirstInvalid() const {
  for (const KeyResult& k : keys) {
    if (k.verdict == Verdict::kInvalid) return &k;
  }
  return nullptr;
}

KeyResult CheckKey(const std::string& key, const std::vector<const Operation*>& ops,
                   const CheckOptions& options) {
  const absl::Time started = absl::Now();
  KeyResult result;
  result.key = key;

  // Drop what cannot matter: failed ops had no effect, unknown reads returned nothing.
  std::vector<const Operation*> kept;
  for (const Operation* op : ops) {
    KEEL_CHECK(op->key == key);
    if (op->outcome == Outcome::kFail) continue;
    if (op->outcome == Outcome::kUnknown && op->type == OpType::kRead) continue;
    kept.push_back(op);
  }
  std::sort(kept.begin(), kept.end(), [](const Operation* x, const Operation* y) {
    return std::tie(x->start_ns, x->id) < std::tie(y->start_ns, y->id);
  });

  // Intern values (ids from 1; 0 is absent) and note which states anything compares against.
  absl::flat_hash_map<absl::string_view, int32_t> ids;
  auto intern = [&ids](const std::string& v) {
    return ids.emplace(v, static_cast<int32_t>(ids.size() + 1)).first->second;
  };
  absl::flat_hash_set<int32_t> compared;  // Read results and cas expectations.
  bool absent_read = false;
  std::vector<SearchOp> search_ops(kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    const Operation& op = *kept[i];
    SearchOp& s = search_ops[i];
    s.op = &op;
    s.unknown = op.outcome == Outcome::kUnknown;
    s.start = op.start_ns;
    s.end = s.unknown ? kInfinity : std::max(op.end_ns, op.start_ns);
    switch (op.type) {
      case OpType::kRead:
        s.step = Step::kRead;
        s.a = op.found ? intern(op.result) : kAbsent;
        if (op.found) compared.insert(s.a);
        absent_read |= !op.found;
        break;
      case OpType::kWrite:
        s.step = Step::kWrite;
        s.a = intern(op.value);
        break;
      case OpType::kDelete:
        s.step = Step::kWrite;
        s.a = kAbsent;
        break;
      case OpType::kCas:
        s.step = s.unknown ? Step::kCasUnknown : op.cas_succeeded ? Step::kCasOk : Step::kCasFailed;
        s.a = intern(op.expect);
        s.b = intern(op.value);
        compared.insert(s.a);
        break;
    }
  }

  // An unknown cas expecting a value no operation writes can never apply: drop it.
  absl::flat_hash_set<int32_t> written;
  for (const SearchOp& s : search_ops) {
    if (s.step == Step::kWrite) written.insert(s.a);
    if (s.step == Step::kCasOk || s.step == Step::kCasUnknown) written.insert(s.b);
  }
  search_ops.erase(std::remove_if(search_ops.begin(), search_ops.end(),
                                  [&](const SearchOp& s) {
                                    return s.step == Step::kCasUnknown && !written.contains(s.a);
                                  }),
                   search_ops.end());

  // A state nothing compares against (a value no read returned and no cas expected, or absence
  // when no read found the key absent) is treated alike by every op: reads and successful cas
  // reject it, failed cas accept it, unknown cas leave it. All such states become one junk
  // state, so the memo does not tell apart which "blind" write (frequent with many clients)
  // came last.
  const int32_t junk_state = static_cast<int32_t>(ids.size() + 1);
  auto seen = [&](int32_t state) {
    return state == kAbsent ? absent_read : compared.contains(state);
  };
  for (SearchOp& s : search_ops) {
    if (s.step == Step::kWrite && !seen(s.a)) s.a = junk_state;
    if ((s.step == Step::kCasOk || s.step == Step::kCasUnknown) && !seen(s.b)) s.b = junk_state;
  }
  // Unknown writes and deletes are pooled by the state they lead to (see Pool) when two or more
  // lead to the same one; pool 0 is the junk pool.
  std::vector<Pool> pools(1);
  pools[0].state = junk_state;
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> by_state;
  for (uint32_t i = 0; i < search_ops.size(); ++i) {
    if (search_ops[i].unknown) result.unknown_ops++;
    if (search_ops[i].unknown && search_ops[i].step == Step::kWrite) {
      by_state[search_ops[i].a].push_back(i);
    }
  }
  std::vector<int32_t> pooled_states;
  for (const auto& [state, members] : by_state) {
    if (state != junk_state && members.size() >= 2) pooled_states.push_back(state);
  }
  std::sort(pooled_states.begin(), pooled_states.end());  // A deterministic pool order.
  pooled_states.insert(pooled_states.begin(), junk_state);
  for (size_t p = 0; p < pooled_states.size(); ++p) {
    if (p > 0) pools.push_back(Pool{pooled_states[p], {}});
    for (const uint32_t i : by_state[pooled_states[p]]) {
      search_ops[i].pool = static_cast<int32_t>(p);
      pools[p].ops.push_back(i);  // In call order: by_state lists were filled in index order.
    }
  }
  result.ops = search_ops.size();

  if (auto cx = options.fast_check ? internal::FindImpossibleRead(kept) : std::nullopt;
      cx.has_value()) {
    result.verdict = Verdict::kInvalid;
    result.counterexample = std::move(cx);
    result.elapsed = absl::Now() - started;
    return result;
  }
  const absl::Time deadline = options.timeout_per_key == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : started + options.timeout_per_key;
  Search search(search_ops, std::move(pools), deadline, options.max_memory_bytes_per_key);
  switch (search.Run()) {
    case Search::Result::kLinearizable:
      result.verdict = Verdict::kValid;
      break;
    case Search::Result::kNotLinearizable:
      result.verdict = Verdict::kInvalid;
      result.counterexample = Explain(search_ops, search.longest());
      break;
    case Search::Result::kTimeout:
      result.verdict = Verdict::kUnknown;
      result.unknown_reason = absl::StrCat("the search timed out after ",
                                           absl::FormatDuration(options.timeout_per_key));
      break;
    case Search::Result::kOutOfMemory:
      result.verdict = Verdict::kUnknown;
      result.unknown_reason = absl::StrCat("the search's memo outgrew ",
                                           options.max_memory_bytes_per_key >> 20, " MiB");
      break;
  }
  result.states = search.states();
  result.elapsed = absl::Now() - started;
  return result;
}

CheckResult CheckHistory(const History& history, const CheckOptions& options) {
  const absl::Time started = absl::Now();
  CheckResult result;
  result.ops = history.size();
  std::map<absl::string_view, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) by_key[op.key].push_back(&op);
  for (const auto& [key, ops] : by_key) {
    result.keys.push_back(CheckKey(std::string(key), ops, options));
    const Verdict v = result.keys.back().verdict;
    if (v == Verdict::kInvalid) {
      result.verdict = Verdict::kInvalid;
    } else if (v == Verdict::kUnknown && result.verdict == Verdict::kValid) {
      result.verdict = Verdict::kUnknown;
    }
  }
  result.elapsed = absl::Now() - started;
  return result;
}

}  // namespace keel::lincheck
