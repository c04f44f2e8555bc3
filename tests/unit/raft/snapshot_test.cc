// Snapshots and log compaction (Raft paper §7): the application snapshots at an index
// and compacts the log; a follower behind the compacted prefix gets InstallSnapshot.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/raft/raft_test_util.h"

namespace keel::raft::testing {
namespace {

using SnapshotTest = RaftTest;

// Leader 1 commits 10 entries while node 3 is cut off, then snapshots and compacts its
// log at its applied index. Returns that index.
uint64_t CompactWhileNode3IsAway(Network& net) {
  net.ElectLeader(1);
  net.Isolate(3);
  for (int i = 0; i < 10; ++i) net.ProposeAndCommit(1, "p" + std::to_string(i));
  const uint64_t applied = net.applied_index(1);
  auto snap = net.storage(1).CreateSnapshot(applied, net.conf_state(1), "snap");
  EXPECT_TRUE(snap.ok()) << snap.status();
  absl::Status st = net.storage(1).Compact(applied);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(net.storage(1).FirstIndex(), applied + 1);
  return applied;
}

// Ticks the leader (heartbeats) and stabilizes until node 3 applied `index`.
void CatchUp(Network& net, uint64_t index, int max_ticks = 10) {
  for (int i = 0; i < max_ticks && net.applied_index(3) < index; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
}

// A follower behind the compacted prefix receives MsgSnap, installs it, then
// continues with ordinary appends.
TEST_F(SnapshotTest, FollowerBehindCompactedLogReceivesSnapshotThenAppends) {
  Network& net = MakeNetwork({1, 2, 3});
  const uint64_t snap_index = CompactWhileNode3IsAway(net);
  net.Heal();
  net.ClearSent();
  CatchUp(net, snap_index);
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP, 1, 3), 1u);
  EXPECT_EQ(net.storage(3).FirstIndex(), snap_index + 1) << "snapshot installed";
  EXPECT_EQ(net.applied_index(3), snap_index);
  auto snap = net.storage(3).GetSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->data(), "snap");
  EXPECT_EQ(snap->metadata().index(), snap_index);
  EXPECT_EQ(net.conf_state(3).voters_size(), 3);

  net.ClearSent();
  const uint64_t index = net.ProposeAndCommit(1, "after");
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP), 0u);
  EXPECT_GE(net.CountSent(raftpb::MSG_APP, 1, 3), 1u);
  EXPECT_EQ(net.applied_index(3), index);
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"after"});
  EXPECT_EQ(std::string(net.status(1).progress[3].state), "replicate");
}

// A failed snapshot send (ReportSnapshot(id, false)) puts the follower back to probe,
// and the leader sends the snapshot again.
TEST_F(SnapshotTest, ReportSnapshotFailureRetries) {
  Network& net = MakeNetwork({1, 2, 3});
  const uint64_t snap_index = CompactWhileNode3IsAway(net);
  net.Heal();
  net.set_auto_report_snapshot(false);
  auto dropped = std::make_shared<int>(0);
  net.DropIf([dropped](const raftpb::Message& m) {
    return m.type() == raftpb::MSG_SNAP && (*dropped)++ == 0;
  });
  net.ClearSent();
  for (int i = 0; i < 5 && net.CountSent(raftpb::MSG_SNAP) == 0; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  ASSERT_EQ(net.CountSent(raftpb::MSG_SNAP, 1, 3), 1u);
  EXPECT_EQ(std::string(net.status(1).progress[3].state), "snapshot");
  // While the snapshot is in flight, heartbeats do not trigger another one.
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP, 1, 3), 1u);
  net.node(1).ReportSnapshot(3, false);
  EXPECT_EQ(std::string(net.status(1).progress[3].state), "probe");
  CatchUp(net, snap_index);
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP, 1, 3), 2u);
  EXPECT_EQ(net.applied_index(3), net.applied_index(1));
}

// While the storage cannot produce a snapshot, the leader retries later.
TEST_F(SnapshotTest, TemporarilyUnavailableSnapshotIsRetried) {
  Network& net = MakeNetwork({1, 2, 3});
  const uint64_t snap_index = CompactWhileNode3IsAway(net);
  net.storage(1).set_snapshot_unavailable(true);
  net.Heal();
  net.ClearSent();
  for (int i = 0; i < 3; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP), 0u);
  EXPECT_LT(net.applied_index(3), snap_index);
  net.storage(1).set_snapshot_unavailable(false);
  CatchUp(net, snap_index);
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP, 1, 3), 1u);
  EXPECT_EQ(net.applied_index(3), snap_index);
}

// A node restarted after installing a snapshot recovers from it: same log bounds,
// state machine replayed from the snapshot.
TEST_F(SnapshotTest, RestartAfterSnapshotRecoversFromStorage) {
  Network& net = MakeNetwork({1, 2, 3});
  const uint64_t snap_index = CompactWhileNode3IsAway(net);
  net.Heal();
  CatchUp(net, snap_index);
  const uint64_t index = net.ProposeAndCommit(1, "after");
  Status before = net.status(3);
  net.Restart(3);
  Status after = net.status(3);
  EXPECT_EQ(after.hard_state.term(), before.hard_state.term());
  EXPECT_EQ(after.hard_state.commit(), before.hard_state.commit());
  EXPECT_EQ(after.last_index, before.last_index);
  net.Stabilize();
  EXPECT_EQ(net.applied_index(3), index);
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"after"});
  // The leader restarts from its compacted log too.
  net.Restart(1);
  EXPECT_EQ(net.status(1).last_index, before.last_index);
  net.Stabilize();
  EXPECT_EQ(net.applied_index(1), index);
}

// A snapshot older than what the follower has committed is ignored (it would roll the
// state machine back) and answered with the follower's position.
TEST_F(SnapshotTest, StaleSnapshotIsIgnored) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  for (int i = 0; i < 5; ++i) net.ProposeAndCommit(1, "p" + std::to_string(i));
  const uint64_t commit = net.commit(3);
  raftpb::Message m = MakeMessage(raftpb::MSG_SNAP, 1, 3, net.term(1));
  m.mutable_snapshot()->mutable_metadata()->set_index(2);
  m.mutable_snapshot()->mutable_metadata()->set_term(net.term(1));
  *m.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = net.conf_state(1);
  ASSERT_TRUE(net.node(3).Step(m).ok());
  ASSERT_TRUE(net.node(3).HasReady());
  Ready rd = net.node(3).GetReady();
  EXPECT_FALSE(rd.snapshot.has_value());
  auto resp = OfType(AllMessages(rd), raftpb::MSG_APP_RESP);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_GE(resp[0].index(), commit);
  net.Persist(3, rd);
  net.node(3).Advance();
  EXPECT_EQ(net.commit(3), commit);
}

// The leader's own compaction does not disturb followers that are up to date.
TEST_F(SnapshotTest, CompactionDoesNotAffectUpToDateFollowers) {
  Network& net = MakeNetwork({1, 2, 3});
  net.ElectLeader(1);
  for (int i = 0; i < 5; ++i) net.ProposeAndCommit(1, "p" + std::to_string(i));
  const uint64_t applied = net.applied_index(1);
  ASSERT_TRUE(net.storage(1).CreateSnapshot(applied, net.conf_state(1), "s").ok());
  ASSERT_TRUE(net.storage(1).Compact(applied).ok());
  net.ClearSent();
  net.ProposeAndCommit(1, "q");
  EXPECT_EQ(net.CountSent(raftpb::MSG_SNAP), 0u);
  EXPECT_EQ(net.AppliedData(2).back(), "q");
}

}  // namespace
}  // namespace keel::raft::testing
