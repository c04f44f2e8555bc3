// keel::Client's Lease calls against a real cluster: grant / keep-alive / time-to-live /
// list / revoke, the background LeaseKeeper (keeps a short lease alive, reports a lost
// one), and a kept lease that survives a leader kill.
#include <atomic>

#include "absl/synchronization/notification.h"
#include "keel/client.h"
#include "tests/integration/client_test_util.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using ClientLeaseTest = ClusterTest;

bool KeyExists(Client& client, const std::string& key) {
  absl::StatusOr<RangeResponse> got = client.Get(key);
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() && got->kvs_size() == 1;
}

TEST_F(ClientLeaseTest, GrantKeepAliveTimeToLiveListRevoke) {
  Cluster& c = StartCluster({});
  ASSERT_FALSE(HasFailure());
  auto connected = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client& client = **connected;

  absl::StatusOr<LeaseGrantResponse> granted = client.LeaseGrant(30);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->ttl(), 30);
  const int64_t id = granted->id();
  LeaseGrantOptions chosen;
  chosen.id = 0x77;
  ASSERT_TRUE(client.LeaseGrant(60, chosen).ok());
  absl::StatusOr<LeaseGrantResponse> again = client.LeaseGrant(60, chosen);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.status().message(), "etcdserver: lease already exists");

  PutOptions leased;
  leased.lease = id;
  ASSERT_TRUE(client.Put("lease/a", "1", leased).ok());
  absl::StatusOr<LeaseKeepAliveResponse> renewed = client.LeaseKeepAliveOnce(id);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->id(), id);
  EXPECT_EQ(renewed->ttl(), 30);
  absl::StatusOr<LeaseTimeToLiveResponse> ttl = client.LeaseTimeToLive(id, /*keys=*/true);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(ttl->grantedttl(), 30);
  EXPECT_GE(ttl->ttl(), 28);
  ASSERT_EQ(ttl->keys_size(), 1);
  EXPECT_EQ(ttl->keys(0), "lease/a");
  absl::StatusOr<LeaseLeasesResponse> list = client.LeaseLeases();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->leases_size(), 2);

  // Async form.
  absl::Notification revoked;
  absl::Status revoke_status;
  client.LeaseRevokeAsync(id, {}, [&](absl::StatusOr<LeaseRevokeResponse> r) {
    revoke_status = r.status();
    revoked.Notify();
  });
  revoked.WaitForNotification();
  ASSERT_TRUE(revoke_status.ok()) << revoke_status;
  EXPECT_FALSE(KeyExists(client, "lease/a"));
  ttl = client.LeaseTimeToLive(id);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->ttl(), -1);
  renewed = client.LeaseKeepAliveOnce(id);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->ttl(), 0);
  absl::StatusOr<LeaseRevokeResponse> twice = client.LeaseRevoke(id);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::unique_ptr<LeaseKeeper>> dead = client.LeaseKeepAlive(id);
  EXPECT_EQ(dead.status().code(), absl::StatusCode::kNotFound) << dead.status();
}

TEST_F(ClientLeaseTest, KeeperKeepsAShortLeaseAliveAndReportsItsLoss) {
  Cluster& c = StartCluster({});
  ASSERT_FALSE(HasFailure());
  auto connected = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client& client = **connected;

  absl::StatusOr<LeaseGrantResponse> granted = client.LeaseGrant(2);
  ASSERT_TRUE(granted.ok()) << granted.status();
  PutOptions leased;
  leased.lease = granted->id();
  ASSERT_TRUE(client.Put("kept", "v", leased).ok());
  std::atomic<int> lost_calls{0};
  absl::Status lost_status;
  absl::Notification lost;
  auto keeper = client.LeaseKeepAlive(granted->id(), [&](absl::Status s) {
    lost_status = s;
    lost_calls.fetch_add(1);
    lost.Notify();
  });
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  // Three TTLs pass; the keeper renews every TTL/3.
  const absl::Time until = absl::Now() + absl::Seconds(6);
  ASSERT_FALSE(WaitFor([&] { return !KeyExists(client, "kept"); }, until - absl::Now()))
      << "the key of a kept lease expired";
  EXPECT_TRUE((*keeper)->status().ok()) << (*keeper)->status();
  EXPECT_GE((*keeper)->renewals(), 5);
  EXPECT_GT((*keeper)->deadline(), absl::Now());

  // Revoked behind its back: the keeper notices and reports it once.
  ASSERT_TRUE(client.LeaseRevoke(granted->id()).ok());
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(lost_status.code(), absl::StatusCode::kNotFound) << lost_status;
  EXPECT_EQ((*keeper)->status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(lost_calls.load(), 1);

  // A dropped keeper stops renewing: the lease expires after its TTL.
  absl::StatusOr<LeaseGrantResponse> second = client.LeaseGrant(2);
  ASSERT_TRUE(second.ok());
  leased.lease = second->id();
  ASSERT_TRUE(client.Put("dropped", "v", leased).ok());
  {
    auto short_lived = client.LeaseKeepAlive(second->id());
    ASSERT_TRUE(short_lived.ok());
  }
  EXPECT_TRUE(WaitFor([&] { return !KeyExists(client, "dropped"); }, absl::Seconds(6)));
}

TEST_F(ClientLeaseTest, KeptLeaseSurvivesLeaderKill) {
  Cluster& c = StartCluster({});
  ASSERT_FALSE(HasFailure());
  auto connected = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client& client = **connected;

  absl::StatusOr<LeaseGrantResponse> granted = client.LeaseGrant(3);
  ASSERT_TRUE(granted.ok()) << granted.status();
  PutOptions leased;
  leased.lease = granted->id();
  ASSERT_TRUE(client.Put("survivor", "v", leased).ok());
  auto keeper = client.LeaseKeepAlive(granted->id());
  ASSERT_TRUE(keeper.ok()) << keeper.status();

  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  c.Kill(*leader);
  ASSERT_TRUE(c.WaitForLeader(absl::Seconds(15)).ok());
  const int64_t renewals_at_kill = (*keeper)->renewals();
  // Well past the TTL on the new leader: still alive, and renewed there.
  ASSERT_TRUE(
      WaitFor([&] { return (*keeper)->renewals() >= renewals_at_kill + 6; }, absl::Seconds(15)));
  EXPECT_TRUE((*keeper)->status().ok()) << (*keeper)->status();
  EXPECT_TRUE(KeyExists(client, "survivor"));
}

}  // namespace
}  // namespace keel::integration
