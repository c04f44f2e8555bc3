// Maintenance with real keeld processes: the space quota and its NOSPACE alarm, the
// corruption check and its CORRUPT alarm,
// snapshot save -> restore into a new cluster, HashKV agreement across members, and
// the same through Debian's etcdctl (3.4).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

constexpr char kNoSpace[] = "etcdserver: mvcc: database space exceeded";

class MaintenanceTest : public ClusterTest {
 protected:
  CommandResult Keel(Cluster& c, int i, std::vector<std::string> args) {
    args.insert(args.begin(), {KEEL_CLI_PATH, "--endpoints=" + c.client_address(i),
                               "--command-timeout=10s", "--dial-timeout=5s"});
    return RunCommand(args, "", {}, absl::Seconds(60));
  }
  CommandResult Ctl(Cluster& c, int i, std::vector<std::string> args) {
    args.insert(args.begin(), {EtcdctlPath(), "--endpoints=" + c.client_address(i),
                               "--command-timeout=20s", "--dial-timeout=5s"});
    return RunCommand(args, "", {"ETCDCTL_API=3"}, absl::Seconds(60));
  }
  bool HaveEtcdctl() const { return !std::string(EtcdctlPath()).empty(); }
};

absl::StatusOr<etcdserverpb::AlarmResponse> Alarms(Cluster& c, int i) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(3));
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  etcdserverpb::AlarmResponse resp;
  grpc::Status s = c.Maintenance(i)->Alarm(&ctx, req, &resp);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp;
}

bool HasNoSpace(const etcdserverpb::AlarmResponse& r) {
  for (const auto& a : r.alarms()) {
    if (a.alarm() == etcdserverpb::NOSPACE) return true;
  }
  return false;
}

absl::StatusOr<etcdserverpb::HashKVResponse> HashKv(Cluster& c, int i, int64_t rev) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(10));
  etcdserverpb::HashKVRequest req;
  req.set_revision(rev);
  etcdserverpb::HashKVResponse resp;
  grpc::Status s = c.Maintenance(i)->HashKV(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return resp;
}

grpc::Status Txn(Cluster& c, int i, const etcdserverpb::TxnRequest& req) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(5));
  etcdserverpb::TxnResponse resp;
  return c.Kv(i)->Txn(&ctx, req, &resp);
}

int64_t AppliedRevision(Cluster& c, int i) {
  etcdserverpb::RangeResponse got;
  if (!c.Get(i, "any", /*serializable=*/true, &got).ok()) return -1;
  return got.header().revision();
}

// Fills the store past a 4 MiB quota; the cluster raises NOSPACE on every member and
// turns read-and-delete-only; deletes, compaction, defrag and a disarm bring writes back.
TEST_F(MaintenanceTest, QuotaRaisesNoSpaceOnEveryMemberUntilFreedAndDisarmed) {
  ClusterOptions options;
  // Not smaller: the live size counts RocksDB's memtables by the arena memory they hold,
  // which can pass 1 MiB after a single 100 KiB write (seen once in CI).
  constexpr int64_t kQuota = 4 << 20;
  options.extra_flags = {"--quota-backend-bytes", std::to_string(kQuota)};
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());

  const std::string value(100 * 1024, 'x');
  grpc::Status refused;
  int written = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::Status s = c.Put(*leader, KeyOf("big/", written), value);
        if (s.ok()) {
          ++written;
          return false;
        }
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
            s.error_message() == kNoSpace) {
          refused = s;
          return true;
        }
        return false;  // An election or a timeout: keep going.
      },
      absl::Seconds(60)))
      << "writes of " << written << " x 100 KiB were never refused";
  EXPECT_GE(written, 2);

  // Every member records the alarm (it went through raft) ...
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(WaitFor(
        [&] {
          auto a = Alarms(c, i);
          return a.ok() && HasNoSpace(*a);
        },
        absl::Seconds(15)))
        << "member " << i << " never listed NOSPACE";
  }
  // ... and refuses writes that need space, with etcd's code and text.
  for (int i = 0; i < c.size(); ++i) {
    grpc::Status s = c.Put(i, "one-more", "v");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << i;
    EXPECT_EQ(s.error_message(), kNoSpace) << i;
  }
  etcdserverpb::TxnRequest txn_put;
  txn_put.add_success()->mutable_request_put()->set_key("t");
  EXPECT_EQ(Txn(c, *leader, txn_put).error_message(), kNoSpace);
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    etcdserverpb::LeaseGrantRequest grant;
    grant.set_ttl(60);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status s =
        etcdserverpb::Lease::NewStub(c.member(*leader).channel)->LeaseGrant(&ctx, grant, &resp);
    EXPECT_EQ(s.error_message(), kNoSpace);
  }
  // Reads and read-only txns work.
  etcdserverpb::RangeResponse got;
  ASSERT_TRUE(c.Get(*leader, KeyOf("big/", 0), false, &got).ok());
  EXPECT_EQ(got.kvs_size(), 1);
  etcdserverpb::TxnRequest txn_read;
  txn_read.add_success()->mutable_request_range()->set_key("t");
  EXPECT_TRUE(Txn(c, *leader, txn_read).ok());

  // The alarm survives a restart (it is in the replicated state).
  const int follower = (*leader + 1) % c.size();
  EXPECT_EQ(c.Stop(follower), 0);
  absl::Status restarted = c.Restart(follower);
  ASSERT_TRUE(restarted.ok()) << restarted;
  {
    auto a = Alarms(c, follower);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(HasNoSpace(*a));
  }
  if (HaveEtcdctl()) {
    CommandResult list = Ctl(c, *leader, {"alarm", "list"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_TRUE(absl::StrContains(list.out, "alarm:NOSPACE")) << list.out;
    // Still over the quota: a disarm is answered, and the alarm comes back.
    CommandResult early = Ctl(c, *leader, {"alarm", "disarm"});
    EXPECT_EQ(early.exit_code, 0) << early.err;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto a = Alarms(c, *leader);
          return a.ok() && HasNoSpace(*a);
        },
        absl::Seconds(10)))
        << "NOSPACE was not raised again while over the quota";
  }

  // Free the space: delete, compact, defrag.
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    etcdserverpb::DeleteRangeRequest del;
    del.set_key("big/");
    del.set_range_end("big0");
    etcdserverpb::DeleteRangeResponse resp;
    ASSERT_TRUE(c.Kv(*leader)->DeleteRange(&ctx, del, &resp).ok());
    EXPECT_EQ(resp.deleted(), written);
    grpc::ClientContext cctx;
    SetDeadline(&cctx, absl::Seconds(10));
    etcdserverpb::CompactionRequest compact;
    compact.set_revision(resp.header().revision());
    etcdserverpb::CompactionResponse cresp;
    ASSERT_TRUE(c.Kv(*leader)->Compact(&cctx, compact, &cresp).ok());
  }
  for (int i = 0; i < c.size(); ++i) {
    CommandResult defrag = Keel(c, i, {"defrag"});
    EXPECT_EQ(defrag.exit_code, 0) << defrag.err;
    EXPECT_EQ(defrag.out, "Finished defragmenting etcd member[" + c.client_address(i) + "]\n");
  }
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(WaitFor(
        [&] {
          auto st = c.Status(i);
          return st.ok() && st->dbsizeinuse() < kQuota;
        },
        absl::Seconds(20)))
        << "member " << i << " still over the quota after delete+compact+defrag";
  }
  CommandResult disarm = Keel(c, *leader, {"alarm", "disarm"});
  EXPECT_EQ(disarm.exit_code, 0) << disarm.err;
  EXPECT_TRUE(absl::StrContains(disarm.out, "alarm:NOSPACE")) << disarm.out;
  // Writes come back on every member (the quota check refreshes within a second).
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(WaitFor([&] { return c.Put(i, "after", "ok").ok(); }, absl::Seconds(15)))
        << "member " << i << " still refuses writes";
  }
  CommandResult list = Keel(c, *leader, {"alarm", "list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_EQ(list.out, "");
}

bool HasCorrupt(const etcdserverpb::AlarmResponse& r, uint64_t member) {
  for (const auto& a : r.alarms()) {
    if (a.alarm() == etcdserverpb::CORRUPT && (member == 0 || a.memberid() == member)) return true;
  }
  return false;
}

// keeld built with the test-only switches (the default preset; not a benchmark build).
bool KeeldHasFailpoints() {
  CommandResult help = RunCommand({KeeldPath(), "--help"}, "", {}, absl::Seconds(10));
  return absl::StrContains(help.out, "--UNSAFE-bug");
}

// A member whose data diverged (--UNSAFE-bug diverge-state: it stores every put's value
// with a byte changed) is found by the leader's corruption check: a CORRUPT alarm names
// it, every member then refuses reads and writes with etcd's "corrupt cluster"
// (DATA_LOSS), and etcdctl and keel list the alarm.
TEST_F(MaintenanceTest, CorruptionCheckRaisesCorruptForADivergedMember) {
  if (!KeeldHasFailpoints()) GTEST_SKIP() << "keeld built without test switches";
  constexpr int kDiverged = 2;
  ClusterOptions options;
  options.extra_flags = {"--corrupt-check-time", "300ms"};
  options.member_flags = [](int i) {
    return i == kDiverged ? std::vector<std::string>{"--UNSAFE-bug", "diverge-state"}
                          : std::vector<std::string>{};
  };
  Cluster& c = StartCluster(options);
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  if (*leader == kDiverged) {  // The check runs on the leader: let a healthy member lead.
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    etcdserverpb::MoveLeaderRequest move;
    move.set_targetid(c.Status((kDiverged + 1) % 3)->header().member_id());
    etcdserverpb::MoveLeaderResponse moved;
    ASSERT_TRUE(c.Maintenance(kDiverged)->MoveLeader(&ctx, move, &moved).ok());
    leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok());
  }
  const uint64_t diverged_id = c.Status(kDiverged)->header().member_id();
  ASSERT_TRUE(c.PutWithRetry(*leader, "k", "value").ok());

  ASSERT_TRUE(WaitFor(
      [&] {
        auto a = Alarms(c, *leader);
        return a.ok() && HasCorrupt(*a, diverged_id);
      },
      absl::Seconds(30)))
      << "no CORRUPT alarm for the diverged member";
  auto alarms = Alarms(c, *leader);
  ASSERT_TRUE(alarms.ok());
  for (const auto& a : alarms->alarms()) {
    EXPECT_EQ(a.memberid(), diverged_id) << "only the diverged member is named";
  }
  for (int i = 0; i < c.size(); ++i) {
    // Every member has applied the alarm once it refuses a write (the refusal is decided
    // in the replicated state); then reads are refused too.
    ASSERT_TRUE(WaitFor(
        [&] {
          grpc::Status put = c.Put(i, "after", "x");
          return put.error_code() == grpc::StatusCode::DATA_LOSS &&
                 put.error_message() == "etcdserver: corrupt cluster";
        },
        absl::Seconds(15)))
        << "member " << i << " still takes writes";
    for (bool serializable : {true, false}) {
      etcdserverpb::RangeResponse got;
      grpc::Status read = c.Get(i, "k", serializable, &got);
      EXPECT_EQ(read.error_code(), grpc::StatusCode::DATA_LOSS) << "member " << i;
      EXPECT_EQ(read.error_message(), "etcdserver: corrupt cluster");
    }
  }
  CommandResult list = Keel(c, *leader, {"alarm", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, "alarm:CORRUPT")) << list.out;
  if (HaveEtcdctl()) {
    CommandResult ctl = Ctl(c, *leader, {"alarm", "list"});
    EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
    EXPECT_TRUE(absl::StrContains(ctl.out, "alarm:CORRUPT")) << ctl.out;
  }
}

// With the check on, a healthy cluster under writes and a compaction raises no
// alarm (members compare hashes only at the same revision and compaction point).
TEST_F(MaintenanceTest, CorruptionCheckFindsNothingOnAHealthyCluster) {
  ClusterOptions options;
  options.extra_flags = {"--corrupt-check-time", "200ms"};
  Cluster& c = StartCluster(options);
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const absl::Time end = absl::Now() + absl::Seconds(4);
  int i = 0;
  int64_t compact_at = 0;
  while (absl::Now() < end) {
    const int member = i % c.size();
    ASSERT_TRUE(c.PutWithRetry(member, absl::StrCat("h", i % 50), absl::StrCat(i)).ok());
    if (i % 7 == 0) (void)c.Put(member, absl::StrCat("h", (i + 3) % 50), "");
    if (++i == 200) compact_at = AppliedRevision(c, *leader);
    if (i == 201 && compact_at > 0) {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, absl::Seconds(5));
      etcdserverpb::CompactionRequest compact;
      compact.set_revision(compact_at);
      etcdserverpb::CompactionResponse resp;
      ASSERT_TRUE(c.Kv(*leader)->Compact(&ctx, compact, &resp).ok());
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // Rounds after the last write.
  for (int m = 0; m < c.size(); ++m) {
    auto a = Alarms(c, m);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->alarms_size(), 0) << "member " << m << ": " << a->ShortDebugString();
  }
  EXPECT_GT(i, 200) << "too few writes to have compacted";
}

// HashKV at a revision every member has applied is the same on all of them, while a
// writer keeps going and after a compaction; `keel endpoint hashkv` and etcdctl agree.
TEST_F(MaintenanceTest, HashKvIsEqualOnEveryMemberForTheSameRevision) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(c.PutWithRetry(*leader, KeyOf("h/", i % 50), ValueOf(i)).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (c.Put(*leader, KeyOf("w/", i % 100), ValueOf(i)).ok()) ++writes;
    }
  });
  auto compare_at = [&](int64_t rev) {
    // Wait until every member applied `rev`, then hash it everywhere.
    for (int i = 0; i < c.size(); ++i) {
      ASSERT_TRUE(WaitFor([&] { return AppliedRevision(c, i) >= rev; }, absl::Seconds(15)));
    }
    std::vector<etcdserverpb::HashKVResponse> hashes;
    for (int i = 0; i < c.size(); ++i) {
      auto h = HashKv(c, i, rev);
      ASSERT_TRUE(h.ok()) << h.status();
      hashes.push_back(*h);
    }
    for (int i = 1; i < c.size(); ++i) {
      EXPECT_EQ(hashes[i].hash(), hashes[0].hash()) << "member " << i << " at " << rev;
      EXPECT_EQ(hashes[i].compact_revision(), hashes[0].compact_revision());
      EXPECT_EQ(hashes[i].hash_revision(), rev);
    }
  };
  const int64_t r1 = AppliedRevision(c, *leader);
  compare_at(r1);
  ASSERT_TRUE(WaitFor([&] { return writes.load() > 100; }, absl::Seconds(30)));
  const int64_t r2 = AppliedRevision(c, *leader);
  compare_at(r2);
  {
    auto a = HashKv(c, *leader, r1);
    auto b = HashKv(c, *leader, r2);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->hash(), b->hash()) << "writes between the revisions must change the hash";
  }
  // Compact in the middle of the writes; hashes above the compaction point still agree.
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    etcdserverpb::CompactionRequest compact;
    compact.set_revision(r2);
    etcdserverpb::CompactionResponse resp;
    ASSERT_TRUE(c.Kv(*leader)->Compact(&ctx, compact, &resp).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return writes.load() > 200; }, absl::Seconds(30)));
  const int64_t r3 = AppliedRevision(c, *leader);
  compare_at(r3);
  auto below = HashKv(c, *leader, r1);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kOutOfRange) << below.status();
  stop = true;
  writer.join();

  CommandResult keel = Keel(c, *leader, {"endpoint", "hashkv", "--rev", absl::StrCat(r3)});
  ASSERT_EQ(keel.exit_code, 0) << keel.err;
  std::vector<std::string> lines = absl::StrSplit(keel.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << keel.out;
  const std::string expected_hash = absl::StrCat(HashKv(c, *leader, r3)->hash());
  for (const std::string& line : lines) {
    EXPECT_TRUE(absl::EndsWith(line, ", " + expected_hash)) << keel.out;
  }
  if (HaveEtcdctl()) {
    CommandResult ctl =
        Ctl(c, *leader, {"endpoint", "hashkv", "--cluster", "--rev", absl::StrCat(r3)});
    ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
    std::vector<std::string> ctl_lines = absl::StrSplit(ctl.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(ctl_lines.size(), 3u) << ctl.out;
    for (const std::string& line : ctl_lines) {
      EXPECT_TRUE(absl::EndsWith(line, ", " + expected_hash)) << ctl.out;
    }
  }
}

// snapshot save -> status -> restore into three new data dirs -> a new 3-member
// cluster serves the same keys, values and revision, with a new cluster id.
TEST_F(MaintenanceTest, SnapshotRestoresIntoANewClusterWithTheSameDataAndRevision) {
  Cluster& a = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = a.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(a.PutWithRetry(*leader, KeyOf("s/", i % 120), ValueOf(i)).ok());
  }
  etcdserverpb::RangeResponse before;
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    etcdserverpb::RangeRequest all;
    all.set_key("s/");
    all.set_range_end("s0");
    ASSERT_TRUE(a.Kv(*leader)->Range(&ctx, all, &before).ok());
  }
  ASSERT_EQ(before.kvs_size(), 120);
  const int64_t revision = before.header().revision();
  const uint64_t old_cluster_id = before.header().cluster_id();
  auto old_hash = HashKv(a, *leader, revision);
  ASSERT_TRUE(old_hash.ok());

  const std::string dir = MakeTempDir("keel-snap-");
  const std::string file = dir + "/backup.keelsnap";
  CommandResult save = Keel(a, *leader, {"snapshot", "save", file});
  ASSERT_EQ(save.exit_code, 0) << save.err;
  EXPECT_EQ(save.out, "Snapshot saved at " + file + "\n");
  CommandResult status = Keel(a, *leader, {"snapshot", "status", file, "-w", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(
      absl::StrContains(status.out, absl::StrCat("\"hash\":", old_hash->hash(),
                                                 ",\"revision\":", revision, ",\"totalKey\":120,")))
      << status.out;
  if (HaveEtcdctl()) {
    const std::string ctl_file = dir + "/by-etcdctl.db";
    CommandResult ctl = Ctl(a, *leader, {"snapshot", "save", ctl_file});
    ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
    EXPECT_TRUE(absl::StrContains(ctl.out, "Snapshot saved at " + ctl_file)) << ctl.out;
    CommandResult st = Keel(a, *leader, {"snapshot", "status", ctl_file, "-w", "json"});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    EXPECT_TRUE(absl::StrContains(st.out, absl::StrCat("\"revision\":", revision))) << st.out;
  }
  // A damaged file is refused before anything is written.
  {
    std::string bytes = ReadFile(file);
    bytes[bytes.size() / 2] ^= 0x5a;
    const std::string bad = dir + "/bad.keelsnap";
    FILE* f = std::fopen(bad.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    CommandResult r =
        RunCommand({KEEL_CLI_PATH, "snapshot", "restore", bad, "--data-dir", dir + "/never"}, "",
                   {}, absl::Seconds(30));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(absl::StrContains(r.err, "checksum")) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/never"));
  }
  cluster_.reset();  // The old cluster is gone.

  ClusterOptions options;
  options.token = "keel-it-restored";
  auto b = std::make_unique<Cluster>(options);
  for (int i = 0; i < b->size(); ++i) {
    const std::string peer_url = absl::StrCat("http://127.0.0.1:", b->member(i).peer_port);
    CommandResult r = RunCommand(
        {KEEL_CLI_PATH, "snapshot", "restore", file, "--data-dir", b->member(i).data_dir, "--name",
         b->member(i).name, "--initial-cluster", b->initial_cluster(), "--initial-cluster-token",
         options.token, "--initial-advertise-peer-urls", peer_url},
        "", {}, absl::Seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("revision ", revision))) << r.out;
  }
  cluster_ = std::move(b);
  ASSERT_TRUE(cluster_->Start().ok());
  Cluster& c = *cluster_;
  auto new_leader = c.WaitForLeader();
  ASSERT_TRUE(new_leader.ok());
  for (int i = 0; i < c.size(); ++i) {
    etcdserverpb::RangeResponse after;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    etcdserverpb::RangeRequest all;
    all.set_key("s/");
    all.set_range_end("s0");
    ASSERT_TRUE(c.Kv(i)->Range(&ctx, all, &after).ok());
    EXPECT_EQ(after.header().revision(), revision) << i;
    EXPECT_NE(after.header().cluster_id(), old_cluster_id) << i;
    ASSERT_EQ(after.kvs_size(), before.kvs_size()) << i;
    for (int k = 0; k < after.kvs_size(); ++k) {
      EXPECT_EQ(after.kvs(k).SerializeAsString(), before.kvs(k).SerializeAsString()) << k;
    }
    auto h = HashKv(c, i, revision);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->hash(), old_hash->hash()) << i;
  }
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(c.Put(*new_leader, "new", "write", absl::Seconds(5), &put).ok());
  EXPECT_EQ(put.header().revision(), revision + 1);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// etcdctl 3.4's maintenance commands against keel.
TEST_F(MaintenanceTest, EtcdctlMaintenanceCommands) {
  if (!HaveEtcdctl()) GTEST_SKIP() << "etcdctl not installed";
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  ASSERT_TRUE(c.PutWithRetry(*leader, "k", "v").ok());

  CommandResult status = Ctl(c, *leader, {"endpoint", "status", "--cluster", "-w", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(absl::StrContains(status.out, "\"dbSize\":")) << status.out;
  EXPECT_TRUE(absl::StrContains(status.out, "\"dbSizeInUse\":")) << status.out;
  CommandResult health = Ctl(c, *leader, {"endpoint", "health", "--cluster"});
  EXPECT_EQ(health.exit_code, 0) << health.err << health.out;
  CommandResult hash = Ctl(c, *leader, {"endpoint", "hashkv", "--cluster"});
  EXPECT_EQ(hash.exit_code, 0) << hash.err;
  CommandResult alarms = Ctl(c, *leader, {"alarm", "list"});
  EXPECT_EQ(alarms.exit_code, 0) << alarms.err;
  EXPECT_EQ(alarms.out, "");
  CommandResult disarm = Ctl(c, *leader, {"alarm", "disarm"});
  EXPECT_EQ(disarm.exit_code, 0) << disarm.err;
  CommandResult defrag = Ctl(c, *leader, {"defrag", "--cluster"});
  EXPECT_EQ(defrag.exit_code, 0) << defrag.err;
  EXPECT_EQ(std::count(defrag.out.begin(), defrag.out.end(), '\n'), 3) << defrag.out;
  EXPECT_TRUE(absl::StrContains(defrag.out, "Finished defragmenting etcd member[")) << defrag.out;
}

}  // namespace
}  // namespace keel::integration
