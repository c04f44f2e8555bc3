// Proposals: forwarding, refusal without a leader, and the uncommitted-bytes bound.
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using ProposalTest = RaftTest;

// A follower forwards a proposal to the leader (thesis §6.2), which appends and commits it.
TEST_F(ProposalTest, FollowerForwardsProposalToLeader) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  net.ClearSent();
  ASSERT_TRUE(net.node(2).Propose("x").ok());
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_PROP, 2, 1), 1u);
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"x"}) << "node " << id;
  }
}

// Without a known leader a proposal cannot go anywhere: kUnavailable (retry later).
TEST_F(ProposalTest, NoLeaderMeansUnavailable) {
  Network& net = MakeNetwork({1, 2, 3});
  absl::Status st = net.node(1).Propose("x");
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  net.Isolate(1);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  ASSERT_NE(net.role(1), Role::kLeader);
  st = net.node(1).Propose("x");
  EXPECT_TRUE(absl::IsUnavailable(st)) << "a (pre-)candidate knows no leader: " << st;
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_PROP), 0u);
}

// After its leader steps down (check-quorum), a follower refuses instead of forwarding
// into the void.
TEST_F(ProposalTest, DeposedLeaderRefusesProposals) {
  NodeOptions o;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(1);
  net.Tick(1, 2 * o.election_tick);
  ASSERT_EQ(net.role(1), Role::kFollower);
  absl::Status st = net.node(1).Propose("x");
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  net.Stabilize();
}

// max_uncommitted_entries_bytes bounds the leader's uncommitted tail: past it,
// proposals are refused with kResourceExhausted; commits free the budget again.
TEST_F(ProposalTest, UncommittedBytesLimitGivesResourceExhausted) {
  NodeOptions o;
  o.max_uncommitted_entries_bytes = 1000;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.Isolate(2);
  net.Isolate(3);
  int accepted = 0;
  absl::Status st;
  for (int i = 0; i < 50; ++i) {
    st = net.node(1).Propose(std::string(100, 'a'));
    if (!st.ok()) break;
    ++accepted;
    net.Stabilize();
  }
  EXPECT_TRUE(absl::IsResourceExhausted(st)) << st;
  EXPECT_GE(accepted, 5);
  EXPECT_LE(accepted, 11) << "about 1000 bytes of 100-byte proposals";
  net.Heal();
  for (int i = 0; i < 3 && net.AppliedData(1).size() < static_cast<size_t>(accepted); ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  ASSERT_EQ(net.AppliedData(1).size(), static_cast<size_t>(accepted));
  st = net.node(1).Propose("after");
  EXPECT_TRUE(st.ok()) << "commits must release the uncommitted budget: " << st;
  net.Stabilize();
}

// A proposal bigger than the whole budget is still accepted when nothing else is
// uncommitted (otherwise it could never be proposed).
TEST_F(ProposalTest, OversizedProposalAcceptedWhenNothingUncommitted) {
  NodeOptions o;
  o.max_uncommitted_entries_bytes = 100;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ElectLeader(1);
  net.ProposeAndCommit(1, std::string(500, 'b'));
}

// Entries proposed on a leader carry its term and consecutive indices.
TEST_F(ProposalTest, ProposedEntriesCarryLeaderTermAndConsecutiveIndices) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  const uint64_t last = net.status(1).last_index;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  Ready rd = net.node(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rd.entries[i].term(), term);
    EXPECT_EQ(rd.entries[i].index(), last + 1 + i);
    EXPECT_EQ(rd.entries[i].data(), "v" + std::to_string(i));
  }
  net.Send(1, rd.messages);
  net.Persist(1, rd);
  net.Send(1, rd.messages_after_persist);
  net.Apply(1, rd);
  net.node(1).Advance();
  net.Stabilize();
  EXPECT_EQ(net.AppliedData(3).size(), 3u);
}

// Messages from another group or local-only types from the wire are refused.
TEST_F(ProposalTest, StepRejectsForeignGroupAndLocalMessages) {
  Network& net = MakeNetwork({1, 2, 3});
  raftpb::Message m = MakeMessage(raftpb::MSG_HEARTBEAT, 2, 1, 1);
  m.set_group_id(kGroupId + 1);
  EXPECT_TRUE(absl::IsInvalidArgument(net.node(1).Step(m)));
  EXPECT_TRUE(absl::IsInvalidArgument(net.node(1).Step(MakeMessage(raftpb::MSG_HUP, 2, 1, 0))));
  EXPECT_TRUE(absl::IsInvalidArgument(net.node(1).Step(MakeMessage(raftpb::MSG_BEAT, 2, 1, 0))));
  EXPECT_EQ(net.term(1), 0u);
}

// Answers from a node that is not a member (removed, or never added) are ignored; so
// are transport reports about it.
TEST_F(ProposalTest, LeaderIgnoresMessagesAboutUnknownPeers) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  const uint64_t term = net.term(1);
  raftpb::Message ack = MakeMessage(raftpb::MSG_APP_RESP, 9, 1, term);
  ack.set_index(100);
  EXPECT_TRUE(net.node(1).Step(ack).ok());
  raftpb::Message hb = MakeMessage(raftpb::MSG_HEARTBEAT_RESP, 9, 1, term);
  EXPECT_TRUE(net.node(1).Step(hb).ok());
  net.node(1).ReportUnreachable(9);
  net.node(1).ReportSnapshot(9, false);
  EXPECT_EQ(net.status(1).progress.count(9), 0u);
  EXPECT_EQ(net.role(1), Role::kLeader);
  net.ProposeAndCommit(1, "x");
}

}  // namespace
}  // namespace keel::raft::testing
