// RawNode::Create: configuration checks, recovery from storage, and Config.applied.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raftpb::ConfState cs;
    cs.add_voters(1);
    storage_.SetConfState(cs);
  }
  Config Valid() {
    Config c;
    c.id = 1;
    c.group_id = kGroupId;
    c.storage = &storage_;
    return c;
  }
  MemoryStorage storage_;
};

TEST_F(ConfigTest, ValidConfigCreatesFollowerAtStoredTerm) {
  auto node = RawNode::Create(Valid());
  ASSERT_TRUE(node.ok()) << node.status();
  Status st = (*node)->GetStatus();
  EXPECT_EQ(st.soft_state.role, Role::kFollower);
  EXPECT_EQ(st.hard_state.term(), 0u);
  EXPECT_EQ(st.id, 1u);
  EXPECT_EQ(st.group_id, kGroupId);
}

TEST_F(ConfigTest, BadConfigsAreInvalidArgument) {
  struct Case {
    const char* what;
    void (*mutate)(Config*);
  };
  const Case cases[] = {
      {"id 0", [](Config* c) { c->id = 0; }},
      {"no storage", [](Config* c) { c->storage = nullptr; }},
      {"election_tick == heartbeat_tick",
       [](Config* c) {
         c->election_tick = 3;
         c->heartbeat_tick = 3;
       }},
      {"heartbeat_tick 0", [](Config* c) { c->heartbeat_tick = 0; }},
      {"max_inflight_msgs 0", [](Config* c) { c->max_inflight_msgs = 0; }},
  };
  for (const Case& k : cases) {
    Config c = Valid();
    k.mutate(&c);
    auto node = RawNode::Create(c);
    EXPECT_TRUE(absl::IsInvalidArgument(node.status())) << k.what << ": " << node.status();
  }
}

// A stored commit index beyond the stored log means the storage lost entries it had
// acknowledged: refuse to start rather than act on a log with holes.
TEST_F(ConfigTest, StoredCommitBeyondLogIsDataLoss) {
  ASSERT_TRUE(storage_.Append(MakeEntries(1, {1, 1})).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(5);
  storage_.SetHardState(hs);
  auto node = RawNode::Create(Valid());
  EXPECT_TRUE(absl::IsDataLoss(node.status())) << node.status();
}

TEST_F(ConfigTest, AppliedBeyondCommitIsInvalidArgument) {
  ASSERT_TRUE(storage_.Append(MakeEntries(1, {1, 1, 1})).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  storage_.SetHardState(hs);
  Config c = Valid();
  c.applied = 3;
  auto node = RawNode::Create(c);
  EXPECT_TRUE(absl::IsInvalidArgument(node.status())) << node.status();
}

// Committed entries at or below Config.applied are not handed out again on restart;
// with applied = 0 they are replayed from the snapshot.
TEST_F(ConfigTest, AppliedIndexSkipsReplayedEntries) {
  ASSERT_TRUE(storage_.Append(MakeEntries(1, {1, 1, 1, 1})).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(3);
  storage_.SetHardState(hs);
  for (uint64_t applied : {0, 2, 3}) {
    Config c = Valid();
    c.applied = applied;
    auto node = RawNode::Create(c);
    ASSERT_TRUE(node.ok()) << node.status();
    RawNode& n = **node;
    std::vector<uint64_t> got;
    while (n.HasReady()) {
      Ready rd = n.GetReady();
      for (const auto& e : rd.committed_entries) got.push_back(e.index());
      EXPECT_TRUE(rd.entries.empty()) << "stored entries are not handed out to persist again";
      n.Advance();
    }
    std::vector<uint64_t> want;
    for (uint64_t i = applied + 1; i <= 3; ++i) want.push_back(i);
    EXPECT_EQ(got, want) << "applied = " << applied;
    EXPECT_EQ(n.GetStatus().applied, 3u);
  }
}

// The only randomness is Config.random_seed: two nodes built alike behave alike.
TEST_F(ConfigTest, SameSeedSameBehaviour) {
  auto run = [this](uint64_t seed) {
    Config c = Valid();
    c.random_seed = seed;
    raftpb::ConfState cs;
    cs.add_voters(1);
    cs.add_voters(2);
    cs.add_voters(3);
    MemoryStorage s;
    s.SetConfState(cs);
    c.storage = &s;
    auto node = RawNode::Create(c);
    EXPECT_TRUE(node.ok());
    int ticks = 0;
    while ((*node)->GetStatus().soft_state.role == Role::kFollower && ticks < 100) {
      (*node)->Tick();
      ++ticks;
    }
    return ticks;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_EQ(run(1234), run(1234));
}

// The Ready/Advance protocol is a programmer contract: breaking it is a CHECK failure,
// not something to limp on from.
TEST_F(ConfigTest, GetReadyTwiceWithoutAdvanceDies) {
  auto node = RawNode::Create(Valid());
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE((*node)->Campaign().ok());
  ASSERT_TRUE((*node)->HasReady());
  Ready rd = (*node)->GetReady();
  EXPECT_DEATH((void)(*node)->GetReady(), "Advance");
}

TEST_F(ConfigTest, AdvanceWithoutReadyDies) {
  auto node = RawNode::Create(Valid());
  ASSERT_TRUE(node.ok());
  EXPECT_DEATH((*node)->Advance(), "Ready");
}

}  // namespace
}  // namespace keel::raft::testing
