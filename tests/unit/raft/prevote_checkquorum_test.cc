// Pre-vote (Raft thesis §9.6) and check-quorum / leader lease (thesis §6.2, §4.2.3).
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using PreVoteTest = RaftTest;
using CheckQuorumTest = RaftTest;

// A node partitioned away keeps timing out; with pre-vote it never raises its term
// (nobody answers its pre-votes), so on return it does not depose the healthy leader.
TEST_F(PreVoteTest, RejoiningPartitionedNodeDoesNotDisruptLeader) {
  NodeOptions o;  // pre_vote and check_quorum on.
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  const uint64_t term = net.term(1);
  net.Isolate(3);
  for (int i = 0; i < 5 * o.election_tick; ++i) net.TickAndStabilize(1);
  EXPECT_EQ(net.term(3), term) << "pre-vote must not raise the term";
  EXPECT_NE(net.role(3), Role::kLeader);
  EXPECT_EQ(net.Leader(), 1u);
  net.Heal();
  net.TickAndStabilize(3 * o.election_tick);
  EXPECT_EQ(net.Leader(), 1u);
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(net.term(id), term) << "node " << id;
  EXPECT_EQ(net.status(3).soft_state.leader_id, 1u);
  net.ProposeAndCommit(1, "b");
  EXPECT_EQ(net.AppliedData(3), (std::vector<std::string>{"a", "b"}));
}

// The contrast: without pre-vote (and without check-quorum) the same partition raises
// the returning node's term and forces the leader to step down. This shows the test
// above can fail.
TEST_F(PreVoteTest, WithoutPreVoteRejoiningNodeRaisesTerm) {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  net.Isolate(3);
  for (int i = 0; i < 5 * o.election_tick; ++i) net.TickAndStabilize(1);
  EXPECT_GT(net.term(3), term);
  net.Heal();
  net.TickAndStabilize(3 * o.election_tick);
  EXPECT_GT(net.term(1), term) << "the old leader was deposed";
}

// Pre-vote uses the same up-to-date check as voting (§5.4.1): a node whose log is
// behind is refused, and the voter's term does not change.
TEST_F(PreVoteTest, PreVoteRejectedWhenLogIsBehind) {
  Network& net = MakeNetwork({1, 2, 3}, NodeOptions{});
  net.ResetNode(2, {1, 1, 2}, 2, 0, 1);
  raftpb::Message pv = MakeMessage(raftpb::MSG_PRE_VOTE, 1, 2, 3);
  pv.set_index(2);
  pv.set_log_term(1);
  ASSERT_TRUE(net.node(2).Step(pv).ok());
  ASSERT_TRUE(net.node(2).HasReady());
  Ready rd = net.node(2).GetReady();
  auto resp = OfType(AllMessages(rd), raftpb::MSG_PRE_VOTE_RESP);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject());
  EXPECT_EQ(net.term(2), 2u) << "a pre-vote does not change the voter's term";
  EXPECT_EQ(net.status(2).hard_state.vote(), 0u);
  net.Persist(2, rd);
  net.node(2).Advance();
}

TEST_F(PreVoteTest, PreVoteGrantedWithoutChangingVoterTerm) {
  Network& net = MakeNetwork({1, 2, 3}, NodeOptions{});
  net.ResetNode(2, {1, 1, 2}, 2, 0, 1);
  raftpb::Message pv = MakeMessage(raftpb::MSG_PRE_VOTE, 1, 2, 3);
  pv.set_index(3);
  pv.set_log_term(2);
  ASSERT_TRUE(net.node(2).Step(pv).ok());
  ASSERT_TRUE(net.node(2).HasReady());
  Ready rd = net.node(2).GetReady();
  auto resp = OfType(AllMessages(rd), raftpb::MSG_PRE_VOTE_RESP);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject());
  EXPECT_EQ(resp[0].term(), 3u) << "the grant echoes the proposed term";
  EXPECT_EQ(net.term(2), 2u);
  EXPECT_EQ(net.status(2).hard_state.vote(), 0u) << "a pre-vote is not a vote";
  net.Persist(2, rd);
  net.node(2).Advance();
}

// A pre-candidate does not increment its term; it does so only after a majority of
// pre-votes, when it becomes a real candidate.
TEST_F(PreVoteTest, PreCandidateKeepsTermUntilPreVoteWon) {
  Network& net = MakeNetwork({1, 2, 3}, NodeOptions{});
  net.Isolate(1);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kPreCandidate);
  EXPECT_EQ(net.term(1), 0u);
  EXPECT_EQ(net.CountSent(raftpb::MSG_PRE_VOTE, 1), 2u);
  EXPECT_EQ(net.CountSent(raftpb::MSG_VOTE, 1), 0u);
  net.Heal();
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kLeader);
  EXPECT_EQ(net.term(1), 1u);
}

// A node behind the cluster cannot win a pre-vote; an up-to-date node then wins and the
// committed entry survives. (Check-quorum off, so that only the log decides.)
TEST_F(PreVoteTest, LaggingNodeCannotWinPreVote) {
  NodeOptions o;
  o.check_quorum = false;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  net.Isolate(3);
  net.ProposeAndCommit(1, "a");
  net.Crash(1);
  net.Heal();
  ASSERT_TRUE(net.node(3).Campaign().ok());
  net.Stabilize();
  EXPECT_EQ(net.role(3), Role::kPreCandidate) << "must not get past the pre-vote";
  EXPECT_EQ(net.term(3), term);
  EXPECT_EQ(net.term(2), term);
  net.ElectLeader(2);
  EXPECT_EQ(net.term(2), term + 1);
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"a"});
}

// --- Check-quorum ----------------------------------------------------------------------

// A leader that has not heard from a quorum for an election timeout steps down.
TEST_F(CheckQuorumTest, IsolatedLeaderStepsDownAfterElectionTimeout) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(1);
  net.Tick(1, o.election_tick - 1);
  EXPECT_EQ(net.role(1), Role::kLeader) << "not yet a full election timeout";
  net.Tick(1, o.election_tick + 1);
  EXPECT_EQ(net.role(1), Role::kFollower);
  EXPECT_EQ(net.status(1).soft_state.leader_id, 0u);
}

// A single-node cluster is its own quorum: its leader never steps down.
TEST_F(CheckQuorumTest, SingleNodeLeaderNeverStepsDown) {
  NodeOptions o;
  Network& net = MakeNetwork({1}, o);
  net.ElectLeader(1);
  net.TickAndStabilize(10 * o.election_tick);
  EXPECT_EQ(net.role(1), Role::kLeader);
}

// A leader in contact with a quorum stays, even with a minority unreachable.
TEST_F(CheckQuorumTest, LeaderWithQuorumStays) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(3);
  net.TickAndStabilize(5 * o.election_tick);
  EXPECT_EQ(net.role(1), Role::kLeader);
}

// A leader that can send but not receive (one-way partition) steps down; the others
// elect a leader among themselves and keep a stable term, undisturbed by the cut-off
// node's pre-votes.
TEST_F(CheckQuorumTest, OneWayPartitionedLeaderStepsDownAndClusterRecovers) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  net.DropIf([](const raftpb::Message& m) { return m.to() == 1; });
  for (int i = 0; i < 10 * o.election_tick; ++i) net.TickAndStabilize(1);
  EXPECT_NE(net.role(1), Role::kLeader);
  const uint64_t leader = net.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << "leader " << leader;
  EXPECT_LE(net.term(leader), term + 2) << "repeated elections";
  net.ProposeAndCommit(leader, "x");
}

// Without check-quorum the isolated leader would stay leader: the contrast case.
TEST_F(CheckQuorumTest, WithoutCheckQuorumIsolatedLeaderStays) {
  NodeOptions o;
  o.check_quorum = false;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(1);
  net.Tick(1, 5 * o.election_tick);
  EXPECT_EQ(net.role(1), Role::kLeader);
}

// Leader lease: a follower that heard from its leader within the election timeout
// ignores vote requests, even of a higher term (it neither grants nor adopts the term).
TEST_F(CheckQuorumTest, FollowerInLeaseIgnoresVoteRequest) {
  NodeOptions o;
  o.pre_vote = false;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  const uint64_t term = net.term(2);
  raftpb::Message vote = MakeMessage(raftpb::MSG_VOTE, 3, 2, term + 1);
  vote.set_index(100);
  vote.set_log_term(term);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  EXPECT_EQ(net.term(2), term);
  EXPECT_EQ(net.status(2).soft_state.leader_id, 1u);
  if (net.node(2).HasReady()) {
    Ready rd = net.node(2).GetReady();
    for (const auto& m : OfType(AllMessages(rd), raftpb::MSG_VOTE_RESP)) {
      EXPECT_TRUE(m.reject()) << "vote granted inside the leader lease";
    }
    net.Persist(2, rd);
    net.node(2).Advance();
  }
}

// Once the lease has run out (no word from the leader for an election timeout), the
// same request is granted.
TEST_F(CheckQuorumTest, FollowerOutOfLeaseGrantsVote) {
  NodeOptions o;
  o.pre_vote = false;
  o.election_tick = 10;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  const uint64_t term = net.term(2);
  net.Isolate(2);
  // election_tick ticks end the lease. Node 2 may also time out at that tick (its
  // randomized timeout can equal election_tick), but the higher-term request must be
  // granted either way: node 3's log is more up to date.
  net.Tick(2, o.election_tick);
  net.Heal();
  raftpb::Message vote = MakeMessage(raftpb::MSG_VOTE, 3, 2, term + 5);
  vote.set_index(100);
  vote.set_log_term(term);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  EXPECT_EQ(net.term(2), term + 5);
  EXPECT_EQ(net.status(2).hard_state.vote(), 3u);
  net.HandleReady(2);
}

}  // namespace
}  // namespace keel::raft::testing
