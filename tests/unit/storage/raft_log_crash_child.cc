// The crash-test child: opens the Raft log in argv[1], then forever writes to it the way
// a Raft node does (synced appends with hard states, conflicting suffixes replaced, snapshots
// installed, snapshots recorded and the log compacted), reporting each write to the pipe
// fd argv[3] before (Intent) and after (Done) it -- see raft_log_crash_protocol.h. The
// parent SIGKILLs it at a random moment. Exits non-zero only if a write fails.
//
// Usage: raft_log_crash_child <dir> <seed> <fd>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "storage/raft_log_store.h"
#include "tests/unit/storage/raft_log_crash_protocol.h"
#include "tests/unit/storage/raft_log_test_util.h"

namespace keel::storage::crash {
namespace {

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "raft_log_crash_child: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(3);
}

void Send(int fd, const Record& r) {
  if (write(fd, &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r))) {
    std::perror("raft_log_crash_child: write to pipe");
    std::exit(4);
  }
}

// Chooses the next write from the current state, like a Raft node would see them.
Record Next(std::mt19937_64& rng, const RaftLogStore& store, uint64_t* term) {
  const uint64_t first = store.FirstIndex();
  const uint64_t last = store.LastIndex();
  const raftpb::HardState hs = store.GetInitialState()->hard_state;
  const uint64_t commit = hs.commit();
  const uint64_t snap_index = store.GetSnapshot()->metadata().index();
  Record r;
  const uint64_t p = rng() % 100;
  if (p < 6 && commit > snap_index && commit >= first - 1) {
    r.op = Op::kCreateSnapshot;
    r.snap_index = std::max(snap_index + 1, first - 1) +
                   rng() % (commit - std::max(snap_index + 1, first - 1) + 1);
    return r;
  }
  if (snap_index >= first && (p < 12 || last - first > 400)) {
    r.op = Op::kCompact;
    r.snap_index = snap_index;
    return r;
  }
  r.has_hs = rng() % 5 != 0;
  if (p < 16) {
    // A snapshot from the leader, beyond our commit index: the log is replaced.
    r.op = Op::kInstallSnapshot;
    r.has_hs = 1;
    r.snap_index = commit + 1 + rng() % 30;
    r.snap_term = ++*term;
    r.lo = r.snap_index + 1;
    r.hi = r.snap_index + rng() % 6;  // Possibly no entries (hi < lo).
    r.hs_commit = r.snap_index;
  } else if (p < 30 && last > commit) {
    // A new leader overwrites our uncommitted suffix, maybe with fewer entries.
    r.op = Op::kAppend;
    r.lo = commit + 1 + rng() % (last - commit);
    r.hi = r.lo + rng() % 8;
    r.term = ++*term;
    r.hs_commit = commit;
  } else {
    r.op = Op::kAppend;
    if (rng() % 20 == 0) ++*term;
    r.lo = last + 1;
    r.hi = last + 1 + rng() % 32;
    r.hs_commit = commit + rng() % (r.hi - commit + 1);
  }
  r.term = *term;
  r.hs_term = *term;
  r.hs_vote = 1 + *term % 3;
  if (!r.has_hs) r.hs_commit = 0;
  return r;
}

absl::Status Perform(RaftLogStore& store, const Record& r) {
  std::vector<raftpb::Entry> entries;
  if (r.lo <= r.hi) entries = testing::MakeEntries(r.lo, r.hi, r.term);
  raftpb::HardState hs;
  hs.set_term(r.hs_term);
  hs.set_vote(r.hs_vote);
  hs.set_commit(r.hs_commit);
  const raftpb::HardState* hs_or_null = r.has_hs ? &hs : nullptr;
  switch (r.op) {
    case Op::kAppend:
      return store.Save(hs_or_null, entries, nullptr, /*sync=*/true);
    case Op::kInstallSnapshot: {
      raftpb::SnapshotMetadata meta;
      meta.set_index(r.snap_index);
      meta.set_term(r.snap_term);
      meta.mutable_conf_state()->add_voters(1);
      return store.Save(hs_or_null, entries, &meta, /*sync=*/true, "installed");
    }
    case Op::kCreateSnapshot:
      return store.CreateSnapshot(r.snap_index, {}, "taken").status();
    case Op::kCompact:
      return store.Compact(r.snap_index);
  }
  return absl::InternalError("unknown op");
}

int Main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <dir> <seed> <fd>\n", argv[0]);
    return 1;
  }
  const std::string dir = argv[1];
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  const int fd = std::atoi(argv[3]);
  RaftLogStoreOptions options;
  options.tail_cache_bytes_max = 64 << 10;
  auto store = RaftLogStore::Open(dir, options);
  if (!store.ok()) Die("open", store.status());
  uint64_t term = (*store)->GetInitialState()->hard_state.term();
  term = std::max(term, (*store)->Term((*store)->LastIndex()).value());
  for (uint64_t seq = 1;; ++seq) {
    Record r = Next(rng, **store, &term);
    r.seq = seq;
    Send(fd, r);
    absl::Status s = Perform(**store, r);
    if (!s.ok()) Die("write " + std::to_string(seq), s);
    r.done = 1;
    Send(fd, r);
  }
}

}  // namespace
}  // namespace keel::storage::crash

int main(int argc, char** argv) { return keel::storage::crash::Main(argc, argv); }
