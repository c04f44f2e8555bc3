// Failures of real processes: kill -9 of the leader, a follower that falls behind a
// compacted log, the whole cluster killed at once, and a graceful stop of the leader.
// Every write acknowledged before a failure must be readable after it.
#include <csignal>

#include "storage/raft_log_store.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using FailoverTest = ClusterTest;

// Writes keys prefix00000.. on members in turn (skipping stopped ones); every key must
// be acknowledged.
void WriteKeys(Cluster& c, const std::string& prefix, int count) {
  int member = 0;
  for (int i = 0; i < count; ++i) {
    while (!c.running(member % c.size())) ++member;
    grpc::Status s = c.PutWithRetry(member % c.size(), KeyOf(prefix, i), ValueOf(i));
    ASSERT_TRUE(s.ok()) << "put " << KeyOf(prefix, i) << ": " << s.error_message();
    ++member;
  }
}

// Range over the whole prefix on one member; true when exactly keys 0..count-1 with the
// right values are there.
bool HasAllKeys(Cluster& c, int member, const std::string& prefix, int count, bool serializable,
                std::string* why) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  etcdserverpb::RangeRequest request;
  request.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  request.set_range_end(end);
  request.set_serializable(serializable);
  etcdserverpb::RangeResponse got;
  grpc::Status s = c.Kv(member)->Range(&context, request, &got);
  if (!s.ok()) {
    *why = c.member(member).name + ": " + s.error_message();
    return false;
  }
  if (got.kvs_size() != count) {
    *why = c.member(member).name + " has " + std::to_string(got.kvs_size()) + " of " +
           std::to_string(count) + " keys";
    return false;
  }
  for (int i = 0; i < count; ++i) {
    if (got.kvs(i).key() != KeyOf(prefix, i) || got.kvs(i).value() != ValueOf(i)) {
      *why = c.member(member).name + ": wrong entry " + got.kvs(i).key() + "=" +
             got.kvs(i).value() + ", expected " + KeyOf(prefix, i);
      return false;
    }
  }
  return true;
}

// [FirstIndex, LastIndex] of a stopped member's raft log, read from its data dir.
absl::StatusOr<std::pair<uint64_t, uint64_t>> LogBounds(Cluster& c, int member) {
  storage::RaftLogStoreOptions options;
  options.group_id = 1;
  options.create_if_missing = false;
  auto log = storage::RaftLogStore::Open(c.member(member).data_dir + "/log", options);
  if (!log.ok()) return log.status();
  return std::make_pair((*log)->FirstIndex(), (*log)->LastIndex());
}

void ExpectAllKeysEverywhere(Cluster& c, const std::string& prefix, int count) {
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    std::string why;
    // Linearizable: may need a retry while a new leader settles in.
    const bool ok =
        WaitFor([&] { return HasAllKeys(c, i, prefix, count, false, &why); }, absl::Seconds(10));
    EXPECT_TRUE(ok) << why;
  }
}

TEST_F(FailoverTest, LeaderKilledNewLeaderElectedAndNoAcknowledgedWriteLost) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto old_leader = c.WaitForLeader();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  WriteKeys(c, "acked/", 200);
  ASSERT_FALSE(HasFailure());
  auto before = c.Status(*old_leader);
  ASSERT_TRUE(before.ok());

  c.Kill(*old_leader);
  const absl::Time killed = absl::Now();
  auto new_leader = c.WaitForLeader(absl::Seconds(10));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *old_leader);
  auto after = c.Status(*new_leader);
  ASSERT_TRUE(after.ok());
  EXPECT_GT(after->raftterm(), before->raftterm());
  std::fprintf(stderr, "new leader %s agreed %.0f ms after kill -9\n",
               c.member(*new_leader).name.c_str(),
               absl::ToDoubleMilliseconds(absl::Now() - killed));

  // Writes succeed again, on the new leader and on the remaining follower.
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    grpc::Status s = c.PutWithRetry(i, "after-kill/" + c.member(i).name, "ok");
    EXPECT_TRUE(s.ok()) << c.member(i).name << ": " << s.error_message();
  }
  ExpectAllKeysEverywhere(c, "acked/", 200);

  // The old leader comes back as a follower with everything.
  ASSERT_TRUE(c.Restart(*old_leader).ok()) << c.LogTail(*old_leader);
  std::string why;
  EXPECT_TRUE(WaitFor([&] { return HasAllKeys(c, *old_leader, "acked/", 200, true, &why); },
                      absl::Seconds(15)))
      << why;
}

TEST_F(FailoverTest, FollowerBehindCompactedLogCatchesUpBySnapshot) {
  ClusterOptions options;
  options.extra_flags = {"--snapshot-count", "50", "--snapshot-catchup-entries", "10"};
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int follower = (*leader + 1) % c.size();
  c.Kill(follower);
  auto follower_last = LogBounds(c, follower);
  ASSERT_TRUE(follower_last.ok()) << follower_last.status();
  // 400 entries with a snapshot every 50 and 10 kept: the others' logs no longer hold
  // the entries the follower is missing, so only a snapshot can bring it up to date.
  WriteKeys(c, "snap/", 400);
  ASSERT_FALSE(HasFailure());
  // Prove it: stop the two others and read their log stores (then bring them back).
  for (int i = 0; i < c.size(); ++i) {
    if (i == follower) continue;
    c.Kill(i);
    auto bounds = LogBounds(c, i);
    ASSERT_TRUE(bounds.ok()) << bounds.status();
    std::fprintf(stderr, "%s log [%lu, %lu]; lagging follower's last index %lu\n",
                 c.member(i).name.c_str(), static_cast<unsigned long>(bounds->first),
                 static_cast<unsigned long>(bounds->second),
                 static_cast<unsigned long>(follower_last->second));
    EXPECT_GT(bounds->first, follower_last->second + 1)
        << c.member(i).name << "'s log still holds entries the follower needs: first index "
        << bounds->first << ", follower's last " << follower_last->second;
  }
  for (int i = 0; i < c.size(); ++i) {
    if (i != follower) {
      ASSERT_TRUE(c.Spawn(i).ok());
    }
  }
  for (int i = 0; i < c.size(); ++i) {
    if (i != follower) {
      ASSERT_TRUE(c.WaitServing(i, absl::Seconds(15)).ok()) << c.LogTail(i);
    }
  }
  leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();

  ASSERT_TRUE(c.Restart(follower).ok()) << c.LogTail(follower);
  std::string why;
  const bool caught_up =
      WaitFor([&] { return HasAllKeys(c, follower, "snap/", 400, /*serializable=*/true, &why); },
              absl::Seconds(20));
  ASSERT_TRUE(caught_up) << why;
  // And it keeps up with new writes afterwards (raft continues above the snapshot).
  ASSERT_TRUE(c.PutWithRetry(follower, "snap-after", "x").ok());
  etcdserverpb::RangeResponse got;
  EXPECT_TRUE(WaitFor(
      [&] {
        got.Clear();
        return c.Get(follower, "snap-after", true, &got).ok() && got.kvs_size() == 1;
      },
      absl::Seconds(10)));
  // Its raft index reaches the leader's.
  auto leader_status = c.Status(*leader);
  ASSERT_TRUE(leader_status.ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = c.Status(follower);
        return s.ok() && s->raftappliedindex() >= leader_status->raftindex();
      },
      absl::Seconds(10)));
}

TEST_F(FailoverTest, WholeClusterKilledAndRestartedKeepsAcknowledgedData) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  WriteKeys(c, "durable/", 200);
  ASSERT_FALSE(HasFailure());
  for (int i = 0; i < c.size(); ++i) c.Kill(i);
  for (int i = 0; i < c.size(); ++i) ASSERT_TRUE(c.Spawn(i).ok());
  for (int i = 0; i < c.size(); ++i) {
    absl::Status s = c.WaitServing(i, absl::Seconds(15));
    ASSERT_TRUE(s.ok()) << s;
  }
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  ExpectAllKeysEverywhere(c, "durable/", 200);
  EXPECT_TRUE(c.PutWithRetry(0, "durable-after", "x").ok());
}

TEST_F(FailoverTest, GracefulStopOfLeaderHandsOverLeadership) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  WriteKeys(c, "graceful/", 20);
  auto before = c.Status(*leader);
  ASSERT_TRUE(before.ok());

  // Leadership must move while the old leader is still shutting down, not after it
  // is gone and an election timeout has passed.
  const absl::Time stop_started = absl::Now();
  c.Signal(*leader, SIGTERM);
  auto new_leader = c.WaitForLeader(absl::Seconds(10), /*exclude=*/*leader);
  const absl::Duration handover = absl::Now() - stop_started;
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  const std::optional<int> exit_code = c.WaitExited(*leader, absl::Seconds(10));
  const absl::Duration stop_took = absl::Now() - stop_started;
  EXPECT_EQ(exit_code, 0) << c.LogTail(*leader);
  std::fprintf(stderr, "SIGTERM -> new leader agreed after %.0f ms, exit after %.0f ms\n",
               absl::ToDoubleMilliseconds(handover), absl::ToDoubleMilliseconds(stop_took));
  EXPECT_NE(*new_leader, *leader);
  // A transfer makes the target campaign at once (one term up); an election after a
  // timeout would take at least one election timeout (500 ms) after the exit and often
  // more than one term.
  auto after = c.Status(*new_leader);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->raftterm(), before->raftterm() + 1)
      << "expected leadership to be transferred (one term), not won in elections";
  EXPECT_LT(handover, absl::Seconds(2));

  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    grpc::Status s = c.Put(i, "graceful-after/" + c.member(i).name, "ok");
    EXPECT_TRUE(s.ok()) << c.member(i).name << ": " << s.error_message();
  }
  ExpectAllKeysEverywhere(c, "graceful/", 20);
}

}  // namespace
}  // namespace keel::integration
