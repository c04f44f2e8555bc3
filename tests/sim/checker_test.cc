// Tests of the simulator's checkers: each is fed a hand-made history that breaks one
// property and must report it (and must accept the matching correct history).
#include "tests/sim/checker.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace keel::sim {
namespace {

raftpb::Entry MakeEntry(uint64_t index, uint64_t term, const std::string& data) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

// Applies `entries` in order on `node`, starting from `state`.
absl::Status ApplyAll(Checker& checker, uint64_t node, const std::vector<raftpb::Entry>& entries,
                      StateMachine* state) {
  for (const raftpb::Entry& e : entries) {
    state->Apply(e);
    absl::Status s = checker.OnApply(node, e, *state, nullptr);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

bool IsViolationOf(const absl::Status& s, const std::string& property) {
  return !s.ok() && std::string(s.message()).find("VIOLATION of " + property) != std::string::npos;
}

TEST(CheckerTest, ElectionSafetyRejectsTwoLeadersInOneTerm) {
  Checker checker({1, 2, 3});
  raft::MemoryStorage storage;
  EXPECT_TRUE(checker.OnLeader(1, 5, LogView{&storage}).ok());
  EXPECT_TRUE(checker.OnLeader(1, 5, LogView{&storage}).ok());  // Same leader again: fine.
  EXPECT_TRUE(checker.OnLeader(2, 6, LogView{&storage}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(3, 5, LogView{&storage}), "election safety"));
}

TEST(CheckerTest, ElectionSafetyForgetsALeadershipThatCrashedBeforeActing) {
  Checker checker({1});
  raft::MemoryStorage storage;
  // A lone voter wins term 8 and crashes before its new term reaches its disk: it
  // restarts in term 7 and may vote another node in as leader of term 8.
  ASSERT_TRUE(checker.OnLeader(1, 8, LogView{&storage}).ok());
  checker.OnCrash(1);
  EXPECT_TRUE(checker.OnLeader(2, 8, LogView{&storage}).ok());
  // Once a leadership acted (term durable or a message sent), a crash does not undo it.
  checker.OnLeaderActs(2, 8);
  checker.OnCrash(2);
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(1, 8, LogView{&storage}), "election safety"));
  // Two leaders of one term alive at once, neither having acted yet: still a violation.
  ASSERT_TRUE(checker.OnLeader(1, 9, LogView{&storage}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(2, 9, LogView{&storage}), "election safety"));
  // A crash forgets only that node's leaderships.
  checker.OnCrash(2);
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(3, 9, LogView{&storage}), "election safety"));
}

TEST(CheckerTest, LeaderCompletenessRejectsLeaderMissingCommittedEntry) {
  Checker checker({1, 2, 3});
  const std::vector<raftpb::Entry> log = {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b"),
                                          MakeEntry(3, 2, "c")};
  StateMachine state;
  ASSERT_TRUE(ApplyAll(checker, 1, log, &state).ok());

  raft::MemoryStorage short_log;
  ASSERT_TRUE(short_log.Append({log[0], log[1]}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(2, 3, LogView{&short_log}), "leader completeness"));

  // Same length, but entry 3 from another term: also incomplete.
  raft::MemoryStorage diverged;
  ASSERT_TRUE(diverged.Append({log[0], log[1], MakeEntry(3, 1, "x")}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnLeader(3, 4, LogView{&diverged}), "leader completeness"));

  raft::MemoryStorage full;
  ASSERT_TRUE(full.Append(log).ok());
  EXPECT_TRUE(checker.OnLeader(1, 5, LogView{&full}).ok());

  // A pending (not yet persisted) Ready counts as part of the leader's log.
  std::vector<raftpb::Entry> pending = {log[2]};
  EXPECT_TRUE(checker.OnLeader(2, 6, LogView{&short_log, nullptr, &pending}).ok());
}

TEST(CheckerTest, LogMatchingRejectsDifferentEntriesWithSameIndexAndTerm) {
  Checker checker({1, 2});
  ASSERT_TRUE(checker.OnPersist(1, 0, {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")}).ok());
  EXPECT_TRUE(checker.OnPersist(2, 0, {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnPersist(3, 1, {MakeEntry(2, 1, "other")}), "log matching"));
}

TEST(CheckerTest, LogMatchingRejectsSameEntryAfterDifferentPrefix) {
  Checker checker({1, 2});
  ASSERT_TRUE(checker.OnPersist(1, 0, {MakeEntry(1, 1, "a"), MakeEntry(2, 2, "b")}).ok());
  // Node 2 claims (2, term 2) follows an entry of term 3 at index 1... impossible, and
  // the checker also sees a term going down.
  EXPECT_TRUE(IsViolationOf(checker.OnPersist(2, 3, {MakeEntry(2, 2, "b")}), "log matching"));
  // Same index/term/data as node 1's entry but a different previous term.
  ASSERT_TRUE(checker.OnPersist(1, 2, {MakeEntry(3, 4, "c")}).ok());
  EXPECT_TRUE(IsViolationOf(checker.OnPersist(3, 3, {MakeEntry(3, 4, "c")}), "log matching"));
}

TEST(CheckerTest, StateMachineSafetyRejectsDivergentApply) {
  Checker checker({1, 2});
  StateMachine a;
  ASSERT_TRUE(ApplyAll(checker, 1, {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")}, &a).ok());
  StateMachine b;
  ASSERT_TRUE(ApplyAll(checker, 2, {MakeEntry(1, 1, "a")}, &b).ok());
  EXPECT_TRUE(
      IsViolationOf(ApplyAll(checker, 2, {MakeEntry(2, 2, "evil")}, &b), "state machine safety"));
}

TEST(CheckerTest, StateMachineSafetyRejectsApplyPastTheHistoryFromAnotherState) {
  Checker checker({1, 2});
  StateMachine a;
  ASSERT_TRUE(ApplyAll(checker, 1, {MakeEntry(1, 1, "a")}, &a).ok());
  StateMachine b;  // Node 2 applied a different entry 1, then extends the history.
  b.Apply(MakeEntry(1, 1, "not-a"));
  EXPECT_TRUE(
      IsViolationOf(ApplyAll(checker, 2, {MakeEntry(2, 1, "b")}, &b), "state machine safety"));
}

TEST(CheckerTest, RestoreRejectsSnapshotOfAnotherHistory) {
  Checker checker({1, 2});
  StateMachine a;
  ASSERT_TRUE(ApplyAll(checker, 1, {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")}, &a).ok());
  raftpb::ConfState conf;  // No conf change was applied: the initial membership holds.
  conf.add_voters(1);
  conf.add_voters(2);
  EXPECT_TRUE(checker.OnRestore(2, a, conf).ok());
  StateMachine forged = a;
  forged.hash ^= 1;
  EXPECT_TRUE(IsViolationOf(checker.OnRestore(2, forged, conf), "state machine safety"));
}

TEST(CheckerTest, ReadMustSeeWritesCommittedBeforeItBegan) {
  Checker checker({1, 2, 3});
  StateMachine leader;
  ASSERT_TRUE(ApplyAll(checker, 1, {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")}, &leader).ok());
  checker.OnReadStart("r1");
  StateMachine stale;
  stale.Apply(MakeEntry(1, 1, "a"));
  EXPECT_TRUE(IsViolationOf(checker.OnRead(2, "r1", 1, stale), "linearizable read"));
  EXPECT_TRUE(checker.OnRead(1, "r1", 2, leader).ok());
}

TEST(CheckerTest, DurabilityRejectsCommittedPrefixOnTooFewVoters) {
  Checker checker({1, 2, 3});
  const std::vector<raftpb::Entry> log = {MakeEntry(1, 1, "a"), MakeEntry(2, 1, "b")};
  StateMachine state;
  ASSERT_TRUE(ApplyAll(checker, 1, log, &state).ok());
  raft::MemoryStorage s1, s2, s3;
  ASSERT_TRUE(s1.Append(log).ok());
  ASSERT_TRUE(s2.Append({log[0]}).ok());
  std::map<uint64_t, LogView> durable = {{1, LogView{&s1}}, {2, LogView{&s2}}, {3, LogView{&s3}}};
  EXPECT_TRUE(IsViolationOf(checker.CheckDurability(durable), "durability"));
  ASSERT_TRUE(s2.Append({log[1]}).ok());
  EXPECT_TRUE(checker.CheckDurability(durable).ok());
  // A snapshot covering the prefix counts as holding it.
  raft::MemoryStorage s4;
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(2);
  snap.mutable_metadata()->set_term(1);
  ASSERT_TRUE(s4.ApplySnapshot(snap).ok());
  durable = {{1, LogView{&s1}}, {2, LogView{&s3}}, {3, LogView{&s4}}};
  EXPECT_TRUE(checker.CheckDurability(durable).ok());
}

}  // namespace
}  // namespace keel::sim
