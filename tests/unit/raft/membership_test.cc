// Membership changes (Raft thesis §4: single-server changes, one in flight at a time;
// learners as in thesis §4.2.1 "catching up new servers").
#include <algorithm>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using MembershipTest = RaftTest;

std::vector<uint64_t> Voters(const raftpb::ConfState& cs) {
  std::vector<uint64_t> v(cs.voters().begin(), cs.voters().end());
  std::sort(v.begin(), v.end());
  return v;
}
std::vector<uint64_t> Learners(const raftpb::ConfState& cs) {
  std::vector<uint64_t> v(cs.learners().begin(), cs.learners().end());
  std::sort(v.begin(), v.end());
  return v;
}

void ChangeAndStabilize(Network& net, uint64_t leader, raftpb::ConfChangeType type, uint64_t id) {
  absl::Status st = net.node(leader).ProposeConfChange(MakeConfChange(type, id));
  ASSERT_TRUE(st.ok()) << st;
  net.Stabilize();
}

// A learner receives and applies the log; it is not counted for commitment.
TEST_F(MembershipTest, LearnerReceivesLogButIsNotCountedInQuorum) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.AddNode(4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  for (uint64_t id : {1, 2, 3, 4}) {
    EXPECT_EQ(Voters(net.conf_state(id)), (std::vector<uint64_t>{1, 2, 3})) << "node " << id;
    EXPECT_EQ(Learners(net.conf_state(id)), std::vector<uint64_t>{4}) << "node " << id;
  }
  EXPECT_EQ(net.AppliedData(4), std::vector<std::string>{"a"});
  Status st = net.status(1);
  ASSERT_EQ(st.progress.count(4), 1u);
  EXPECT_TRUE(st.progress[4].is_learner);

  // Leader + learner are not a majority of the three voters.
  net.Isolate(2);
  net.Isolate(3);
  ASSERT_TRUE(net.node(1).Propose("b").ok());
  net.Stabilize();
  EXPECT_EQ(net.storage(4).LastIndex(), net.storage(1).LastIndex()) << "learner has the entry";
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"a"}) << "committed by a learner's ack";
  net.Heal();
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(4), (std::vector<std::string>{"a", "b"}));
}

// A learner never starts an election, however long it hears nothing.
TEST_F(MembershipTest, LearnerNeverCampaigns) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.AddNode(4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  ASSERT_EQ(Learners(net.conf_state(4)), std::vector<uint64_t>{4});
  net.Isolate(4);
  net.ClearSent();
  net.Tick(4, 10 * o.election_tick);
  net.Stabilize();
  EXPECT_EQ(net.role(4), Role::kFollower);
  EXPECT_EQ(net.CountSent(raftpb::MSG_PRE_VOTE, 4) + net.CountSent(raftpb::MSG_VOTE, 4), 0u);
}

// ADD_NODE on a learner promotes it; its acks then count and the quorum grows.
TEST_F(MembershipTest, PromoteLearnerToVoter) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.AddNode(4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_NODE, 4);
  for (uint64_t id : {1, 2, 3, 4}) {
    EXPECT_EQ(Voters(net.conf_state(id)), (std::vector<uint64_t>{1, 2, 3, 4})) << "node " << id;
    EXPECT_TRUE(Learners(net.conf_state(id)).empty()) << "node " << id;
  }
  EXPECT_FALSE(net.status(1).progress[4].is_learner);
  // Quorum of 4 is 3: leader + 4 is not enough...
  net.Isolate(2);
  net.Isolate(3);
  ASSERT_TRUE(net.node(1).Propose("b").ok());
  net.Stabilize();
  EXPECT_TRUE(net.AppliedData(1).empty());
  // ...leader + 3 + 4 is.
  net.Heal();
  net.Isolate(2);
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"b"});
}

// Removing voters shrinks the quorum: with 5 voters {1, 2} cannot commit, with
// 3 voters they can.
TEST_F(MembershipTest, RemoveVoterShrinksQuorumAndCommitsContinue) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5});
  net.ElectLeader(1);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_REMOVE_NODE, 5);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_REMOVE_NODE, 4);
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(Voters(net.conf_state(id)), (std::vector<uint64_t>{1, 2, 3})) << "node " << id;
  }
  EXPECT_EQ(net.status(1).progress.count(5), 0u);
  net.Isolate(3);
  net.Isolate(4);
  net.Isolate(5);
  net.ProposeAndCommit(1, "x");
  EXPECT_EQ(net.AppliedData(2), std::vector<std::string>{"x"});
}

// A leader that removes itself steps down once the change is applied; the others elect
// a new leader among themselves and carry on.
TEST_F(MembershipTest, RemovedLeaderStepsDownAfterApplying) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_REMOVE_NODE, 1);
  EXPECT_EQ(Voters(net.conf_state(1)), (std::vector<uint64_t>{2, 3}));
  EXPECT_NE(net.role(1), Role::kLeader);
  net.ClearSent();
  for (int i = 0; i < 10 * o.election_tick && net.Leader() == 0; ++i) net.TickAndStabilize(1);
  const uint64_t leader = net.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << "leader " << leader;
  net.ProposeAndCommit(leader, "b");
  EXPECT_EQ(net.AppliedData(leader), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(net.CountSent(raftpb::MSG_PRE_VOTE, 1) + net.CountSent(raftpb::MSG_VOTE, 1), 0u)
      << "the removed node campaigned";
}

// A removed node that learned of its removal does not campaign.
TEST_F(MembershipTest, RemovedNodeDoesNotCampaign) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_REMOVE_NODE, 3);
  ASSERT_EQ(Voters(net.conf_state(3)), (std::vector<uint64_t>{1, 2}))
      << "the removed node did not learn that its removal committed";
  net.ClearSent();
  net.Tick(3, 10 * o.election_tick);
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_PRE_VOTE, 3) + net.CountSent(raftpb::MSG_VOTE, 3), 0u);
  EXPECT_NE(net.role(3), Role::kLeader);
  EXPECT_EQ(net.Leader(), 1u);
}

// Single-server changes are safe only one at a time (thesis §4.1): a second proposal
// while one is pending is refused with kFailedPrecondition.
TEST_F(MembershipTest, OnlyOnePendingConfChangeAtATime) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.AddNode(4);
  net.AddNode(5);
  ASSERT_TRUE(
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  absl::Status st =
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 5));
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  net.Stabilize();
  // Applied: the next change may go.
  st = net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 5));
  EXPECT_TRUE(st.ok()) << st;
  net.Stabilize();
  EXPECT_EQ(Learners(net.conf_state(1)), (std::vector<uint64_t>{4, 5}));
}

TEST_F(MembershipTest, InvalidConfChangesAreRejected) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  struct Case {
    raftpb::ConfChangeType type;
    uint64_t id;
    const char* what;
  };
  for (Case c : {Case{raftpb::CONF_CHANGE_ADD_NODE, 2, "add an existing voter"},
                 Case{raftpb::CONF_CHANGE_ADD_LEARNER, 2, "demote a voter to learner"},
                 Case{raftpb::CONF_CHANGE_REMOVE_NODE, 9, "remove an unknown node"},
                 Case{raftpb::CONF_CHANGE_ADD_NODE, 0, "add node id 0"}}) {
    absl::Status st = net.node(1).ProposeConfChange(MakeConfChange(c.type, c.id));
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << c.what << ": " << st;
  }
  net.Stabilize();
  EXPECT_EQ(Voters(net.conf_state(1)), (std::vector<uint64_t>{1, 2, 3}));
  // A refused change leaves nothing pending.
  net.AddNode(4);
  EXPECT_TRUE(
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  net.Stabilize();
}

TEST_F(MembershipTest, RemovingTheLastVoterIsRejected) {
  Network& net = MakeNetwork({1});
  net.ElectLeader(1);
  absl::Status st =
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_REMOVE_NODE, 1));
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
}

// A conf change goes through the log like any entry and needs a leader.
TEST_F(MembershipTest, ConfChangeWithoutLeaderIsUnavailable) {
  Network& net = MakeNetwork({1, 2, 3});
  absl::Status st =
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_REMOVE_NODE, 3));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
}

// A brand-new voter (added directly, without a learner phase) catches up and counts.
TEST_F(MembershipTest, AddVoterDirectlyCatchesUpAndCounts) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  net.AddNode(4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_NODE, 4);
  EXPECT_EQ(Voters(net.conf_state(4)), (std::vector<uint64_t>{1, 2, 3, 4}));
  net.Isolate(3);
  net.ProposeAndCommit(1, "b");  // 1, 2, 4: 3 of 4.
  EXPECT_EQ(net.AppliedData(4), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace keel::raft::testing
