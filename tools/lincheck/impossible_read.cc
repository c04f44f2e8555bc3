#include "tools/lincheck/impossible_read.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace keel::lincheck::internal {
namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();  // An unknown op's return.
constexpr size_t kMaxSourcesShown = 10;

using Value = std::optional<std::string>;  // nullopt: absent.

// The state `op` leaves if it takes effect (writes, deletes, cas).
Value ResultOf(const Operation& op) {
  if (op.type == OpType::kDelete) return std::nullopt;
  return op.value;
}

bool MayProduce(const Operation& op) {
  switch (op.type) {
    case OpType::kWrite:
    case OpType::kDelete:
      return true;
    case OpType::kCas:
      return op.outcome == Outcome::kUnknown || op.cas_succeeded;
    case OpType::kRead:
      return false;
  }
  return false;
}

bool SurelyChanges(const Operation& op) { return op.outcome == Outcome::kOk && MayProduce(op); }

// The ops that may have produced one state, in call order, with the running maximum of their
// returns (kNever once an unknown one is among them).
struct Sources {
  std::vector<const Operation*> ops;
  std::vector<uint64_t> max_end;
};

}  // namespace

std::optional<Counterexample> FindImpossibleRead(const std::vector<const Operation*>& ops) {
  // Acknowledged changes in call order, with the earliest return from each on (suffix minimum).
  std::vector<const Operation*> changes;
  for (const Operation* op : ops) {
    if (SurelyChanges(*op)) changes.push_back(op);
  }
  std::vector<size_t> earliest(changes.size() + 1, SIZE_MAX);  // Index of the min end.
  for (size_t i = changes.size(); i-- > 0;) {
    const size_t next = earliest[i + 1];
    earliest[i] = next != SIZE_MAX && changes[next]->end_ns <= changes[i]->end_ns ? next : i;
  }

  absl::flat_hash_map<std::string, Sources> by_value;
  Sources absent;  // Deletes; the initial state is implicit.
  for (const Operation* op : ops) {
    if (!MayProduce(*op)) continue;
    Sources& s = op->type == OpType::kDelete ? absent : by_value[op->value];
    const uint64_t end = op->outcome == Outcome::kUnknown ? kNever : op->end_ns;
    s.max_end.push_back(s.ops.empty() ? end : std::max(s.max_end.back(), end));
    s.ops.push_back(op);
  }

  for (const Operation* read : ops) {
    if (read->outcome != Outcome::kOk) continue;
    Value wanted;
    if (read->type == OpType::kRead) {
      if (read->found) wanted = read->result;
    } else if (read->type == OpType::kCas && read->cas_succeeded) {
      wanted = read->expect;
    } else {
      continue;
    }
    static const Sources kNone;
    const Sources* sources = &absent;
    if (wanted.has_value()) {
      const auto it = by_value.find(*wanted);
      sources = it == by_value.end() ? &kNone : &it->second;
    }
    // Sources called before the read returned (ties count as concurrent).
    const size_t count =
        std::upper_bound(sources->ops.begin(), sources->ops.end(), read->end_ns,
                         [](uint64_t t, const Operation* op) { return t < op->start_ns; }) -
        sources->ops.begin();
    const bool initial = !wanted.has_value();  // The key starts absent.
    Counterexample cx;
    cx.stuck.push_back(*read);
    for (size_t i = count > kMaxSourcesShown ? count - kMaxSourcesShown : 0; i < count; ++i) {
      cx.sources.push_back(*sources->ops[i]);
    }
    if (count == 0 && !initial) {
      cx.reason =
          absl::StrCat("it needs a value that no operation called before it returned ", "wrote");
      return cx;
    }
    const uint64_t last_end = count == 0 ? 0 : sources->max_end[count - 1];
    if (last_end == kNever) continue;  // An unknown op may have produced it at any time.
    // An acknowledged change to another state, called after every source returned and
    // returned before the read was called.
    const size_t from =
        count == 0
            ? 0
            : std::upper_bound(changes.begin(), changes.end(), last_end,
                               [](uint64_t t, const Operation* op) { return t < op->start_ns; }) -
                  changes.begin();
    const Operation* between = nullptr;
    if (from < changes.size() && changes[earliest[from]]->end_ns < read->start_ns) {
      if (ResultOf(*changes[earliest[from]]) != wanted) {
        between = changes[earliest[from]];
      } else {  // Rare: the earliest one writes the wanted value again; look further.
        for (size_t i = from; i < changes.size() && changes[i]->start_ns < read->start_ns; ++i) {
          if (changes[i]->end_ns < read->start_ns && ResultOf(*changes[i]) != wanted) {
            between = changes[i];
            break;
          }
        }
      }
    }
    if (between == nullptr) continue;
    cx.context.push_back(*between);
    cx.state = ResultOf(*between);
    cx.state_set_by = *between;
    cx.reason = absl::StrCat(
        "it needs a state that ", count == 0 ? "only the initial state had" : "every writer of it",
        count == 0 ? "" : " left", ", and id=", between->id,
        " changed it for certain afterwards (called after ",
        count == 0 ? "the start" : "they returned", ", returned before the read was called)");
    return cx;
  }
  return std::nullopt;
}

}  // namespace keel::lincheck::internal
