// Leader election: Raft paper Figure 2 "Rules for Servers" and §5.2, and the election
// restriction of §5.4.1. Pre-vote and check-quorum are off unless a test is about them,
// so that each test exercises exactly one rule.
#include <set>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using ElectionTest = RaftTest;

NodeOptions PlainOptions() {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  return o;
}

// §5.2: "If a follower receives no communication over a period of time called the
// election timeout, then it ... begins an election": it increments its term, votes for
// itself and asks every other server for its vote.
TEST_F(ElectionTest, FollowerBecomesCandidateAfterElectionTimeoutAndVotesForSelf) {
  NodeOptions o = PlainOptions();
  Network& net = MakeNetwork({1, 2, 3}, o);
  ASSERT_EQ(net.term(1), 0u);
  net.Tick(1, 2 * o.election_tick);  // Past any randomized timeout.
  EXPECT_EQ(net.role(1), Role::kCandidate);
  ASSERT_TRUE(net.node(1).HasReady());
  Ready rd = net.node(1).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 1u) << "the candidate increments its term";
  EXPECT_EQ(rd.hard_state->vote(), 1u) << "the candidate votes for itself";
  // The vote for itself must be durable before the vote requests go out.
  EXPECT_TRUE(OfType(rd.messages, raftpb::MSG_VOTE).empty());
  auto votes = OfType(rd.messages_after_persist, raftpb::MSG_VOTE);
  ASSERT_EQ(votes.size(), 2u);
  std::set<uint64_t> to;
  for (const auto& m : votes) {
    to.insert(m.to());
    EXPECT_EQ(m.term(), 1u);
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
  net.Persist(1, rd);
  net.node(1).Advance();
}

// A candidate that does not hear enough votes starts another election with a new term
// after another timeout (§5.2, split votes).
TEST_F(ElectionTest, CandidateWithoutMajorityStartsNewElectionWithHigherTerm) {
  NodeOptions o = PlainOptions();
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.Isolate(1);
  net.Tick(1, 2 * o.election_tick);
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kCandidate);
  EXPECT_EQ(net.term(1), 1u);
  net.Tick(1, 2 * o.election_tick);
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kCandidate);
  EXPECT_EQ(net.term(1), 2u);
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the
// servers in the full cluster for the same term."
TEST_F(ElectionTest, CandidateWithMajorityBecomesLeader) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, PlainOptions());
  // Two of the four others are unreachable: 1 + 2 votes = 3 of 5 is still a majority.
  net.Isolate(4);
  net.Isolate(5);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kLeader);
  EXPECT_EQ(net.status(2).soft_state.leader_id, 1u);
  EXPECT_EQ(net.status(3).soft_state.leader_id, 1u);
}

TEST_F(ElectionTest, CandidateWithoutMajorityDoesNotBecomeLeader) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, PlainOptions());
  net.Isolate(3);
  net.Isolate(4);
  net.Isolate(5);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  EXPECT_EQ(net.role(1), Role::kCandidate) << "2 votes of 5 are not a majority";
}

// Figure 2, RequestVote receiver: grant "if votedFor is null or candidateId". A node
// votes for at most one candidate in a term.
TEST_F(ElectionTest, OneVotePerTerm) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  raftpb::Message v1 = MakeMessage(raftpb::MSG_VOTE, 1, 3, 1);
  ASSERT_TRUE(net.node(3).Step(v1).ok());
  Ready rd = net.node(3).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  auto resp = OfType(rd.messages_after_persist, raftpb::MSG_VOTE_RESP);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject()) << "first candidate of term 1 gets the vote";
  net.Persist(3, rd);
  net.node(3).Advance();

  raftpb::Message v2 = MakeMessage(raftpb::MSG_VOTE, 2, 3, 1);
  ASSERT_TRUE(net.node(3).Step(v2).ok());
  EXPECT_EQ(net.status(3).hard_state.vote(), 1u);
  if (net.node(3).HasReady()) {
    Ready rd2 = net.node(3).GetReady();
    for (const auto& m : OfType(AllMessages(rd2), raftpb::MSG_VOTE_RESP)) {
      EXPECT_TRUE(m.reject()) << "second candidate of the same term must be rejected";
    }
    net.Persist(3, rd2);
    net.node(3).Advance();
  }
  // The same candidate asking again (a retransmission) gets the same answer.
  ASSERT_TRUE(net.node(3).Step(v1).ok());
  ASSERT_TRUE(net.node(3).HasReady());
  Ready rd3 = net.node(3).GetReady();
  auto again = OfType(AllMessages(rd3), raftpb::MSG_VOTE_RESP);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(again[0].reject());
  net.Persist(3, rd3);
  net.node(3).Advance();
}

// §5.2: "If the AppendEntries RPC is from a leader whose term is at least as large as
// the candidate's current term, then the candidate ... returns to follower state."
TEST_F(ElectionTest, CandidateStepsDownOnAppendEntriesFromLeaderOfSameTerm) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.Isolate(1);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  ASSERT_EQ(net.role(1), Role::kCandidate);
  ASSERT_EQ(net.term(1), 1u);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 2, 1, 1);
  app.set_index(0);
  app.set_log_term(0);
  ASSERT_TRUE(net.node(1).Step(app).ok());
  Status st = net.status(1);
  EXPECT_EQ(st.soft_state.role, Role::kFollower);
  EXPECT_EQ(st.soft_state.leader_id, 2u);
  EXPECT_EQ(st.hard_state.term(), 1u);
}

// Figure 2, all servers: "If RPC request or response contains term T > currentTerm: set
// currentTerm = T, convert to follower."
TEST_F(ElectionTest, HigherTermInAnyMessageMakesLeaderFollower) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ElectLeader(1);
  const uint64_t t = net.term(1);
  raftpb::Message resp = MakeMessage(raftpb::MSG_HEARTBEAT_RESP, 2, 1, t + 5);
  ASSERT_TRUE(net.node(1).Step(resp).ok());
  Status st = net.status(1);
  EXPECT_EQ(st.soft_state.role, Role::kFollower);
  EXPECT_EQ(st.hard_state.term(), t + 5);
  EXPECT_EQ(st.soft_state.leader_id, 0u) << "a response names no leader";
}

TEST_F(ElectionTest, HigherTermAppendMakesCandidateFollowerOfSender) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.Isolate(1);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  ASSERT_EQ(net.role(1), Role::kCandidate);
  raftpb::Message hb = MakeMessage(raftpb::MSG_HEARTBEAT, 3, 1, 4);
  ASSERT_TRUE(net.node(1).Step(hb).ok());
  Status st = net.status(1);
  EXPECT_EQ(st.soft_state.role, Role::kFollower);
  EXPECT_EQ(st.hard_state.term(), 4u);
  EXPECT_EQ(st.soft_state.leader_id, 3u);
  EXPECT_EQ(st.hard_state.vote(), 0u) << "a new term starts with no vote";
}

// Figure 2, AppendEntries receiver: "Reply false if term < currentTerm." The stale
// leader's entries are not appended and the answer carries the newer term.
TEST_F(ElectionTest, StaleTermAppendIsRejected) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 1}, 3, 0, 0);
  raftpb::Message app = MakeMessage(raftpb::MSG_APP, 1, 2, 2);
  app.set_index(2);
  app.set_log_term(1);
  *app.add_entries() = MakeEntries(3, {2})[0];
  ASSERT_TRUE(net.node(2).Step(app).ok());
  EXPECT_EQ(net.status(2).last_index, 2u) << "entries of a stale leader are not appended";
  EXPECT_EQ(net.term(2), 3u);
  if (net.node(2).HasReady()) {
    Ready rd = net.node(2).GetReady();
    EXPECT_TRUE(rd.entries.empty());
    for (const auto& m : AllMessages(rd)) {
      EXPECT_EQ(m.term(), 3u) << "any answer carries the newer term: " << m.ShortDebugString();
      EXPECT_FALSE(m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.index() >= 3)
          << "stale append acknowledged: " << m.ShortDebugString();
    }
    net.Persist(2, rd);
    net.node(2).Advance();
  }
}

// RequestVote receiver: "Reply false if term < currentTerm."
TEST_F(ElectionTest, StaleTermVoteIsNotGranted) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(2, {1, 1}, 3, 0, 0);
  raftpb::Message vote = MakeMessage(raftpb::MSG_VOTE, 1, 2, 2);
  vote.set_index(5);
  vote.set_log_term(2);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  EXPECT_EQ(net.term(2), 3u);
  EXPECT_EQ(net.status(2).hard_state.vote(), 0u);
  if (net.node(2).HasReady()) {
    Ready rd = net.node(2).GetReady();
    for (const auto& m : OfType(AllMessages(rd), raftpb::MSG_VOTE_RESP)) {
      EXPECT_TRUE(m.reject()) << "stale vote request granted";
    }
    net.Persist(2, rd);
    net.node(2).Advance();
  }
}

// §5.2: "election timeouts are chosen randomly from a fixed interval"; here
// [election_tick, 2 * election_tick), drawn from the seeded RNG.
TEST_F(ElectionTest, RandomizedElectionTimeoutWithinRange) {
  NodeOptions o = PlainOptions();
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    o.seed_base = seed;
    Network net({1, 2, 3}, o);
    int ticks = 0;
    while (net.role(1) == Role::kFollower && ticks < 10 * o.election_tick) {
      net.Tick(1);
      ++ticks;
    }
    EXPECT_GE(ticks, o.election_tick) << "seed " << seed;
    EXPECT_LT(ticks, 2 * o.election_tick) << "seed " << seed;
    seen.insert(ticks);
  }
  EXPECT_GE(seen.size(), 4u) << "election timeouts are not randomized";
}

// Same seed, same timeout: the only randomness comes from Config.random_seed.
TEST_F(ElectionTest, ElectionTimeoutIsDeterministicForASeed) {
  NodeOptions o = PlainOptions();
  int first = -1;
  for (int run = 0; run < 3; ++run) {
    Network net({1, 2, 3}, o);
    int ticks = 0;
    while (net.role(1) == Role::kFollower && ticks < 10 * o.election_tick) {
      net.Tick(1);
      ++ticks;
    }
    if (first < 0) first = ticks;
    EXPECT_EQ(ticks, first);
  }
}

// A fresh cluster elects exactly one leader when all nodes tick, and it stays.
TEST_F(ElectionTest, TickingClusterElectsOneLeader) {
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, NodeOptions{});
  for (int i = 0; i < 100 && net.Leader() == 0; ++i) net.TickAndStabilize(1);
  const uint64_t leader = net.Leader();
  ASSERT_NE(leader, 0u);
  const uint64_t term = net.term(leader);
  net.TickAndStabilize(50);
  EXPECT_EQ(net.Leader(), leader) << "a healthy leader is not replaced";
  EXPECT_EQ(net.term(leader), term);
  int leaders = 0;
  for (uint64_t id : net.ids()) leaders += net.role(id) == Role::kLeader ? 1 : 0;
  EXPECT_EQ(leaders, 1);
}

// §5.4.1: the voter denies its vote if its own log is more up-to-date than the
// candidate's: compare the last entries' terms, and on equal terms the lengths.
struct UpToDateCase {
  uint64_t cand_last_term;
  uint64_t cand_last_index;
  bool granted;
};

class VoteUpToDateTest : public RaftTest, public ::testing::WithParamInterface<UpToDateCase> {};

TEST_P(VoteUpToDateTest, VoteDeniedToCandidateWithLessUpToDateLog) {
  const UpToDateCase c = GetParam();
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  // Voter 2's log: last entry index 5, term 2.
  net.ResetNode(2, {1, 1, 2, 2, 2}, 2, 0, 0);
  raftpb::Message vote = MakeMessage(raftpb::MSG_VOTE, 1, 2, 3);
  vote.set_log_term(c.cand_last_term);
  vote.set_index(c.cand_last_index);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  ASSERT_TRUE(net.node(2).HasReady());
  Ready rd = net.node(2).GetReady();
  auto resp = OfType(AllMessages(rd), raftpb::MSG_VOTE_RESP);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].reject(), !c.granted) << "candidate last (term " << c.cand_last_term
                                          << ", index " << c.cand_last_index << ") vs voter (2, 5)";
  EXPECT_EQ(net.status(2).hard_state.vote(), c.granted ? 1u : 0u);
  EXPECT_EQ(net.term(2), 3u) << "the higher term is adopted even when the vote is denied";
  net.Persist(2, rd);
  net.node(2).Advance();
}

INSTANTIATE_TEST_SUITE_P(Section541, VoteUpToDateTest,
                         ::testing::Values(UpToDateCase{1, 10, false},  // Lower last term.
                                           UpToDateCase{2, 4, false},   // Same term, shorter.
                                           UpToDateCase{2, 5, true},    // Equal.
                                           UpToDateCase{2, 9, true},    // Same term, longer.
                                           UpToDateCase{3, 1, true}));  // Higher last term.

// The test-only switch that skips the §5.4.1 check turns the first case into a grant:
// the check above can fail.
TEST_F(ElectionTest, InjectedVoteWithoutLogCheckIsDetected) {
  NodeOptions o = PlainOptions();
  o.unsafe_injected_bugs.vote_without_log_check = true;
  Network& net = MakeNetwork({1, 2, 3}, o);
  net.ResetNode(2, {1, 1, 2, 2, 2}, 2, 0, 0);
  raftpb::Message vote = MakeMessage(raftpb::MSG_VOTE, 1, 2, 3);
  vote.set_log_term(1);
  vote.set_index(10);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  EXPECT_EQ(net.status(2).hard_state.vote(), 1u);
  net.HandleReady(2);
}

// §5.4.1 end to end: the node with the stale log cannot win, the up-to-date one can.
TEST_F(ElectionTest, NodeWithStaleLogCannotWinElection) {
  Network& net = MakeNetwork({1, 2, 3}, PlainOptions());
  net.ResetNode(1, {1}, 2, 0, 1);
  net.ResetNode(2, {1, 2}, 2, 0, 1);
  net.ResetNode(3, {1, 2}, 2, 0, 1);
  ASSERT_TRUE(net.node(1).Campaign().ok());
  net.Stabilize();
  EXPECT_NE(net.role(1), Role::kLeader);
  net.ElectLeader(2);
}

}  // namespace
}  // namespace keel::raft::testing
