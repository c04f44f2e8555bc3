// Randomized faults on the unit-test harness: drops, reordering, partitions, crashes
// (including crashes between GetReady and persisting, which lose the unpersisted part),
// proposals, reads and transfers, with the harness's safety invariants checked along the
// way and liveness checked once the network heals. Small and fast; tests/sim/ is the
// deep version of this. Every failure names its seed.
#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

class RandomizedTest : public RaftTest, public ::testing::WithParamInterface<uint64_t> {};

// 40 seeds in the normal suite; KEEL_RAFT_UNIT_SEEDS=N runs N (a long local run).
uint64_t SeedCount() {
  const char* env = std::getenv("KEEL_RAFT_UNIT_SEEDS");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 40;
}

// Membership changes during the run: node 6 joins as a learner, is promoted, then one
// random voter is removed. One change at a time, each proposed until it applies.
struct MembershipScript {
  int stage = 0;
  uint64_t removed = 0;
  raftpb::ConfChange Next(uint64_t remove_candidate) {
    switch (stage) {
      case 0:
        return MakeConfChange(raftpb::CONF_CHANGE_ADD_LEARNER, 6);
      case 1:
        return MakeConfChange(raftpb::CONF_CHANGE_ADD_NODE, 6);
      default:
        removed = remove_candidate;
        return MakeConfChange(raftpb::CONF_CHANGE_REMOVE_NODE, remove_candidate);
    }
  }
  void Observe(const raftpb::ConfState& cs) {
    auto has = [](const auto& list, uint64_t id) {
      return std::find(list.begin(), list.end(), id) != list.end();
    };
    if (stage == 0 && has(cs.learners(), 6)) stage = 1;
    if (stage == 1 && has(cs.voters(), 6)) stage = 2;
    if (stage == 2 && removed != 0 && !has(cs.voters(), removed)) stage = 3;
  }
};

TEST_P(RandomizedTest, SafetyUnderFaultsAndLivenessAfterHeal) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto chance = [&rng](int percent) { return static_cast<int>(rng() % 100) < percent; };
  NodeOptions o;
  o.seed_base = seed;
  o.max_inflight_msgs = 4;
  o.max_size_per_msg_bytes = 200;
  Network& net = MakeNetwork({1, 2, 3, 4, 5}, o);
  net.AddNode(6);
  const std::vector<uint64_t> ids = net.ids();
  MembershipScript script;
  auto pick = [&]() { return ids[rng() % ids.size()]; };
  int drop_percent = 0;
  net.DropIf([&](const raftpb::Message&) { return chance(drop_percent); });
  int proposals = 0;

  for (int step = 0; step < 400; ++step) {
    const int action = static_cast<int>(rng() % 100);
    if (action < 30) {
      net.TickAll();
    } else if (action < 45) {
      const uint64_t id = pick();
      if (net.alive(id)) (void)net.node(id).Propose("p" + std::to_string(proposals++));
    } else if (action < 50) {
      const uint64_t id = pick();
      if (net.alive(id)) net.node(id).ReadIndex("r" + std::to_string(step));
    } else if (action < 53) {
      net.Heal();
      net.DropIf([&](const raftpb::Message&) { return chance(drop_percent); });
      drop_percent = static_cast<int>(rng() % 30);
      if (chance(50)) net.Isolate(pick());
      if (chance(30)) net.Cut(pick(), pick());
    } else if (action < 55) {
      const uint64_t id = pick();
      if (!net.alive(id)) {
        net.Restart(id);
      } else if (chance(50) && net.node(id).HasReady()) {
        // Crash mid-Ready: the messages went out, nothing reached the disk.
        Ready rd = net.node(id).GetReady();
        net.Send(id, rd.messages);
        net.Crash(id);
      } else {
        net.Crash(id);
      }
    } else if (action < 57) {
      const uint64_t leader = net.Leader();
      if (leader != 0) net.node(leader).TransferLeader(pick());
    } else if (action < 60) {
      const uint64_t leader = net.Leader();
      if (leader != 0 && script.stage < 3) {
        script.Observe(net.conf_state(leader));
        if (script.stage < 3) {
          (void)net.node(leader).ProposeConfChange(script.Next(1 + rng() % 5));
        }
      }
    } else {
      for (uint64_t id : ids) {
        if (net.alive(id)) net.HandleReady(id);
      }
      if (chance(30)) std::shuffle(net.queue().begin(), net.queue().end(), rng);
      net.DeliverPending();
    }
    if (step % 50 == 0) net.CheckInvariants();
  }

  // Heal everything; a leader must emerge and commit a new proposal everywhere.
  for (uint64_t id : ids) {
    if (!net.alive(id)) net.Restart(id);
  }
  drop_percent = 0;
  net.Heal();
  net.Stabilize();
  uint64_t leader = 0;
  for (int i = 0; i < 20 * o.election_tick && leader == 0; ++i) {
    net.TickAndStabilize(1);
    leader = net.Leader();
  }
  ASSERT_NE(leader, 0u) << "no leader after healing";
  const std::string last = "final";
  absl::Status st;
  for (int i = 0; i < 5; ++i) {
    st = net.node(leader).Propose(last);
    if (st.ok()) break;
    net.TickAndStabilize(o.election_tick);  // e.g. a transfer still pending
    leader = net.Leader();
    ASSERT_NE(leader, 0u);
  }
  ASSERT_TRUE(st.ok()) << st;
  for (int i = 0; i < 5; ++i) net.TickAndStabilize(1);
  const raftpb::ConfState members = net.conf_state(net.Leader());
  std::vector<uint64_t> live(members.voters().begin(), members.voters().end());
  live.insert(live.end(), members.learners().begin(), members.learners().end());
  for (uint64_t id : live) {
    const auto data = net.AppliedData(id);
    EXPECT_TRUE(!data.empty() && data.back() == last) << "node " << id << " did not apply it";
  }
  net.Heal();  // The drop rule refers to this function's locals.
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomizedTest, ::testing::Range<uint64_t>(1, SeedCount() + 1));

}  // namespace
}  // namespace keel::raft::testing
