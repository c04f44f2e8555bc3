// Leadership transfer (Raft thesis §3.10): the leader catches the target up, then sends
// MsgTimeoutNow so that it campaigns at once; proposals are refused meanwhile.
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using TransferTest = RaftTest;

size_t IndexOfFirst(const std::vector<raftpb::Message>& msgs, raftpb::MessageType type,
                    uint64_t from, uint64_t to) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].type() == type && msgs[i].from() == from && msgs[i].to() == to) return i;
  }
  return msgs.size();
}

// A caught-up target gets MsgTimeoutNow and wins the next term, despite the leader
// lease of check-quorum (a transfer campaign is not a disruption).
TEST_F(TransferTest, CaughtUpTargetReceivesTimeoutNowAndBecomesLeader) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ProposeAndCommit(1, "a");
  const uint64_t term = net.term(1);
  net.ClearSent();
  net.node(1).TransferLeader(2);
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_TIMEOUT_NOW, 1, 2), 1u);
  EXPECT_EQ(net.role(2), Role::kLeader);
  EXPECT_EQ(net.role(1), Role::kFollower);
  EXPECT_EQ(net.term(2), term + 1);
  EXPECT_EQ(net.status(1).lead_transferee, 0u);
  net.ProposeAndCommit(2, "b");
  EXPECT_EQ(net.AppliedData(1), (std::vector<std::string>{"a", "b"}));
}

// A follower asked to transfer forwards the request to the leader.
TEST_F(TransferTest, TransferRequestOnFollowerIsForwarded) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.node(3).TransferLeader(3);
  net.Stabilize();
  EXPECT_EQ(net.role(3), Role::kLeader);
}

// A lagging target is first caught up with appends; MsgTimeoutNow follows its ack of
// the leader's last entry.
TEST_F(TransferTest, LaggingTargetIsCaughtUpFirst) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.Isolate(2);
  for (int i = 0; i < 5; ++i) net.ProposeAndCommit(1, "p" + std::to_string(i));
  const uint64_t last = net.status(1).last_index;
  net.Heal();
  net.ClearSent();
  net.node(1).TransferLeader(2);
  for (int i = 0; i < 5 && net.role(2) != Role::kLeader; ++i) {
    net.Stabilize();
    net.Tick(1);  // Heartbeats let a paused probe resume.
  }
  net.Stabilize();
  ASSERT_EQ(net.role(2), Role::kLeader);
  const auto& sent = net.sent();
  const size_t timeout_now = IndexOfFirst(sent, raftpb::MSG_TIMEOUT_NOW, 1, 2);
  ASSERT_LT(timeout_now, sent.size());
  size_t caught_up = sent.size();
  for (size_t i = 0; i < sent.size(); ++i) {
    const auto& m = sent[i];
    if (m.type() == raftpb::MSG_APP_RESP && m.from() == 2 && !m.reject() && m.index() >= last) {
      caught_up = i;
      break;
    }
  }
  EXPECT_LT(caught_up, timeout_now) << "MsgTimeoutNow sent before the target caught up";
  EXPECT_EQ(net.AppliedData(2).size(), 5u);
}

// While a transfer is in progress the leader refuses proposals (kUnavailable: retry
// at the new leader); an election timeout without success aborts the transfer.
TEST_F(TransferTest, ProposalsRefusedDuringTransferAndTransferAbortsAfterTimeout) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(2);  // The target never answers.
  net.node(1).TransferLeader(2);
  net.Stabilize();
  EXPECT_EQ(net.status(1).lead_transferee, 2u);
  absl::Status st = net.node(1).Propose("x");
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  // One election timeout later the leader gives up and serves again.
  net.TickAndStabilize(o.election_tick + 1);
  EXPECT_EQ(net.role(1), Role::kLeader);
  EXPECT_EQ(net.status(1).lead_transferee, 0u);
  net.ProposeAndCommit(1, "y");
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"y"});
}

// The transfer is still pending just before the election timeout runs out.
TEST_F(TransferTest, TransferStaysPendingWithinElectionTimeout) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(2);
  net.node(1).TransferLeader(2);
  net.TickAndStabilize(o.election_tick - 2);
  EXPECT_EQ(net.status(1).lead_transferee, 2u);
}

TEST_F(TransferTest, TransferToSelfIsIgnored) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  net.ClearSent();
  net.node(1).TransferLeader(1);
  net.Stabilize();
  EXPECT_EQ(net.status(1).lead_transferee, 0u);
  EXPECT_EQ(net.CountSent(raftpb::MSG_TIMEOUT_NOW), 0u);
  EXPECT_EQ(net.role(1), Role::kLeader);
  EXPECT_EQ(net.term(1), term);
  EXPECT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
}

TEST_F(TransferTest, TransferToLearnerIsIgnored) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.AddNode(4);
  ASSERT_TRUE(
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  net.Stabilize();
  ASSERT_EQ(net.conf_state(1).learners_size(), 1);
  net.ClearSent();
  net.node(1).TransferLeader(4);
  net.Stabilize();
  EXPECT_EQ(net.status(1).lead_transferee, 0u);
  EXPECT_EQ(net.CountSent(raftpb::MSG_TIMEOUT_NOW), 0u);
  EXPECT_EQ(net.role(1), Role::kLeader);
  EXPECT_EQ(net.role(4), Role::kFollower);
  EXPECT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
}

// A learner that receives MsgTimeoutNow anyway (e.g. from a buggy or stale leader) does
// not campaign.
TEST_F(TransferTest, LearnerIgnoresTimeoutNow) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.AddNode(4);
  ASSERT_TRUE(
      net.node(1).ProposeConfChange(MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  net.Stabilize();
  ASSERT_EQ(net.conf_state(4).learners_size(), 1);
  net.ClearSent();
  ASSERT_TRUE(net.node(4).Step(MakeMessage(raftpb::MSG_TIMEOUT_NOW, 1, 4, net.term(1))).ok());
  net.Stabilize();
  EXPECT_EQ(net.role(4), Role::kFollower);
  EXPECT_EQ(net.CountSent(raftpb::MSG_VOTE, 4), 0u);
  EXPECT_EQ(net.Leader(), 1u);
}

TEST_F(TransferTest, TransferToUnknownNodeIsIgnored) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.node(1).TransferLeader(9);
  net.Stabilize();
  EXPECT_EQ(net.status(1).lead_transferee, 0u);
  EXPECT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
}

}  // namespace
}  // namespace keel::raft::testing
