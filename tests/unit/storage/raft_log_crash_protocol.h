// What the crash-test child (raft_log_crash_child.cc) tells its parent
// (raft_log_crash_test.cc) through a pipe, and the model both sides agree on.
//
// Before each write the child sends an Intent describing it completely; after the write
// returned OK it sends a Done with the same sequence number. Each record is one write() of
// fewer than PIPE_BUF bytes, so it arrives whole or not at all. After a SIGKILL, the log on
// disk must be exactly the model with every Done applied, or that plus the one Intent that
// has no Done yet (its write may or may not have reached the disk) -- never anything else.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/raft.pb.h"

namespace keel::storage::crash {

enum class Op : uint64_t {
  kAppend = 1,           // Save(hs?, entries [lo, hi] of `term`) -- may truncate a suffix.
  kInstallSnapshot = 2,  // Save(hs?, entries [lo, hi] of `term`, snapshot (snap_index, snap_term)).
  kCreateSnapshot = 3,   // CreateSnapshot(snap_index).
  kCompact = 4,          // Compact(snap_index).
};

struct Record {
  uint64_t done = 0;  // 0: intent, 1: done.
  uint64_t seq = 0;
  Op op = Op::kAppend;
  uint64_t lo = 0, hi = 0, term = 0;  // Entries [lo, hi] (none if lo > hi).
  uint64_t snap_index = 0, snap_term = 0;
  uint64_t has_hs = 0, hs_term = 0, hs_vote = 0, hs_commit = 0;
};
static_assert(sizeof(Record) < 512, "one atomic pipe write");

// The log as the tests model it: entries are MakeEntry(index, terms[index - first]).
struct Model {
  uint64_t truncated_index = 0, truncated_term = 0;
  std::deque<uint64_t> terms;  // Terms of entries truncated_index + 1 .. last.
  uint64_t snap_index = 0, snap_term = 0;
  raftpb::HardState hs;

  uint64_t first() const { return truncated_index + 1; }
  uint64_t last() const { return truncated_index + terms.size(); }
  uint64_t TermAt(uint64_t i) const {
    return i == truncated_index ? truncated_term : terms[i - truncated_index - 1];
  }

  void Apply(const Record& r) {
    if (r.op == Op::kInstallSnapshot) {
      truncated_index = snap_index = r.snap_index;
      truncated_term = snap_term = r.snap_term;
      terms.clear();
    }
    if (r.op == Op::kAppend || r.op == Op::kInstallSnapshot) {
      if (r.lo <= r.hi) {
        terms.resize(r.lo - first());  // The child never appends below first().
        for (uint64_t i = r.lo; i <= r.hi; ++i) terms.push_back(r.term);
      }
      if (r.has_hs) {
        hs.set_term(r.hs_term);
        hs.set_vote(r.hs_vote);
        hs.set_commit(r.hs_commit);
      }
    } else if (r.op == Op::kCreateSnapshot) {
      snap_term = TermAt(r.snap_index);
      snap_index = r.snap_index;
    } else if (r.op == Op::kCompact) {
      const uint64_t term = TermAt(r.snap_index);
      terms.erase(terms.begin(), terms.begin() + (r.snap_index - truncated_index));
      truncated_index = r.snap_index;
      truncated_term = term;
    }
  }

  std::string DebugString() const {
    return absl::StrCat("first ", first(), " last ", last(), " last term ",
                        terms.empty() ? truncated_term : terms.back(), " snap ", snap_index, "/",
                        snap_term, " hs ", hs.term(), "/", hs.vote(), "/", hs.commit());
  }
};

}  // namespace keel::storage::crash
