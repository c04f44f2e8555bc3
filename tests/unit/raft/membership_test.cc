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

// The etcd way of bootstrapping (raft/bootstrap.h): the initial voters are committed
// conf-change entries at indices 1..n. A member added later starts with an empty
// storage and learns the initial voters by replaying the log.
TEST_F(MembershipTest, LogBootstrapLetsLateMemberLearnInitialVoters) {
  NodeOptions o;
  o.bootstrap_in_log = true;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.Stabilize();  // Apply the bootstrap entries.
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(Voters(net.conf_state(id)), (std::vector<uint64_t>{1, 2, 3})) << "node " << id;
    EXPECT_EQ(net.applied_index(id), 3u) << "node " << id;
  }
  net.ElectLeader(1);
  EXPECT_EQ(net.StoredLog(1).back().index(), 4u) << "the no-op follows the bootstrap";
  net.ProposeAndCommit(1, "a");
  net.AddNode(4);
  EXPECT_EQ(net.conf_state(4).voters_size(), 0) << "a new member starts knowing nobody";
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  EXPECT_EQ(Voters(net.conf_state(4)), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Learners(net.conf_state(4)), std::vector<uint64_t>{4});
  EXPECT_EQ(net.AppliedData(4), std::vector<std::string>{"a"});
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_NODE, 4);
  EXPECT_EQ(Voters(net.conf_state(4)), (std::vector<uint64_t>{1, 2, 3, 4}));
  // Node 4 counts 4 voters, so it cannot win with only its own and node 1's vote.
  net.Isolate(2);
  net.Isolate(3);
  net.Crash(1);
  ASSERT_TRUE(net.node(4).Campaign().ok());
  net.Stabilize();
  EXPECT_NE(net.role(4), Role::kLeader);
}

// Ongaro's 2015 single-server bug fix ("a leader may not append a new configuration
// entry until it has committed an entry from its current term"), as raft/design.md
// states it: a new leader cannot propose a change before its no-op has committed.
TEST_F(MembershipTest, NewLeaderRefusesConfChangeUntilItsNoOpCommits) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.DropType(raftpb::MSG_APP_RESP);
  net.node(1).TransferLeader(2);
  net.Stabilize();
  ASSERT_EQ(net.role(2), Role::kLeader);
  ASSERT_LT(net.commit(2), net.status(2).last_index) << "the no-op must still be uncommitted";
  net.AddNode(4);
  absl::Status st =
      net.node(2).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4));
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  net.Heal();
  net.Tick(2);
  net.Stabilize();
  st = net.node(2).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4));
  EXPECT_TRUE(st.ok()) << st;
  net.Stabilize();
}

// A member added after the log was compacted learns the membership from the snapshot.
TEST_F(MembershipTest, LateMemberLearnsMembershipFromSnapshot) {
  NodeOptions o;
  o.bootstrap_in_log = true;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.Stabilize();
  net.ElectLeader(1);
  // Node 4 becomes a member before its process exists.
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  net.ProposeAndCommit(1, "a");
  net.ProposeAndCommit(1, "b");
  const uint64_t applied = net.applied_index(1);
  ASSERT_TRUE(net.storage(1).CreateSnapshot(applied, net.conf_state(1), "s").ok());
  ASSERT_TRUE(net.storage(1).Compact(applied).ok());
  net.AddNode(4);  // Empty storage, knows no members.
  for (int i = 0; i < 5 && net.applied_index(4) < applied; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.applied_index(4), applied);
  EXPECT_EQ(Voters(net.conf_state(4)), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Learners(net.conf_state(4)), std::vector<uint64_t>{4});
  net.ProposeAndCommit(1, "c");
  EXPECT_EQ(net.AppliedData(4), std::vector<std::string>{"c"});
}

// A node with a committed but not yet applied conf change does not campaign: the
// change may remove it or change the quorum it would count votes against.
TEST_F(MembershipTest, NoCampaignWhileCommittedConfChangeIsUnapplied) {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  Network& net = MakeNetwork({1, 2, 3}, o);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 1);
  *app.add_entries() = MakeEntries(1, {1})[0];
  raftpb::Entry cc = MakeEntries(2, {1})[0];
  cc.set_type(raftpb::ENTRY_CONF_CHANGE);
  cc.set_data(MakeConfChange(raftpb::CONF_CHANGE_REMOVE_NODE, 3).SerializeAsString());
  *app.add_entries() = cc;
  app.set_commit(2);
  ASSERT_TRUE(net.node(2).Step(app).ok());
  ASSERT_EQ(net.commit(2), 2u);
  // Not applied yet (the Ready is not handled): no election, however long we wait.
  net.Tick(2, 4 * o.election_tick);
  EXPECT_EQ(net.role(2), Role::kFollower);
  ASSERT_TRUE(net.node(2).Campaign().ok());
  EXPECT_EQ(net.role(2), Role::kFollower);
  EXPECT_EQ(net.term(2), 1u);
  // Applied: now it may. (Committed entries come out once durable: maybe a Ready later.)
  while (net.HandleReady(2)) {
  }
  EXPECT_EQ(Voters(net.conf_state(2)), (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE(net.node(2).Campaign().ok());
  EXPECT_EQ(net.role(2), Role::kCandidate);
  net.HandleReady(2);
}

// Check-quorum counts voters only: a leader that hears only from a learner steps down.
TEST_F(MembershipTest, LearnerDoesNotCountForCheckQuorum) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.AddNode(4);
  ChangeAndStabilize(net, 1, raftpb::CONF_CHANGE_ADD_LEARNER, 4);
  net.Isolate(2);
  net.Isolate(3);
  for (int i = 0; i < 2 * o.election_tick; ++i) {
    net.Tick(1);
    net.Tick(4);
    net.Stabilize();
  }
  EXPECT_NE(net.role(1), Role::kLeader);
}

}  // namespace
}  // namespace keel::raft::testing
