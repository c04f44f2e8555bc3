// Linearizable reads with ReadIndex (Raft thesis §6.4): the leader records its commit
// index, confirms its leadership with one heartbeat round shared by every read waiting
// at that moment, and only then releases the read state.
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using ReadIndexTest = RaftTest;

// Thesis §6.4 steps 1-3: read index = commit index, released after a heartbeat quorum.
TEST_F(ReadIndexTest, LeaderReadIndexIsCommitIndexAfterHeartbeatQuorum) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t commit = net.ProposeAndCommit(1, "a");
  net.ClearSent();
  net.node(1).ReadIndex("r1");
  net.HandleReady(1);
  EXPECT_TRUE(net.read_states(1).empty()) << "released before any heartbeat answer";
  EXPECT_EQ(net.CountQueued(raftpb::MSG_HEARTBEAT, 1), 2u);
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].index, commit);
  EXPECT_EQ(net.read_states(1)[0].request_ctx, "r1");
}

// Without heartbeat answers the leader cannot confirm it still leads: no read state.
TEST_F(ReadIndexTest, NoReadStateWithoutHeartbeatQuorum) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.DropType(raftpb::MSG_HEARTBEAT_RESP);
  net.node(1).ReadIndex("r1");
  net.Stabilize();
  EXPECT_TRUE(net.read_states(1).empty());
}

// One answer besides the leader's own is a quorum of 3.
TEST_F(ReadIndexTest, ReadIndexNeedsOnlyAQuorumOfHeartbeats) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t commit = net.ProposeAndCommit(1, "a");
  net.Isolate(3);
  net.node(1).ReadIndex("r1");
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].index, commit);
}

// Only voters confirm leadership: a learner's heartbeat answer is not a quorum.
TEST_F(ReadIndexTest, LearnerHeartbeatAnswersDoNotConfirmRead) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.AddNode(4);
  ASSERT_TRUE(
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  net.Stabilize();
  ASSERT_EQ(net.conf_state(1).learners_size(), 1);
  net.Isolate(2);
  net.Isolate(3);
  net.ClearSent();
  net.node(1).ReadIndex("r");
  net.Stabilize();
  EXPECT_GE(net.CountSent(raftpb::MSG_HEARTBEAT_RESP, 4, 1), 1u) << "the learner did answer";
  EXPECT_TRUE(net.read_states(1).empty());
}

// All requests made before the next Ready share ONE heartbeat round.
TEST_F(ReadIndexTest, ReadsBeforeNextReadyShareOneHeartbeatRound) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5});
  net.ElectLeader(1);
  const uint64_t commit = net.ProposeAndCommit(1, "a");
  net.ClearSent();
  for (int i = 0; i < 5; ++i) net.node(1).ReadIndex("r" + std::to_string(i));
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_HEARTBEAT, 1), 4u) << "one heartbeat per follower";
  ASSERT_EQ(net.read_states(1).size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(net.read_states(1)[i].request_ctx, "r" + std::to_string(i));
    EXPECT_EQ(net.read_states(1)[i].index, commit);
  }
}

// A read index is at least the commit index at the time of the request: a read made
// after a write was acknowledged sees it.
TEST_F(ReadIndexTest, ReadIndexCoversWritesCommittedBeforeTheRead) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  for (int i = 0; i < 3; ++i) {
    const uint64_t index = net.ProposeAndCommit(1, "w" + std::to_string(i));
    net.node(1).ReadIndex("r" + std::to_string(i));
    net.Stabilize();
    ASSERT_EQ(net.read_states(1).size(), static_cast<size_t>(i + 1));
    EXPECT_GE(net.read_states(1).back().index, index);
  }
}

// A single-node cluster is its own quorum: no heartbeat needed.
TEST_F(ReadIndexTest, SingleNodeLeaderAnswersWithoutHeartbeats) {
  Network& net = MakeNetwork({1});
  net.ElectLeader(1);
  const uint64_t commit = net.ProposeAndCommit(1, "a");
  net.node(1).ReadIndex("r1");
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].index, commit);
}

// Thesis §6.4 step 1: a new leader does not know the commit index until it has
// committed an entry of its own term (its no-op); it serves reads only after that.
TEST_F(ReadIndexTest, NewLeaderServesReadsOnlyAfterCommittingEntryOfItsTerm) {
  Network& net = MakeNetwork({1, 2, 3});
  for (uint64_t id : {1, 2, 3}) net.ResetNode(id, {1, 1}, 1, 0, 2);
  // The new leader's appends (its no-op) do not get through; heartbeats do.
  net.DropIf([](const raftpb::Message& m) { return m.type() == raftpb::MSG_APP; });
  net.ElectLeader(2);
  ASSERT_EQ(net.commit(2), 2u) << "the no-op must not be committed yet";
  net.node(2).ReadIndex("r");
  net.Stabilize();
  net.Tick(2);  // A heartbeat round.
  net.Stabilize();
  EXPECT_TRUE(net.read_states(2).empty()) << "read served before an entry of term 2 committed";
  net.Heal();
  for (int i = 0; i < 3 && net.read_states(2).empty(); ++i) {
    net.Tick(2);
    net.Stabilize();
  }
  ASSERT_EQ(net.read_states(2).size(), 1u) << "the read is served once the no-op commits";
  EXPECT_EQ(net.read_states(2)[0].request_ctx, "r");
  EXPECT_GE(net.read_states(2)[0].index, 3u) << "read index covers the no-op of term 2";
}

// A follower forwards ReadIndex to the leader, which confirms leadership and answers;
// the read state is released on the follower, with the leader's commit index.
TEST_F(ReadIndexTest, FollowerReadIndexIsForwardedToLeaderAndAnswered) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t commit = net.ProposeAndCommit(1, "a");
  net.ClearSent();
  net.node(2).ReadIndex("f");
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_READ_INDEX, 2, 1), 1u);
  EXPECT_EQ(net.CountSent(raftpb::MSG_READ_INDEX_RESP, 1, 2), 1u);
  ASSERT_EQ(net.read_states(2).size(), 1u);
  EXPECT_EQ(net.read_states(2)[0].request_ctx, "f");
  EXPECT_EQ(net.read_states(2)[0].index, commit);
  EXPECT_TRUE(net.read_states(1).empty()) << "the leader does not release a follower's read";
}

// Without a leader a read cannot be served: it is dropped (the caller retries).
TEST_F(ReadIndexTest, ReadIndexWithoutLeaderIsDropped) {
  Network& net = MakeNetwork({1, 2, 3});
  net.node(2).ReadIndex("x");
  net.Stabilize();
  EXPECT_TRUE(net.read_states(2).empty());
  EXPECT_EQ(net.CountSent(raftpb::MSG_READ_INDEX), 0u);
}

// An isolated leader can never confirm its leadership, so it never releases a read —
// not while isolated, and not after it learns it was deposed.
TEST_F(ReadIndexTest, IsolatedLeaderNeverReleasesReadState) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.Isolate(1);
  net.node(1).ReadIndex("stale");
  net.Stabilize();
  for (int i = 0; i < 4 * o.election_tick; ++i) net.TickAndStabilize(1);
  EXPECT_TRUE(net.read_states(1).empty());
  const uint64_t leader = net.Leader();
  ASSERT_NE(leader, 0u);
  ASSERT_NE(leader, 1u);
  net.ProposeAndCommit(leader, "b");
  net.Heal();
  net.TickAndStabilize(3 * o.election_tick);
  EXPECT_TRUE(net.read_states(1).empty());
}

// Deposed between sending its heartbeats and hearing the answers: the answers (from
// the old term) must not release the read.
TEST_F(ReadIndexTest, DeposedLeaderDoesNotReleaseReadOnStaleHeartbeatAnswers) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  const uint64_t term = net.term(1);
  net.node(1).ReadIndex("r");
  net.HandleReady(1);    // Heartbeats queued.
  net.DeliverPending();  // Followers step them.
  net.HandleReady(2);
  net.HandleReady(3);  // Answers queued.
  // A higher term reaches node 1 before the answers do.
  raftpb::Message hb = MakeMessage(raftpb::MSG_HEARTBEAT, 3, 1, term + 1);
  ASSERT_TRUE(net.node(1).Step(hb).ok());
  ASSERT_EQ(net.role(1), Role::kFollower);
  net.DeliverPending();
  net.HandleReady(1);
  EXPECT_TRUE(net.read_states(1).empty());
}

}  // namespace
}  // namespace keel::raft::testing
