// Log replication (Raft paper §5.3, Figure 2 AppendEntries) and the commitment rule of
// §5.4.2 (Figure 8).
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using ReplicationTest = RaftTest;

NodeOptions PlainOptions() {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  return o;
}

// Thesis §6.4 / paper §8: a new leader appends a no-op entry of its term, so that it
// can commit (and so learn the commit index) without waiting for a client.
TEST_F(ReplicationTest, LeaderAppendsNoOpEntryOnElection) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  std::vector<raftpb::Entry> log = net.StoredLog(1);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].term(), term);
  EXPECT_EQ(log[0].type(), raftpb::ENTRY_NORMAL);
  EXPECT_TRUE(log[0].data().empty());
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(net.commit(id), 1u) << "node " << id;
    EXPECT_EQ(net.applied_index(id), 1u) << "node " << id;
  }
}

// Replicated entries are committed and applied in the same order on every node.
TEST_F(ReplicationTest, ProposalsAreCommittedAndAppliedInOrderEverywhere) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  net.Stabilize();
  std::vector<std::string> want;
  for (int i = 0; i < 10; ++i) want.push_back("v" + std::to_string(i));
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(net.AppliedData(id), want) << "node " << id;
}

// Figure 2, AppendEntries receiver 2: "Reply false if log doesn't contain an entry at
// prevLogIndex whose term matches prevLogTerm."
TEST_F(ReplicationTest, ConsistencyCheckRejectsMismatchingPrevIndexOrTerm) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 1, 1}, 2, 0, 0);
  struct Case {
    uint64_t prev_index, prev_term;
    bool reject;
  };
  for (Case c : {Case{3, 2, true}, Case{5, 1, true}, Case{2, 1, false}}) {
    raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 2);
    app.set_index(c.prev_index);
    app.set_log_term(c.prev_term);
    *app.add_entries() = MakeEntries(c.prev_index + 1, {2})[0];
    ASSERT_TRUE(net.node(2).Step(app).ok());
    ASSERT_TRUE(net.node(2).HasReady());
    Ready rd = net.node(2).GetReady();
    auto resp = OfType(AllMessages(rd), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resp.size(), 1u);
    EXPECT_EQ(resp[0].reject(), c.reject) << "prev (" << c.prev_index << ", " << c.prev_term << ")";
    if (c.reject) {
      EXPECT_TRUE(rd.entries.empty()) << "a rejected append must not change the log";
      EXPECT_LE(resp[0].reject_hint(), 3u) << "the hint points into the follower's log";
    } else {
      EXPECT_EQ(resp[0].index(), 3u);
    }
    net.Persist(2, rd);
    net.node(2).Advance();
  }
}

// Figure 2, AppendEntries receiver 3: "If an existing entry conflicts with a new one
// (same index but different terms), delete the existing entry and all that follow it."
TEST_F(ReplicationTest, FollowerTruncatesConflictingSuffix) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 1, 1, 1}, 1, 0, 1);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 2);
  app.set_index(1);
  app.set_log_term(1);
  *app.add_entries() = MakeEntries(2, {2})[0];
  ASSERT_TRUE(net.node(2).Step(app).ok());
  net.HandleReady(2);
  std::vector<raftpb::Entry> log = net.StoredLog(2);
  ASSERT_EQ(log.size(), 2u) << "entries 3 and 4 follow the conflict and must go";
  EXPECT_EQ(log[1].term(), 2u);
  EXPECT_EQ(net.status(2).last_index, 2u);
}

// An append that only repeats entries the follower already has must not truncate
// entries that come after them (a delayed, duplicated MsgApp).
TEST_F(ReplicationTest, DuplicateAppendDoesNotTruncateMatchingSuffix) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 2, 2, 2}, 2, 0, 1);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 2);
  app.set_index(1);
  app.set_log_term(1);
  *app.add_entries() = MakeEntries(2, {2})[0];
  ASSERT_TRUE(net.node(2).Step(app).ok());
  net.HandleReady(2);
  EXPECT_EQ(net.StoredLog(2).size(), 4u);
  EXPECT_EQ(net.status(2).last_index, 4u);
}

// The log is repaired end to end: a follower with a long divergent suffix from an old
// term ends up with exactly the leader's log.
TEST_F(ReplicationTest, LeaderOverwritesDivergentFollowerLog) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  std::vector<uint64_t> leader_log(5, 1), stale_log(5, 1);
  for (int i = 0; i < 5; ++i) leader_log.push_back(3);
  for (int i = 0; i < 100; ++i) stale_log.push_back(2);
  net.ResetNode(1, leader_log, 3, 0, 5);
  net.ResetNode(2, leader_log, 3, 0, 5);
  net.ResetNode(3, stale_log, 2, 0, 5);
  net.ClearSent();
  net.ElectLeader(1);
  std::vector<raftpb::Entry> l1 = net.StoredLog(1), l3 = net.StoredLog(3);
  ASSERT_EQ(l1.size(), l3.size());
  for (size_t i = 0; i < l1.size(); ++i) {
    EXPECT_EQ(l1[i].ShortDebugString(), l3[i].ShortDebugString()) << "index " << i + 1;
  }
  // Fast backtracking (§5.3, "the follower can include the term of the conflicting
  // entry..."): the 100-entry divergence costs a few round trips, not one per entry.
  size_t rejects = 0;
  for (const auto& m : net.sent()) {
    if (m.type() == raftpb::MSG_APP_RESP && m.from() == 3 && m.reject()) ++rejects;
  }
  EXPECT_LE(rejects, 3u);
}

// The other direction of fast backtracking: the follower's log is far behind the
// leader's (it missed many entries); the reject hint points at its last index.
TEST_F(ReplicationTest, FastBacktrackingForShortFollowerLog) {
  NodeOptions o = PlainOptions();
  Network& net = MakeNetwork({1, 2, 3}, o);
  std::vector<uint64_t> long_log(200, 2);
  long_log[0] = 1;
  net.ResetNode(1, long_log, 2, 0, 150);
  net.ResetNode(2, long_log, 2, 0, 150);
  net.ResetNode(3, {1, 2, 2}, 2, 0, 3);
  net.ClearSent();
  net.ElectLeader(1);
  size_t rejects = 0;
  for (const auto& m : net.sent()) {
    if (m.type() == raftpb::MSG_APP_RESP && m.from() == 3 && m.reject()) ++rejects;
  }
  EXPECT_LE(rejects, 2u);
  EXPECT_EQ(net.storage(3).LastIndex(), net.storage(1).LastIndex());
}

// Figure 2, AppendEntries receiver 5: "If leaderCommit > commitIndex, set commitIndex =
// min(leaderCommit, index of last new entry)." The follower's stale suffix beyond the
// new entries is not committed by the leader's larger commit index.
TEST_F(ReplicationTest, FollowerCommitIsMinOfLeaderCommitAndLastNewEntry) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 1, 1, 1, 1}, 1, 0, 1);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 2);
  app.set_index(1);
  app.set_log_term(1);
  *app.add_entries() = MakeEntries(2, {1})[0];
  app.set_commit(5);
  ASSERT_TRUE(net.node(2).Step(app).ok());
  EXPECT_EQ(net.commit(2), 2u);
  net.HandleReady(2);
  EXPECT_EQ(net.commit(2), 2u);
}

// The commit index reaches followers (piggybacked on appends and heartbeats) and
// they apply what the leader committed.
TEST_F(ReplicationTest, CommitIndexPropagatesToFollowers) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  const uint64_t index = net.ProposeAndCommit(1, "x");
  for (uint64_t id : {2, 3}) {
    EXPECT_EQ(net.commit(id), index) << "node " << id;
    EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"x"}) << "node " << id;
  }
}

// A follower that missed the commit index learns it from the next heartbeat.
TEST_F(ReplicationTest, HeartbeatCarriesCommitIndexToFollower) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  // Node 3 gets the entry, but nothing that tells it the new commit index.
  net.DropIf([](const raftpb::Message& m) {
    return m.to() == 3 && m.type() == raftpb::MSG_APP && m.entries_size() == 0;
  });
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  const uint64_t index = net.commit(1);
  ASSERT_EQ(net.storage(3).LastIndex(), index);
  ASSERT_LT(net.commit(3), index);
  net.Heal();
  net.Tick(1);  // heartbeat_tick = 1.
  net.Stabilize();
  EXPECT_EQ(net.commit(3), index);
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"x"});
}

// §5.4.2 (Figure 8): a leader never commits an entry of an earlier term by counting
// replicas; it is committed only indirectly, once an entry of the current term is.
//   node 1: [1:t1 2:t2]  (entry 2 from its earlier leadership, on no other node)
//   node 2: [1:t1]       node 3: [1:t1] (isolated)
// Node 1 wins term 4 with node 2's vote and sends entries one per message, so entry 2
// reaches a majority (1, 2) before the term-4 no-op does.
void RunFigure8(Network& net, int* checked, uint64_t* commit_when_old_entry_replicated) {
  net.ResetNode(1, {1, 2}, 3, 0, 1);
  net.ResetNode(2, {1}, 3, 0, 1);
  net.ResetNode(3, {1}, 3, 0, 1);
  net.Isolate(3);
  net.set_after_step([&](const raftpb::Message& m) {
    if (m.to() != 1 || m.type() != raftpb::MSG_APP_RESP) return;
    Status st = net.status(1);
    auto it = st.progress.find(2);
    if (it == st.progress.end() || it->second.match != 2) return;
    ++*checked;
    *commit_when_old_entry_replicated = st.hard_state.commit();
  });
  net.ElectLeader(1);
  net.set_after_step(nullptr);
}

TEST_F(ReplicationTest, OldTermEntryNotCommittedByCountingReplicas) {
  NodeOptions o = PlainOptions();
  o.max_size_per_msg_bytes = 1;  // One entry per MsgApp.
  Network& net = MakeNetwork({1, 2, 3}, o);
  int checked = 0;
  uint64_t commit_then = 0;
  RunFigure8(net, &checked, &commit_then);
  ASSERT_GE(checked, 1) << "scenario did not reach: entry 2 on a majority, no-op not yet";
  EXPECT_EQ(commit_then, 1u) << "entry 2 (term 2) committed by counting in term 4";
  // Once the no-op of term 4 is on a majority, both are committed.
  EXPECT_EQ(net.commit(1), 3u);
  EXPECT_EQ(net.commit(2), 3u);
  EXPECT_EQ(net.applied_index(1), 3u);
}

// The same scenario with the test-only bug switch shows this test can fail.
TEST_F(ReplicationTest, InjectedCommitByCountingBugIsDetectedByFigure8Scenario) {
  NodeOptions o = PlainOptions();
  o.max_size_per_msg_bytes = 1;
  o.unsafe_injected_bugs.commit_previous_term_by_counting = true;
  Network& net = MakeNetwork({1, 2, 3}, o);
  int checked = 0;
  uint64_t commit_then = 0;
  RunFigure8(net, &checked, &commit_then);
  ASSERT_GE(checked, 1);
  EXPECT_EQ(commit_then, 2u) << "the bug switch should commit entry 2 by counting";
}

// A leader commits once a majority has an entry of its term, not waiting for the rest.
TEST_F(ReplicationTest, LeaderCommitsWithMajorityWhileMinorityIsDown) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, PlainOptions());
  net.ElectLeader(1);
  net.Isolate(4);
  net.Isolate(5);
  net.ProposeAndCommit(1, "x");
  net.Heal();
  net.Isolate(3);
  net.Isolate(4);
  net.Isolate(5);
  ASSERT_TRUE(net.node(1).Propose("y").ok());
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"x"}) << "2 of 5 is not a majority";
}

// A heartbeat must not make a follower commit entries the leader has not matched: the
// follower's divergent tail from an old term would otherwise be applied (the leader
// sends min(match, commit), never its bare commit index).
TEST_F(ReplicationTest, HeartbeatDoesNotCommitUnmatchedFollowerEntries) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(1, {1, 3, 3, 3, 3}, 3, 0, 1);
  net.ResetNode(2, {1, 3, 3, 3, 3}, 3, 0, 1);
  net.ResetNode(3, {1, 2, 2, 2, 2}, 3, 0, 1);
  // Node 3 never gets an append, only heartbeats.
  net.DropIf([](const raftpb::Message& m) { return m.type() == raftpb::MSG_APP && m.to() == 3; });
  net.ElectLeader(1);
  ASSERT_EQ(net.commit(1), 6u);
  for (int i = 0; i < 3; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.commit(3), 1u) << "node 3 committed entries of its divergent tail";
  EXPECT_EQ(net.applied_index(3), 1u);
  net.Heal();
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.commit(3), 6u);
}

// §5.3 / Figure 7: a deposed leader's uncommitted entries are overwritten by the new
// leader's log once the partition heals; nothing they held is ever applied.
TEST_F(ReplicationTest, DeposedLeaderUncommittedEntriesAreOverwritten) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, PlainOptions());
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.Isolate(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("lost" + std::to_string(i)).ok());
  net.Stabilize();
  net.ElectLeader(2);
  net.ProposeAndCommit(2, "won");
  net.Heal();
  net.Tick(2);
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kFollower);
  for (uint64_t id : {1, 2, 3, 4, 5}) {
    EXPECT_EQ(net.AppliedData(id), (std::vector<std::string>{"a", "won"})) << "node " << id;
    EXPECT_EQ(net.storage(id).LastIndex(), net.storage(2).LastIndex()) << "node " << id;
  }
}

// An append rejection that arrives late (the follower has since matched more) must not
// move the leader's view of the follower backwards.
TEST_F(ReplicationTest, StaleAppendRejectionIsIgnored) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  for (int i = 0; i < 5; ++i) net.ProposeAndCommit(1, "p" + std::to_string(i));
  Status before = net.status(1);
  const uint64_t match = before.progress[2].match;
  raftpb::Message rej = MakeMessage(raftpb::MSG_APP_RESP, 2, 1, net.term(1));
  rej.set_reject(true);
  rej.set_index(2);
  rej.set_reject_hint(1);
  ASSERT_TRUE(net.node(1).Step(rej).ok());
  Status after = net.status(1);
  EXPECT_EQ(after.progress[2].match, match);
  EXPECT_EQ(std::string(after.progress[2].state), "replicate");
  EXPECT_GE(after.progress[2].next, match + 1);
  net.Stabilize();
  net.ProposeAndCommit(1, "q");
}

}  // namespace
}  // namespace keel::raft::testing
