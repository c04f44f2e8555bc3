#include "tools/lincheck/search.h"

#include <algorithm>
#include <tuple>

namespace keel::lincheck::internal {
namespace {

constexpr int32_t kNil = -1;

// The value `o` leads to if it changes the register (conditionally for a cas), else -1.
int32_t Produces(const SearchOp& o) {
  switch (o.step) {
    case Step::kWrite:
      return o.a;
    case Step::kCasOk:
    case Step::kCasUnknown:
      return o.b;
    case Step::kRead:
    case Step::kCasFailed:
      return -1;
  }
  return -1;
}

uint64_t Mix64(uint64_t x) {  // splitmix64's finalizer.
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

template <typename Entry>
void Unlink(std::vector<Entry>& list, int32_t e) {
  Entry& x = list[e];
  list[x.prev].next = x.next;
  if (x.next != kNil) list[x.next].prev = x.prev;
}

template <typename Entry>
void Relink(std::vector<Entry>& list, int32_t e) {
  Entry& x = list[e];
  list[x.prev].next = e;
  if (x.next != kNil) list[x.next].prev = e;
}

}  // namespace

Memo::Memo() : set_(1024, SlotHash{}, SlotEq{&arena_}) {}

bool Memo::SlotEq::operator()(const Slot& x, const Slot& y) const {
  if (x.hash != y.hash) return false;
  const uint32_t* a = arena->data() + x.offset;
  const uint32_t* b = arena->data() + y.offset;
  return a[0] == b[0] && std::equal(a + 2, a + 2 + a[0], b + 2);
}

bool Memo::Visit(uint64_t hash, const std::vector<uint32_t>& key, uint32_t junk_used) {
  const uint32_t offset = static_cast<uint32_t>(arena_.size());
  arena_.push_back(static_cast<uint32_t>(key.size()));
  arena_.push_back(junk_used);
  arena_.insert(arena_.end(), key.begin(), key.end());
  const auto [it, inserted] = set_.insert(Slot{hash, offset});
  if (inserted) return true;
  arena_.resize(offset);
  uint32_t& best_junk = arena_[it->offset + 1];
  if (best_junk <= junk_used) return false;
  best_junk = junk_used;
  return true;
}

Search::Search(const std::vector<SearchOp>& ops, std::vector<Pool> pools, absl::Time deadline,
               uint64_t max_memory_bytes)
    : ops_(ops),
      pools_(std::move(pools)),
      pool_used_(pools_.size(), 0),
      deadline_(deadline),
      max_memory_bytes_(max_memory_bytes) {
  BuildLists();
}

// The value `o` compares the register against (reads, every cas), else -1.
int32_t Observes(const SearchOp& o) { return o.step == Step::kWrite ? -1 : o.a; }

void Search::BuildLists() {
  int32_t max_value = 0;
  for (const SearchOp& o : ops_) max_value = std::max({max_value, o.a, o.b});
  for (const Pool& pool : pools_) max_value = std::max(max_value, pool.state);
  pending_producers_.assign(max_value + 1, 0);
  for (const SearchOp& o : ops_) {
    if (o.pool < 0 && Produces(o) >= 0) ++pending_producers_[Produces(o)];
  }
  for (const Pool& pool : pools_) pending_producers_[pool.state] += pool.ops.size();
  pending_observers_.assign(max_value + 1, 0);
  for (const SearchOp& o : ops_) {
    if (Observes(o) >= 0) ++pending_observers_[Observes(o)];
  }

  entry_of_.assign(ops_.size(), kNil);
  // (time, kind, op): at equal times calls sort before returns, so operations that merely touch
  // count as concurrent (the lenient reading of equal timestamps).
  std::vector<std::tuple<uint64_t, int, uint32_t>> events;
  for (uint32_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i].unknown) continue;
    events.emplace_back(ops_[i].start, 0, i);
    events.emplace_back(ops_[i].end, 1, i);
  }
  std::sort(events.begin(), events.end());
  known_.resize(events.size() + 1);
  for (size_t k = 0; k < events.size(); ++k) {
    const auto [time, kind, op] = events[k];
    Entry& e = known_[k + 1];
    e.time = time;
    e.op = op;
    e.is_call = kind == 0;
    if (e.is_call) {
      entry_of_[op] = static_cast<int32_t>(k + 1);
    } else {
      known_[entry_of_[op]].match = static_cast<int32_t>(k + 1);
    }
  }
  for (size_t k = 0; k < known_.size(); ++k) {
    known_[k].prev = k == 0 ? kNil : static_cast<int32_t>(k - 1);
    known_[k].next = k + 1 < known_.size() ? static_cast<int32_t>(k + 1) : kNil;
  }
  unknown_.resize(1);
  for (uint32_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i].unknown || ops_[i].pool >= 0) continue;
    Entry e;
    e.time = ops_[i].start;
    e.op = i;
    e.prev = static_cast<int32_t>(unknown_.size() - 1);
    unknown_.back().next = static_cast<int32_t>(unknown_.size());
    entry_of_[i] = static_cast<int32_t>(unknown_.size());
    unknown_.push_back(e);
  }
  unknown_linked_.assign(unknown_.size(), true);
  unknown_cas_by_expect_.resize(max_value + 1);
  for (size_t k = 1; k < unknown_.size(); ++k) {
    const SearchOp& o = ops_[unknown_[k].op];
    if (o.step == Step::kCasUnknown) unknown_cas_by_expect_[o.a].push_back(static_cast<int32_t>(k));
  }
}

void Search::Lift(const Candidate& c) {
  const int32_t e = entry_of_[c.op];
  const int32_t produced = c.kind == Kind::kPool ? pools_[c.pool].state : Produces(ops_[c.op]);
  if (produced >= 0) --pending_producers_[produced];
  if (c.kind != Kind::kPool && Observes(ops_[c.op]) >= 0)
    --pending_observers_[Observes(ops_[c.op])];
  switch (c.kind) {
    case Kind::kForced:
    case Kind::kKnown:
      Unlink(known_, e);
      Unlink(known_, known_[e].match);
      break;
    case Kind::kUnknown:
      Unlink(unknown_, e);
      unknown_linked_[e] = false;
      break;
    case Kind::kPool:
      ++pool_used_[c.pool];
      break;
  }
}

void Search::Unlift(const Candidate& c) {
  const int32_t e = entry_of_[c.op];
  const int32_t produced = c.kind == Kind::kPool ? pools_[c.pool].state : Produces(ops_[c.op]);
  if (produced >= 0) ++pending_producers_[produced];
  if (c.kind != Kind::kPool && Observes(ops_[c.op]) >= 0)
    ++pending_observers_[Observes(ops_[c.op])];
  switch (c.kind) {
    case Kind::kForced:
    case Kind::kKnown:
      Relink(known_, known_[e].match);
      Relink(known_, e);
      break;
    case Kind::kUnknown:
      Relink(unknown_, e);
      unknown_linked_[e] = true;
      break;
    case Kind::kPool:
      --pool_used_[c.pool];
      break;
  }
}

// The candidates are Lowe's: the known calls before the first return entry (nothing returned
// before they were called), then the unknown ops called before that return, then the next op
// of each pool. Only ops that are legal in `state` and change it are listed, but for a forced
// op, which is listed alone (an unknown op that would change nothing is better left pending:
// it may still apply later). The order is a heuristic (any order is correct, but a good one
// spares valid histories most backtracking):
//   0. known changes to the junk state (placed just before another change they are invisible);
//   1. known changes that make a candidate read or compare legal, by the earliest return among
//      those candidates (the sooner one returns, the sooner its value must be there);
//   2. the same for unknown ops;
//   3. other known changes by earliest return (one that must happen soon likely happened first);
//   4. other unknown ops; 5. the junk pool.
void Search::ListCandidates(int32_t state) {
  candidates_.clear();
  wanted_.clear();
  ranked_.clear();
  const bool must_observe = AfterUnknown();
  int32_t e = known_[0].next;
  for (; e != kNil && known_[e].is_call; e = known_[e].next) {
    const SearchOp& o = ops_[known_[e].op];
    const bool never_changes = o.step == Step::kRead || o.step == Step::kCasFailed;
    if (never_changes && Apply(o, state) == state) {
      candidates_.push_back(Candidate{known_[e].op, Kind::kForced, 0});
      return;
    }
    if (o.step == Step::kRead || o.step == Step::kCasOk) wanted_.emplace_back(o.a, o.end);
  }
  if (e == kNil) return;  // Nothing left to linearize.
  const uint64_t bound = known_[e].time;
  // The earliest return among the candidates that `next_state` would make legal, or kInfinity.
  auto enables = [this](int32_t next_state) {
    uint64_t earliest = kInfinity;
    for (const auto& [value, end] : wanted_) {
      if (value == next_state) earliest = std::min(earliest, end);
    }
    return earliest;
  };
  auto rank = [&](int32_t next_state, bool known, uint64_t time, Candidate c) {
    const uint64_t enabled_end = enables(next_state);
    int tier = known ? 3 : 4;
    if (known && Canonical(next_state) == pools_[0].state) {
      tier = 0;
    } else if (enabled_end != kInfinity) {
      tier = known ? 1 : 2;
      time = enabled_end;
    }
    ranked_.push_back(Ranked{tier, time, c});
  };
  for (e = known_[0].next; known_[e].is_call; e = known_[e].next) {
    const SearchOp& o = ops_[known_[e].op];
    const int32_t next_state = Apply(o, state);
    if (next_state == kImpossible || o.step == Step::kRead || o.step == Step::kCasFailed) continue;
    if (must_observe && o.step == Step::kWrite) continue;
    rank(next_state, true, o.end, Candidate{known_[e].op, Kind::kKnown, 0});
  }
  bool junk_write_listed = false;
  for (e = unknown_[0].next; e != kNil && unknown_[e].time <= bound; e = unknown_[e].next) {
    const SearchOp& o = ops_[unknown_[e].op];
    const int32_t next_state = Apply(o, state);
    if (Canonical(next_state) == state || (must_observe && o.step == Step::kWrite)) continue;
    if (o.step == Step::kWrite && Canonical(next_state) == pools_[0].state) {
      // Unknown writes to states no pending op can tell apart are interchangeable (as in a
      // pool): only the earliest-called one is worth trying.
      if (junk_write_listed) continue;
      junk_write_listed = true;
      ranked_.push_back(Ranked{5, o.start, Candidate{unknown_[e].op, Kind::kUnknown, 0}});
      continue;
    }
    rank(next_state, false, o.start, Candidate{unknown_[e].op, Kind::kUnknown, 0});
  }
  for (size_t p = 1; p < pools_.size() && !must_observe; ++p) {
    const Pool& pool = pools_[p];
    const uint32_t used = pool_used_[p];
    if (pool.state == state || used == pool.ops.size() || ops_[pool.ops[used]].start > bound) {
      continue;
    }
    const uint32_t op = pool.ops[used];
    rank(pool.state, false, ops_[op].start, Candidate{op, Kind::kPool, static_cast<uint16_t>(p)});
  }
  std::stable_sort(ranked_.begin(), ranked_.end(), [](const Ranked& x, const Ranked& y) {
    return std::tie(x.tier, x.time) < std::tie(y.tier, y.time);
  });
  for (const Ranked& r : ranked_) candidates_.push_back(r.candidate);
  const Pool& junk = pools_[0];
  if (!must_observe && junk.state != state && pool_used_[0] < junk.ops.size() &&
      ops_[junk.ops[pool_used_[0]]].start <= bound) {
    candidates_.push_back(Candidate{junk.ops[pool_used_[0]], Kind::kPool, 0});
  }
}

// key_ = [state, m, holes..., pool counts...]: the holes are the call entries still in the
// lists with an index below m. Both lists are in call order, so each walk stops at the first
// index >= m.
void Search::RetireDeadCas(int32_t value, int32_t state) {
  if (value < 0 || value == state || pending_producers_[value] != 0) return;
  for (const int32_t e : unknown_cas_by_expect_[value]) {
    if (!unknown_linked_[e]) continue;
    Unlink(unknown_, e);
    unknown_linked_[e] = false;
    retired_.push_back(e);
  }
}

void Search::MakeKey(int32_t state, uint32_t m, bool restricted) {
  key_.clear();
  key_.push_back(static_cast<uint32_t>(state));
  key_.push_back(m);
  for (int32_t e = known_[0].next; e != kNil; e = known_[e].next) {
    if (!known_[e].is_call) continue;
    if (known_[e].op >= m) break;
    key_.push_back(known_[e].op);
  }
  for (int32_t e = unknown_[0].next; e != kNil; e = unknown_[e].next) {
    if (unknown_[e].op >= m) break;
    const SearchOp& o = ops_[unknown_[e].op];
    const bool dead = o.step == Step::kCasUnknown && o.a != state && pending_producers_[o.a] == 0;
    if (!dead) key_.push_back(unknown_[e].op);
  }
  // A separator (hole lists of different lengths must not run into the counts), which also
  // records whether the node is restricted to observers (it has fewer options).
  key_.push_back(restricted ? UINT32_MAX : UINT32_MAX - 1);
  key_.insert(key_.end(), pool_used_.begin() + 1, pool_used_.end());
}

// After a push: keeps longest_ equal to the stack with the most known ops seen, copying each
// pushed element at most once (longest_agree_ tracks the prefix the two still share).
void Search::RecordLongest() {
  const size_t depth = stack_.size();
  const uint32_t op = stack_.back().candidate.op;
  if (longest_agree_ == depth - 1 && longest_.size() >= depth && longest_[depth - 1] == op) {
    longest_agree_ = depth;
  }
  if (known_depth_ <= longest_known_) return;
  longest_.resize(longest_agree_);
  for (size_t i = longest_agree_; i < depth; ++i) longest_.push_back(stack_[i].candidate.op);
  longest_agree_ = depth;
  longest_known_ = known_depth_;
}

Search::Result Search::Run() {
  int32_t state = Canonical(kAbsent);
  uint32_t m = 0;
  // Hash of the linearized set: the sum of a random number per linearized non-pooled op and per
  // use of a pool (a sum, so that the order of linearization does not matter). Junk-pool uses
  // are left out: the memo compares their count by dominance.
  uint64_t hash = 0;
  uint64_t iterations = 0;
  ListCandidates(state);
  size_t index = 0;  // The next candidate of the current node to try.
  while (true) {
    if (known_[0].next == kNil) return Result::kLinearizable;  // Unknown ops go last.
    if ((++iterations & 1023) == 0) {
      if (absl::Now() > deadline_) return Result::kTimeout;
      if (memo_.memory_bytes() > max_memory_bytes_) return Result::kOutOfMemory;
    }

    if (index >= candidates_.size()) {  // Every candidate failed: backtrack.
      if (stack_.empty()) return Result::kNotLinearizable;
      const Frame f = stack_.back();
      stack_.pop_back();
      longest_agree_ = std::min(longest_agree_, stack_.size());
      if (!ops_[f.candidate.op].unknown) --known_depth_;
      state = f.prev_state;
      m = f.prev_m;
      hash = f.prev_hash;
      while (retired_.size() > f.retired_mark) {
        Relink(unknown_, retired_.back());
        unknown_linked_[retired_.back()] = true;
        retired_.pop_back();
      }
      Unlift(f.candidate);
      ListCandidates(state);  // The same list as before: the node is restored exactly.
      index = f.candidate.kind == Kind::kForced ? candidates_.size() : f.index + 1;
      continue;
    }

    const Candidate c = candidates_[index];
    const bool pooled = c.kind == Kind::kPool;
    const int32_t raw_state = pooled ? pools_[c.pool].state : Apply(ops_[c.op], state);
    Lift(c);
    const int32_t next_state = Canonical(raw_state);
    const uint32_t next_m = pooled ? m : std::max(m, c.op + 1);
    const uint64_t next_hash = !pooled       ? hash + Mix64(c.op)
                               : c.pool == 0 ? hash
                                             : hash + Mix64(c.pool + (1ULL << 32));
    const bool restricted_child = c.kind == Kind::kUnknown || c.kind == Kind::kPool;
    MakeKey(next_state, next_m, restricted_child);
    const uint64_t memo_hash =
        Mix64(next_hash ^ Mix64((static_cast<uint64_t>(next_state) << 40) | restricted_child));
    if (memo_.Visit(memo_hash, key_, pool_used_[0])) {
      stack_.push_back(Frame{c, static_cast<uint32_t>(index), state, m, hash,
                             static_cast<uint32_t>(retired_.size())});
      // Cas expecting what this step produced (one producer fewer) or what the register held
      // (it changed) may now be dead.
      RetireDeadCas(pooled ? pools_[c.pool].state : Produces(ops_[c.op]), next_state);
      RetireDeadCas(state, next_state);
      if (!ops_[c.op].unknown) ++known_depth_;
      RecordLongest();
      state = next_state;
      m = next_m;
      hash = next_hash;
      ListCandidates(state);
      index = 0;
      continue;
    }
    Unlift(c);
    // A forced op reached before failed from there, and it was the node's only branch.
    index = c.kind == Kind::kForced ? candidates_.size() : index + 1;
  }
}

}  // namespace keel::lincheck::internal
