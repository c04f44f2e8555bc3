// The persistence contract of Ready (raw_node.h; Raft thesis §10.2.1) and replication
// flow control (probe / replicate states, the in-flight window, the per-message size).
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using PersistenceTest = RaftTest;
using FlowControlTest = RaftTest;

NodeOptions PlainOptions() {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  return o;
}

// A follower's append ack promises the entries are durable: it comes in the same Ready
// as the entries, and only in messages_after_persist.
TEST_F(PersistenceTest, AppendAckIsSentOnlyAfterEntriesArePersisted) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 1);
  app.set_index(0);
  app.set_log_term(0);
  for (const auto& e : MakeEntries(1, {1, 1})) *app.add_entries() = e;
  ASSERT_TRUE(net.node(2).Step(app).ok());
  Ready rd = net.node(2).GetReady();
  ASSERT_EQ(rd.entries.size(), 2u);
  ASSERT_TRUE(rd.hard_state.has_value()) << "the term changed: it must be persisted";
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_TRUE(OfType(rd.messages, raftpb::MSG_APP_RESP).empty());
  auto acks = OfType(rd.messages_after_persist, raftpb::MSG_APP_RESP);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].index(), 2u);
  EXPECT_TRUE(rd.must_sync);
  net.Persist(2, rd);
  net.node(2).Advance();
}

// A vote grant promises the vote is durable (else a restart could vote twice in a term).
TEST_F(PersistenceTest, VoteIsSentOnlyAfterHardStateIsPersisted) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  ASSERT_TRUE(net.node(2).Step(MakeMessage(raftpb::MSG_VOTE, 1, 2, 1)).ok());
  Ready rd = net.node(2).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(OfType(rd.messages, raftpb::MSG_VOTE_RESP).empty());
  EXPECT_EQ(OfType(rd.messages_after_persist, raftpb::MSG_VOTE_RESP).size(), 1u);
  net.Persist(2, rd);
  net.node(2).Advance();
}

// Thesis §10.2.1: the leader sends its appends in parallel with its own disk write, so
// its MsgApps are in `messages`, in the same Ready as the entries.
TEST_F(PersistenceTest, LeaderAppendsAreSentBeforeItsOwnPersist) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready rd = net.node(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  const uint64_t index = rd.entries[0].index();
  auto apps = OfType(rd.messages, raftpb::MSG_APP);
  ASSERT_EQ(apps.size(), 2u);
  for (const auto& m : apps) {
    ASSERT_EQ(m.entries_size(), 1);
    EXPECT_EQ(m.entries(0).index(), index);
    EXPECT_EQ(m.entries(0).data(), "x");
  }
  EXPECT_TRUE(rd.committed_entries.empty());
  net.Send(1, rd.messages);
  net.Persist(1, rd);
  net.Send(1, rd.messages_after_persist);
  net.Apply(1, rd);
  net.node(1).Advance();
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"x"});
}

// A single-node cluster is its own majority, but only once its write is durable: the
// entry is committed after Advance, never in the Ready that carries it.
TEST_F(PersistenceTest, SingleNodeCommitsOnlyAfterAdvance) {
  Network& net = MakeNetwork({1}, PlainOptions());
  net.ElectLeader(1);
  const uint64_t commit_before = net.commit(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready rd = net.node(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  const uint64_t index = rd.entries[0].index();
  for (const auto& e : rd.committed_entries) EXPECT_LT(e.index(), index);
  if (rd.hard_state.has_value()) {
    EXPECT_LT(rd.hard_state->commit(), index);
  }
  EXPECT_EQ(net.commit(1), commit_before);
  net.Send(1, rd.messages);
  net.Persist(1, rd);
  net.Send(1, rd.messages_after_persist);
  net.Apply(1, rd);
  net.node(1).Advance();
  ASSERT_TRUE(net.node(1).HasReady()) << "the durable entry is now committed";
  Ready rd2 = net.node(1).GetReady();
  ASSERT_EQ(rd2.committed_entries.size(), 1u);
  EXPECT_EQ(rd2.committed_entries[0].index(), index);
  ASSERT_TRUE(rd2.hard_state.has_value());
  EXPECT_EQ(rd2.hard_state->commit(), index);
  net.Send(1, rd2.messages);
  net.Persist(1, rd2);
  net.Send(1, rd2.messages_after_persist);
  net.Apply(1, rd2);
  net.node(1).Advance();
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"x"});
}

// 3 nodes, node 3 down: the majority is {leader, node 2}. Node 2's ack alone is not
// enough while the leader's own write is not yet durable (not Advanced).
TEST_F(PersistenceTest, LeaderCountsItselfOnlyAfterAdvance) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  net.Isolate(3);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready rd = net.node(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  const uint64_t index = rd.entries[0].index();
  net.Send(1, rd.messages);
  // The leader's disk is slow: node 2 persists and acks first.
  net.DeliverPending();
  net.HandleReady(2);
  net.DeliverPending();
  Status st = net.status(1);
  ASSERT_EQ(st.progress[2].match, index) << "node 2's ack reached the leader";
  EXPECT_LT(st.hard_state.commit(), index) << "committed before the leader's write is durable";
  net.Persist(1, rd);
  net.Send(1, rd.messages_after_persist);
  net.Apply(1, rd);
  net.node(1).Advance();
  EXPECT_EQ(net.commit(1), index) << "durable on leader + node 2: committed";
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"x"});
}

// With both followers durable, the entry is committed even before the leader's write:
// a majority of durable copies is what commitment needs.
TEST_F(PersistenceTest, FollowerMajorityCommitsWithoutLeaderDurability) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready rd = net.node(1).GetReady();
  const uint64_t index = rd.entries[0].index();
  net.Send(1, rd.messages);
  net.DeliverPending();
  net.HandleReady(2);
  net.HandleReady(3);
  net.DeliverPending();
  EXPECT_EQ(net.commit(1), index);
  net.Persist(1, rd);
  net.Send(1, rd.messages_after_persist);
  net.Apply(1, rd);
  net.node(1).Advance();
  net.Stabilize();
  // The leader applies only after its own copy is durable (committed entries are durable).
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"x"});
}

// Entries handed out in a Ready are replaced (a new leader overwrites them) before the
// caller calls Advance: Advance acknowledges what the Ready carried, not what the log
// holds now, so the replacements come out in the next Ready and get persisted too.
TEST_F(PersistenceTest, EntriesReplacedWhileReadyInFlightArePersistedAgain) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  raftpb::Message a = MakeMessage(raftpb::MSG_APP, 1, 3, 2);
  *a.add_entries() = MakeEntries(1, {2})[0];
  ASSERT_TRUE(net.node(3).Step(a).ok());
  Ready rd1 = net.node(3).GetReady();
  ASSERT_EQ(rd1.entries.size(), 1u);
  ASSERT_EQ(rd1.entries[0].term(), 2u);
  // While rd1 is being written, the leader of term 3 overwrites index 1.
  raftpb::Message b = MakeMessage(raftpb::MSG_APP, 2, 3, 3);
  *b.add_entries() = MakeEntries(1, {3})[0];
  ASSERT_TRUE(net.node(3).Step(b).ok());
  net.Persist(3, rd1);
  net.node(3).Advance();
  ASSERT_TRUE(net.node(3).HasReady()) << "the term-3 entry was never handed out";
  Ready rd2 = net.node(3).GetReady();
  ASSERT_EQ(rd2.entries.size(), 1u);
  EXPECT_EQ(rd2.entries[0].term(), 3u);
  auto acks = OfType(rd2.messages_after_persist, raftpb::MSG_APP_RESP);
  ASSERT_EQ(acks.size(), 1u) << "the ack to the term-3 leader waits for this Ready";
  EXPECT_EQ(acks[0].to(), 2u);
  net.Persist(3, rd2);
  net.node(3).Advance();
  auto t = net.storage(3).Term(1);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, 3u);
}

// A leader that crashes before its write is durable loses only that write; its
// followers' durable copies keep the entry, and a new leader commits it.
TEST_F(PersistenceTest, LeaderCrashBeforePersistLosesOnlyItsOwnUnpersistedCopy) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready rd = net.node(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  const uint64_t index = rd.entries[0].index();
  net.Send(1, rd.messages);  // Appends go out in parallel with the (lost) write.
  net.Crash(1);
  net.Stabilize();
  EXPECT_LT(net.storage(1).LastIndex(), index);
  net.Restart(1);
  EXPECT_LT(net.status(1).last_index, index);
  net.ElectLeader(2);
  net.Stabilize();
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"x"}) << "node " << id;
  }
}

// The test-only bug switches break exactly the rules above; these show the checks
// above see the difference (a test that cannot fail proves nothing).
TEST_F(PersistenceTest, InjectedSendBeforePersistIsDetected) {
  NodeOptions o = PlainOptions();
  o.unsafe_injected_bugs.send_before_persist = true;
  Network& net = MakeNetwork({1, 2, 3}, o);
  ASSERT_TRUE(net.node(2).Step(MakeMessage(raftpb::MSG_VOTE, 1, 2, 1)).ok());
  Ready rd = net.node(2).GetReady();
  EXPECT_EQ(OfType(rd.messages, raftpb::MSG_VOTE_RESP).size(), 1u)
      << "with the bug, the vote goes out before the hard state is durable";
  net.Persist(2, rd);
  net.node(2).Advance();
}

TEST_F(PersistenceTest, InjectedLeaderCountsUnpersistedSelfIsDetected) {
  NodeOptions o = PlainOptions();
  o.unsafe_injected_bugs.leader_counts_unpersisted_self = true;
  Network& net = MakeNetwork({1}, o);
  net.ElectLeader(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  const uint64_t index = net.status(1).last_index;
  EXPECT_EQ(net.commit(1), index) << "with the bug, the leader commits before its write";
  net.Stabilize();
}

// A node restarted from storage keeps what it persisted: term, vote and log.
TEST_F(PersistenceTest, RestartRecoversHardStateAndLog) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.ProposeAndCommit(1, "b");
  Status before = net.status(2);
  net.Restart(2);
  Status after = net.status(2);
  EXPECT_EQ(after.hard_state.term(), before.hard_state.term());
  EXPECT_EQ(after.hard_state.vote(), before.hard_state.vote());
  EXPECT_EQ(after.hard_state.commit(), before.hard_state.commit());
  EXPECT_EQ(after.last_index, before.last_index);
  EXPECT_EQ(after.soft_state.role, Role::kFollower);
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(2), (std::vector<std::string>{"a", "b"})) << "replayed on restart";
  // The restarted node still refuses a second candidate in the term it voted in.
  const uint64_t term = after.hard_state.term();
  ASSERT_TRUE(net.node(2).Step(MakeMessage(raftpb::MSG_VOTE, 3, 2, term)).ok());
  EXPECT_EQ(net.status(2).hard_state.vote(), before.hard_state.vote());
  net.Stabilize();
}

// A restarted leader comes back as a follower of its old term and a new leader takes over.
TEST_F(PersistenceTest, RestartedLeaderKeepsTermAndRejoinsAsFollower) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  const uint64_t term = net.term(1);
  net.Restart(1);
  EXPECT_EQ(net.term(1), term);
  EXPECT_EQ(net.status(1).hard_state.vote(), 1u);
  EXPECT_EQ(net.role(1), Role::kFollower);
  net.ElectLeader(2);
  EXPECT_GT(net.term(2), term);
  net.ProposeAndCommit(2, "b");
  EXPECT_EQ(net.AppliedData(1), (std::vector<std::string>{"a", "b"}));
}

// --- Flow control --------------------------------------------------------------------

// In replicate state the leader pipelines: each proposal goes out at once, without
// waiting for the ack of the previous one...
TEST_F(FlowControlTest, ReplicateStateSendsWithoutWaitingForAcks) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  ASSERT_EQ(std::string(net.status(1).progress[2].state), "replicate");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(net.node(1).Propose("p" + std::to_string(i)).ok());
    net.HandleReady(1);
  }
  EXPECT_EQ(net.CountQueued(raftpb::MSG_APP, 1, 2), 5u);
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(2).size(), 5u);
}

// ...up to max_inflight_msgs unacknowledged messages.
TEST_F(FlowControlTest, InflightWindowBoundsUnackedAppends) {
  NodeOptions o = PlainOptions();
  o.max_inflight_msgs = 3;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(net.node(1).Propose("p" + std::to_string(i)).ok());
    net.HandleReady(1);
  }
  EXPECT_EQ(net.CountQueued(raftpb::MSG_APP, 1, 2), 3u);
  EXPECT_EQ(net.CountQueued(raftpb::MSG_APP, 1, 3), 3u);
  net.Stabilize();  // Acks open the window again; everything gets through.
  EXPECT_EQ(net.AppliedData(2).size(), 8u);
  EXPECT_EQ(net.AppliedData(3).size(), 8u);
}

// The window is also bounded in bytes when max_inflight_bytes is set.
TEST_F(FlowControlTest, InflightBytesBoundUnackedAppends) {
  NodeOptions o = PlainOptions();
  o.max_inflight_bytes = 1000;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(net.node(1).Propose(std::string(300, 'a' + i)).ok());
    net.HandleReady(1);
  }
  const size_t queued = net.CountQueued(raftpb::MSG_APP, 1, 2);
  EXPECT_GE(queued, 1u);
  EXPECT_LE(queued, 4u) << "about 1000 bytes of 300-byte entries may be in flight";
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(2).size(), 10u);
}

// The transport reporting a peer unreachable moves it from replicate to probe.
TEST_F(FlowControlTest, UnreachableMovesReplicateToProbe) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  ASSERT_EQ(std::string(net.status(1).progress[2].state), "replicate");
  net.node(1).ReportUnreachable(2);
  EXPECT_EQ(std::string(net.status(1).progress[2].state), "probe");
  EXPECT_EQ(std::string(net.status(1).progress[3].state), "replicate");
}

// In probe state the leader sends one append and waits for its answer.
TEST_F(FlowControlTest, ProbeStateSendsOneAppendAtATime) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  net.node(1).ReportUnreachable(2);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(net.node(1).Propose("p" + std::to_string(i)).ok());
    net.HandleReady(1);
  }
  EXPECT_EQ(net.CountQueued(raftpb::MSG_APP, 1, 2), 1u);
  EXPECT_EQ(net.CountQueued(raftpb::MSG_APP, 1, 3), 4u);
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(2).size(), 4u) << "the probe's ack resumes replication";
  EXPECT_EQ(std::string(net.status(1).progress[2].state), "replicate");
}

// Entries are batched per MsgApp up to max_size_per_msg_bytes (at least one entry).
TEST_F(FlowControlTest, EntriesPerMessageBoundedBySize) {
  NodeOptions o = PlainOptions();
  o.max_size_per_msg_bytes = 350;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(2);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(net.node(1).Propose(std::string(100, 'a' + i)).ok());
    net.Stabilize();
  }
  net.node(1).ReportUnreachable(2);
  net.Heal();
  net.ClearSent();
  for (int i = 0; i < 5 && net.AppliedData(2).size() < 20; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  ASSERT_EQ(net.AppliedData(2).size(), 20u);
  size_t batched = 0;
  for (const auto& m : net.sent()) {
    if (m.type() != raftpb::MSG_APP || m.to() != 2 || m.entries_size() == 0) continue;
    std::vector<raftpb::Entry> es(m.entries().begin(), m.entries().end());
    if (es.size() > 1) ++batched;
    EXPECT_TRUE(es.size() == 1 || EntriesSize(es) <= o.max_size_per_msg_bytes)
        << es.size() << " entries, " << EntriesSize(es) << " bytes";
  }
  EXPECT_GE(batched, 2u) << "a lagging follower's catch-up is batched";
}

// max_committed_size_per_ready_bytes bounds the committed entries of one Ready (at
// least one entry), so a node far behind applies in bounded batches.
TEST_F(FlowControlTest, CommittedEntriesPerReadyBoundedBySize) {
  NodeOptions o = PlainOptions();
  o.max_committed_size_per_ready_bytes = 350;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(3);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(net.node(1).Propose(std::string(100, 'a' + i)).ok());
  net.Stabilize();
  net.Heal();
  size_t readies_with_entries = 0;
  net.set_on_ready([&](uint64_t id, const Ready& rd) {
    if (id != 3 || rd.committed_entries.empty()) return;
    ++readies_with_entries;
    EXPECT_TRUE(rd.committed_entries.size() == 1 ||
                EntriesSize(rd.committed_entries) <= o.max_committed_size_per_ready_bytes)
        << rd.committed_entries.size() << " entries, " << EntriesSize(rd.committed_entries);
  });
  for (int i = 0; i < 5 && net.AppliedData(3).size() < 20; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.AppliedData(3).size(), 20u);
  EXPECT_GE(readies_with_entries, 7u) << "20 x ~105 bytes in batches of at most 350 bytes";
  net.set_on_ready(nullptr);
}

// An entry bigger than the limit still goes out (alone).
TEST_F(FlowControlTest, OversizedEntryIsSentAlone) {
  NodeOptions o = PlainOptions();
  o.max_size_per_msg_bytes = 100;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.ProposeAndCommit(1, std::string(1000, 'z'));
  EXPECT_EQ(net.AppliedData(3).size(), 1u);
}

}  // namespace
}  // namespace keel::raft::testing
