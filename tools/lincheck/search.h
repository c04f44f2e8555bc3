// Internal to keel_lincheck: the search of one key's history (checker.h has the public API and
// the model). CheckKey turns operations into SearchOps on interned values and runs a Search.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "tools/lincheck/history.h"

namespace keel::lincheck::internal {

inline constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();
inline constexpr int32_t kAbsent = 0;  // Register state: the key does not exist.
inline constexpr int32_t kImpossible = -1;

// What an operation requires of and does to the register, on interned values (kAbsent or a
// value id >= 1).
enum class Step : uint8_t {
  kRead,        // requires state == a
  kWrite,       // state := a (a may be kAbsent: a delete)
  kCasOk,       // requires state == a; state := b
  kCasFailed,   // requires state != a
  kCasUnknown,  // if state == a then state := b (never impossible)
};

struct SearchOp {
  const Operation* op = nullptr;
  Step step = Step::kRead;
  int32_t a = 0;
  int32_t b = 0;
  uint64_t start = 0;
  uint64_t end = 0;  // kInfinity when the outcome is unknown.
  bool unknown = false;
  // Unknown unconditional changes (writes, deletes) are grouped by the state they lead to; the
  // ops of a pool are interchangeable but for their call times. -1: not pooled.
  int32_t pool = -1;
};

// The state after `o` in `state`, or kImpossible.
inline int32_t Apply(const SearchOp& o, int32_t state) {
  switch (o.step) {
    case Step::kRead:
      return state == o.a ? state : kImpossible;
    case Step::kWrite:
      return o.a;
    case Step::kCasOk:
      return state == o.a ? o.b : kImpossible;
    case Step::kCasFailed:
      return state != o.a ? state : kImpossible;
    case Step::kCasUnknown:
      return state == o.a ? o.b : state;
  }
  return kImpossible;
}

// A pool of unknown changes that lead to the same state. Any linearization that uses k of them
// can use the k called first instead (an earlier call only loosens the real-time constraints,
// and none has a return), so the search only ever takes the next one in call order, and the
// number used replaces the set. Pool 0 is the junk pool: see CheckKey.
struct Pool {
  int32_t state = 0;
  std::vector<uint32_t> ops;  // Op indices in call order.
};

// The memo of visited (linearized set, state) pairs. A linearized set is stored as
// (m, holes, pool counts): m = 1 + the largest linearized index of a non-pooled op, holes = the
// unlinearized non-pooled indices below m (ops are indexed in call order, so the holes are only
// the ops pending around the search's frontier: a handful, where a bitset would need n/64 words),
// and the number used of each pool but the junk pool. Each record keeps the fewest junk-pool ops
// used to reach it: reaching the same pair with more used leaves fewer options, so the search
// prunes it (dominance).
class Memo {
 public:
  Memo();
  // `key` = [state, m, holes..., pool counts...]. True if the pair is new, or was only reached
  // with more junk used (the record then keeps `junk_used`): the search should explore it.
  bool Visit(uint64_t hash, const std::vector<uint32_t>& key, uint32_t junk_used);
  size_t size() const { return set_.size(); }
  // Bytes held (arena and hash table; the table keeps one control byte per slot).
  size_t memory_bytes() const {
    return arena_.capacity() * sizeof(uint32_t) + set_.capacity() * (sizeof(Slot) + 1);
  }

 private:
  struct Slot {
    uint64_t hash;
    uint32_t offset;  // Into arena_: [key length, junk used, key...].
  };
  struct SlotHash {
    size_t operator()(const Slot& s) const { return s.hash; }
  };
  struct SlotEq {
    const std::vector<uint32_t>* arena;
    bool operator()(const Slot& x, const Slot& y) const;
  };

  std::vector<uint32_t> arena_;
  absl::flat_hash_set<Slot, SlotHash, SlotEq> set_;
};

// Wing & Gong's search with Lowe's just-in-time linearization, over one key's ops (sorted by
// call time; index = position). Known ops live as call and return entries in one time-ordered
// doubly linked list, from which linearized ops are lifted and restored on backtracking
// (dancing links); non-pooled unknown ops in a second list of calls; pooled ones in pools.
// Not thread-safe; one Run per object.
class Search {
 public:
  enum class Result { kLinearizable, kNotLinearizable, kTimeout, kOutOfMemory };

  // `pools[0]` is the junk pool (its state is never read; it may be empty).
  Search(const std::vector<SearchOp>& ops, std::vector<Pool> pools, absl::Time deadline,
         uint64_t max_memory_bytes);

  Result Run();

  // The partial linearization seen with the most known ops (op indices in linearization
  // order; it ends with a known op: unknown ones linearized last explain nothing).
  const std::vector<uint32_t>& longest() const { return longest_; }
  uint64_t states() const { return memo_.size(); }

 private:
  // kForced: a known read or failed compare that is legal now. Linearizing it next is always as
  // good as any other choice (it never changes the register, and as a candidate nothing has to
  // come before it), so it is its node's only branch. (A write of the current value is not
  // forced: where it belongs it may be no no-op.)
  enum class Kind : uint8_t { kForced, kKnown, kUnknown, kPool };

  struct Candidate {
    uint32_t op;
    Kind kind;
    uint16_t pool;  // kPool only.
  };

  // An entry of the known list (call or return) or of the unknown list (call only).
  struct Entry {
    uint64_t time = 0;
    int32_t prev = -1;
    int32_t next = -1;
    int32_t match = -1;  // Call entries of the known list: their return entry.
    uint32_t op = 0;
    bool is_call = true;
  };

  struct Frame {
    Candidate candidate;
    uint32_t index;  // Of the candidate in its node's list, to resume after it.
    int32_t prev_state;
    uint32_t prev_m;
    uint64_t prev_hash;
    uint32_t retired_mark;  // retired_.size() before this step's retirements.
  };

  struct Ranked {
    int tier;
    uint64_t time;
    Candidate candidate;
  };

  void BuildLists();
  // Dancing links: Lift and Unlift must nest like a stack.
  void Lift(const Candidate& c);
  void Unlift(const Candidate& c);
  void ListCandidates(int32_t state);
  void MakeKey(int32_t state, uint32_t m, bool restricted);
  // Whether the last op linearized is unknown. Then the next one must observe the register (a
  // read or a compare): had an unconditional write followed, the unknown op could as well have
  // been left out (taken effect last, or never), which another branch tries. The restriction
  // is part of the memo key: a restricted node has fewer options than an unrestricted one.
  bool AfterUnknown() const {
    return !stack_.empty() && (stack_.back().candidate.kind == Kind::kUnknown ||
                               stack_.back().candidate.kind == Kind::kPool);
  }
  void RecordLongest();

  const std::vector<SearchOp>& ops_;
  std::vector<Pool> pools_;
  std::vector<uint32_t> pool_used_;  // Per pool: its first pool_used_[p] ops are linearized.
  const absl::Time deadline_;
  const uint64_t max_memory_bytes_;

  // Per value: producers (ops that may lead to it) not linearized yet. An unknown cas whose
  // expected value has none left and is not the state can never apply: it is as good as
  // linearized last, so MakeKey leaves it out (else such ops would bloat every key).
  std::vector<uint32_t> pending_producers_;
  // Per value: observers (reads of it, cas comparing against it) not linearized yet. Once a
  // value has none, no remaining op can tell it from the junk state, so the search records it
  // as junk (Canonical): states that differ only there merge in the memo.
  std::vector<uint32_t> pending_observers_;
  // Unknown cas that can never apply any more on the current path (nothing left produces their
  // expected value, and the register does not hold it) are unlinked from unknown_, so that the
  // walks skip them; retired_ is the undo log, unwound on backtracking (before the step's own
  // Unlift: stack order).
  std::vector<std::vector<int32_t>> unknown_cas_by_expect_;  // value -> unknown_ entries.
  std::vector<bool> unknown_linked_;                         // Per unknown_ entry.
  std::vector<int32_t> retired_;
  void RetireDeadCas(int32_t value, int32_t state);
  int32_t Canonical(int32_t state) const {
    const int32_t junk = pools_[0].state;
    return state >= 0 && state != junk && pending_observers_[state] == 0 ? junk : state;
  }
  std::vector<Entry> known_;       // [0] is the head.
  std::vector<Entry> unknown_;     // [0] is the head.
  std::vector<int32_t> entry_of_;  // op -> its call entry in known_ or unknown_.

  std::vector<Candidate> candidates_;  // Of the current node, in the order to try them.
  // Scratch: (value, return time) of the node's candidates that need the register to hold value.
  std::vector<std::pair<int32_t, uint64_t>> wanted_;
  std::vector<Ranked> ranked_;  // Scratch for ListCandidates.
  std::vector<Frame> stack_;
  Memo memo_;
  std::vector<uint32_t> key_;  // Scratch for MakeKey.
  std::vector<uint32_t> longest_;
  size_t longest_known_ = 0;  // Known ops in longest_.
  size_t longest_agree_ = 0;  // stack_[0, longest_agree_) equals longest_[0, longest_agree_).
  size_t known_depth_ = 0;    // Known ops on stack_.
};

}  // namespace keel::lincheck::internal
