// Leases on a real cluster: expiry decided by the leader deletes the attached keys on
// every member at one revision; keep-alives through any member (followers forward them
// to the leader); etcd's errors; and remaining TTLs that survive a leader change
// (server/lessor.h states the rule).
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

class LeaseTest : public ClusterTest {
 protected:
  std::unique_ptr<etcdserverpb::Lease::Stub> Lease(int i) {
    return etcdserverpb::Lease::NewStub(cluster_->member(i).channel);
  }

  grpc::Status Grant(int i, int64_t ttl_s, int64_t id, etcdserverpb::LeaseGrantResponse* resp) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl_s);
    req.set_id(id);
    return Lease(i)->LeaseGrant(&context, req, resp);
  }

  grpc::Status Revoke(int i, int64_t id) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    etcdserverpb::LeaseRevokeResponse resp;
    return Lease(i)->LeaseRevoke(&context, req, &resp);
  }

  grpc::Status TimeToLive(int i, int64_t id, bool keys, etcdserverpb::LeaseTimeToLiveResponse* resp,
                          absl::Duration timeout = absl::Seconds(5)) {
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(keys);
    return Lease(i)->LeaseTimeToLive(&context, req, resp);
  }

  grpc::Status PutWithLease(int i, const std::string& key, int64_t lease) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value("v");
    req.set_lease(lease);
    etcdserverpb::PutResponse resp;
    return cluster_->Kv(i)->Put(&context, req, &resp);
  }

  // One keep-alive on a fresh stream; the answered TTL.
  absl::StatusOr<int64_t> KeepAliveOnce(int i, int64_t id) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    auto stream = Lease(i)->LeaseKeepAlive(&context);
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    etcdserverpb::LeaseKeepAliveResponse resp;
    if (!stream->Write(req) || !stream->Read(&resp)) {
      stream->WritesDone();
      grpc::Status s = stream->Finish();
      return absl::UnavailableError(absl::StrCat("keep-alive stream: ", s.error_message()));
    }
    EXPECT_EQ(resp.id(), id);
    stream->WritesDone();
    (void)stream->Finish();
    return resp.ttl();
  }

  // Serializable: what member i itself has applied.
  bool HasKeyLocally(int i, const std::string& key) {
    etcdserverpb::RangeResponse got;
    grpc::Status s = cluster_->Get(i, key, /*serializable=*/true, &got);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return got.kvs_size() == 1;
  }

  int64_t LocalRevision(int i) {
    etcdserverpb::RangeResponse got;
    EXPECT_TRUE(cluster_->Get(i, "any", /*serializable=*/true, &got).ok());
    return got.header().revision();
  }
};

// Keeps lease `id` alive over one stream on member `member` every `every`, until
// stopped; counts answers and remembers the first failure.
class KeepAliveLoop {
 public:
  KeepAliveLoop(std::shared_ptr<grpc::Channel> channel, int64_t id, absl::Duration every)
      : thread_([this, channel, id, every] {
          auto stub = etcdserverpb::Lease::NewStub(channel);
          grpc::ClientContext context;
          auto stream = stub->LeaseKeepAlive(&context);
          etcdserverpb::LeaseKeepAliveRequest req;
          req.set_id(id);
          while (!stop_.load()) {
            etcdserverpb::LeaseKeepAliveResponse resp;
            if (!stream->Write(req) || !stream->Read(&resp)) {
              failure_ = "stream broke: " + stream->Finish().error_message();
              return;
            }
            if (resp.ttl() <= 0) {
              failure_ = absl::StrCat("keep-alive answered TTL ", resp.ttl());
              break;
            }
            answers_.fetch_add(1);
            const absl::Time next = absl::Now() + every;
            while (!stop_.load() && absl::Now() < next) absl::SleepFor(absl::Milliseconds(10));
          }
          stream->WritesDone();
          (void)stream->Finish();
        }) {}
  ~KeepAliveLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int answers() const { return answers_.load(); }
  // Read after Stop().
  const std::string& failure() const { return failure_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> answers_{0};
  std::string failure_;
  std::thread thread_;
};

TEST_F(LeaseTest, ExpiryDeletesAttachedKeysOnEveryMemberAtOneRevision) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % c.size();
  const int other = (*leader + 2) % c.size();

  // A lease granted through a follower, keys attached through every member.
  etcdserverpb::LeaseGrantResponse dying, kept;
  ASSERT_TRUE(Grant(follower, 2, 0, &dying).ok());
  const absl::Time granted_at = absl::Now();
  EXPECT_EQ(dying.ttl(), 2);
  EXPECT_NE(dying.id(), 0);
  ASSERT_TRUE(Grant(other, 2, 0, &kept).ok());
  EXPECT_NE(kept.id(), dying.id());
  for (int i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(PutWithLease(i, KeyOf("dying/", i), dying.id()).ok());
  }
  ASSERT_TRUE(PutWithLease(*leader, "kept", kept.id()).ok());
  ASSERT_TRUE(c.Put(follower, "plain", "no lease").ok());

  // The other lease is kept alive through a follower, which forwards to the leader.
  KeepAliveLoop keep(c.member(other).channel, kept.id(), absl::Milliseconds(500));

  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(TimeToLive(other, dying.id(), /*keys=*/true, &ttl).ok());
  EXPECT_EQ(ttl.grantedttl(), 2);
  EXPECT_LE(ttl.ttl(), 2);
  EXPECT_GE(ttl.ttl(), 0);
  ASSERT_EQ(ttl.keys_size(), 3);
  EXPECT_EQ(ttl.keys(0), KeyOf("dying/", 0));

  // Expiry: every member deletes every attached key, not before the TTL.
  bool gone_everywhere = WaitFor(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          for (int k = 0; k < c.size(); ++k) {
            if (HasKeyLocally(i, KeyOf("dying/", k))) return false;
          }
        }
        return true;
      },
      absl::Seconds(10));
  const absl::Duration lived = absl::Now() - granted_at;
  ASSERT_TRUE(gone_everywhere);
  EXPECT_GE(lived, absl::Milliseconds(1900)) << "expired before its TTL";
  EXPECT_LE(lived, absl::Seconds(5));
  // Every member at the same revision: the keys went in one revoke entry.
  ASSERT_TRUE(WaitFor(
      [&] {
        const int64_t r = LocalRevision(0);
        for (int i = 1; i < c.size(); ++i) {
          if (LocalRevision(i) != r) return false;
        }
        return true;
      },
      absl::Seconds(5)));
  {
    etcdserverpb::RangeResponse before;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::RangeRequest req;
    req.set_key("dying/");
    req.set_range_end("dying0");
    req.set_revision(LocalRevision(0) - 1);
    ASSERT_TRUE(c.Kv(follower)->Range(&context, req, &before).ok());
    EXPECT_EQ(before.count(), 3) << "all keys were deleted at the newest revision";
  }
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(HasKeyLocally(i, "kept")) << "member " << i;
    EXPECT_TRUE(HasKeyLocally(i, "plain")) << "member " << i;
  }
  ASSERT_TRUE(TimeToLive(follower, dying.id(), false, &ttl).ok());
  EXPECT_EQ(ttl.ttl(), -1);
  auto renewed = KeepAliveOnce(follower, dying.id());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, 0) << "a keep-alive of an expired lease answers TTL 0";

  {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::LeaseLeasesResponse list;
    ASSERT_TRUE(Lease(follower)->LeaseLeases(&context, {}, &list).ok());
    ASSERT_EQ(list.leases_size(), 1);
    EXPECT_EQ(list.leases(0).id(), kept.id());
  }
  keep.Stop();
  EXPECT_EQ(keep.failure(), "");
  EXPECT_GE(keep.answers(), 3);
}

TEST_F(LeaseTest, GrantRevokeAndEtcdErrors) {
  ClusterOptions options;
  options.election_timeout_ms = 1000;  // etcd's minimum TTL: 1.5 s -> 2 s.
  options.heartbeat_interval_ms = 100;
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % c.size();

  etcdserverpb::LeaseGrantResponse g;
  ASSERT_TRUE(Grant(follower, 1, 0x1234, &g).ok());
  EXPECT_EQ(g.id(), 0x1234) << "a client-chosen id";
  EXPECT_EQ(g.ttl(), 2) << "raised to the minimum TTL";

  grpc::Status dup = Grant(*leader, 60, 0x1234, &g);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(dup.error_message(), "etcdserver: lease already exists");
  grpc::Status big = Grant(follower, 9'000'000'001, 0, &g);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(big.error_message(), "etcdserver: too large lease TTL");

  grpc::Status missing = Revoke(follower, 0x999);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_message(), "etcdserver: requested lease not found");
  grpc::Status put = PutWithLease(follower, "k", 0x999);
  EXPECT_EQ(put.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(put.error_message(), "etcdserver: requested lease not found");
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(TimeToLive(follower, 0x999, false, &ttl).ok());
  EXPECT_EQ(ttl.ttl(), -1);
  EXPECT_EQ(ttl.id(), 0x999);
  auto renewed = KeepAliveOnce(*leader, 0x999);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, 0);

  // Grant through a follower, then at once keep alive and ask the TTL through another:
  // the leader may not have applied the grant yet, and must not answer "not found".
  for (int round = 0; round < 5; ++round) {
    etcdserverpb::LeaseGrantResponse fresh;
    ASSERT_TRUE(Grant(follower, 30, 0, &fresh).ok());
    auto ka = KeepAliveOnce((follower + 1) % c.size(), fresh.id());
    ASSERT_TRUE(ka.ok()) << ka.status();
    EXPECT_EQ(*ka, 30);
    ASSERT_TRUE(TimeToLive((follower + 2) % c.size(), fresh.id(), false, &ttl).ok());
    EXPECT_GE(ttl.ttl(), 29);
    EXPECT_EQ(ttl.grantedttl(), 30);
  }

  // Revoke deletes the attached keys at once, through any member.
  ASSERT_TRUE(PutWithLease(*leader, "attached", 0x1234).ok());
  ASSERT_TRUE(Revoke(follower, 0x1234).ok());
  etcdserverpb::RangeResponse got;
  ASSERT_TRUE(c.Get(*leader, "attached", false, &got).ok());
  EXPECT_EQ(got.kvs_size(), 0);
}

TEST_F(LeaseTest, RemainingTtlSurvivesLeaderChange) {
  ClusterOptions options;
  options.election_timeout_ms = 1000;
  options.heartbeat_interval_ms = 100;
  options.extra_flags = {"--lease-checkpoint-interval", "500"};
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int survivor = (*leader + 1) % c.size();
  const absl::Duration election_timeout = absl::Milliseconds(options.election_timeout_ms);

  constexpr int64_t kTtlS = 15;
  etcdserverpb::LeaseGrantResponse g, kept;
  ASSERT_TRUE(Grant(*leader, kTtlS, 0, &g).ok());
  ASSERT_TRUE(PutWithLease(*leader, "owned", g.id()).ok());
  // A second, short lease kept alive through a surviving member across the failover.
  ASSERT_TRUE(Grant(survivor, 3, 0, &kept).ok());
  ASSERT_TRUE(PutWithLease(survivor, "kept", kept.id()).ok());
  KeepAliveLoop keep(c.member(survivor).channel, kept.id(), absl::Milliseconds(500));

  // Let about half the TTL run down (checkpoints are taken every 500 ms meanwhile).
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(
      WaitFor([&] { return TimeToLive(*leader, g.id(), false, &ttl).ok() && ttl.ttl() <= 8; },
              absl::Seconds(15)));
  const int64_t before_s = ttl.ttl();  // Truncated: the old deadline D < before_at + before_s + 1.
  const absl::Time before_at = absl::Now();

  c.Kill(*leader);
  auto next = c.WaitForLeader(absl::Seconds(15));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(
      WaitFor([&] { return TimeToLive(*next, g.id(), false, &ttl).ok(); }, absl::Seconds(10)));
  const absl::Time after_at = absl::Now();  // The new leader took office before this.
  const double elapsed_s = absl::ToDoubleSeconds(after_at - before_at);
  // Never earlier than the old leader's deadline (whole seconds truncated).
  EXPECT_GE(static_cast<double>(ttl.ttl()), static_cast<double>(before_s) - elapsed_s - 1)
      << "the new leader expires the lease earlier than the old one would have";
  // No later than the rule: the last checkpoint (taken at most one interval + commit
  // before the kill, rounded up) + one election timeout, counted from taking office.
  const double checkpoint_age_s = 0.5 + 1.5;  // Interval + commit on a busy machine.
  const double rule_max_s = static_cast<double>(before_s) + 1 + checkpoint_age_s + 1 +
                            absl::ToDoubleSeconds(election_timeout);
  EXPECT_LE(static_cast<double>(ttl.ttl()), rule_max_s)
      << "restarted near the full TTL (" << kTtlS << " s) instead of the checkpoint; before "
      << before_s << " s, " << elapsed_s << " s ago";
  EXPECT_EQ(ttl.grantedttl(), kTtlS);

  // The lease then expires by what the new leader said, with its key, on every member.
  const absl::Time latest = after_at + absl::Seconds(ttl.ttl() + 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          if (c.running(i) && HasKeyLocally(i, "owned")) return false;
        }
        return true;
      },
      absl::Seconds(30)));
  EXPECT_LE(absl::Now(), latest + absl::Milliseconds(500));

  // The kept lease lived through it all.
  keep.Stop();
  EXPECT_EQ(keep.failure(), "");
  for (int i = 0; i < c.size(); ++i) {
    if (c.running(i)) {
      EXPECT_TRUE(HasKeyLocally(i, "kept")) << "member " << i;
    }
  }
}

}  // namespace
}  // namespace keel::integration
