// Membership changes with real keeld processes: a 3-member cluster grows to 5 (a
// learner added, started with --initial-cluster-state existing, promoted; a voter
// added) and shrinks back to 3 (the leader removed among others) under a steady write
// load, and every acknowledged write is readable at the end. MoveLeader, a removed
// member's restart, and etcd's errors for changes that must be refused.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using MembershipTest = ClusterTest;

grpc::Status AddMember(Cluster& c, int via, const std::string& peer_url, bool learner,
                       etcdserverpb::MemberAddResponse* resp) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  etcdserverpb::MemberAddRequest req;
  req.add_peerurls(peer_url);
  req.set_islearner(learner);
  return c.ClusterApi(via)->MemberAdd(&context, req, resp);
}

grpc::Status RemoveMember(Cluster& c, int via, uint64_t id) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  etcdserverpb::MemberRemoveResponse resp;
  return c.ClusterApi(via)->MemberRemove(&context, req, &resp);
}

grpc::Status PromoteMember(Cluster& c, int via, uint64_t id) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(id);
  etcdserverpb::MemberPromoteResponse resp;
  return c.ClusterApi(via)->MemberPromote(&context, req, &resp);
}

grpc::Status MoveLeader(Cluster& c, int via, uint64_t target) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(target);
  etcdserverpb::MoveLeaderResponse resp;
  return c.Maintenance(via)->MoveLeader(&context, req, &resp);
}

absl::StatusOr<etcdserverpb::MemberListResponse> ListMembers(Cluster& c, int via) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  etcdserverpb::MemberListResponse resp;
  grpc::Status s =
      c.ClusterApi(via)->MemberList(&context, etcdserverpb::MemberListRequest(), &resp);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp;
}

uint64_t IdOf(Cluster& c, int i) {
  auto st = c.Status(i);
  return st.ok() ? st->header().member_id() : 0;
}

// Puts keys in sequence, each through the next member of `targets` (a set the test
// changes as members come and go); retries a key elsewhere until it is acknowledged.
class Writer {
 public:
  Writer(Cluster& c, std::vector<int> targets) : c_(c), targets_(std::move(targets)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }
  void SetTargets(std::vector<int> targets) {
    std::lock_guard<std::mutex> lock(mu_);
    targets_ = std::move(targets);
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int acked() const { return acked_.load(); }
  int failures() const { return failures_.load(); }

 private:
  void Run() {
    size_t turn = 0;
    while (!stop_) {
      int member;
      {
        std::lock_guard<std::mutex> lock(mu_);
        member = targets_[turn++ % targets_.size()];
      }
      const int key = acked_.load();
      grpc::Status s = c_.Put(member, KeyOf("load/", key), ValueOf(key), absl::Seconds(3));
      if (s.ok()) {
        ++acked_;
      } else {
        ++failures_;  // Retried on the next member: only acknowledged writes count.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  Cluster& c_;
  std::mutex mu_;
  std::vector<int> targets_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acked_{0};
  std::atomic<int> failures_{0};
  std::thread thread_;
};

// Every acknowledged key 0..count-1 with its value, read linearizably through `via`.
void ExpectAllKeys(Cluster& c, int via, int count) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  etcdserverpb::RangeRequest req;
  req.set_key("load/");
  req.set_range_end("load0");
  etcdserverpb::RangeResponse got;
  grpc::Status s = c.Kv(via)->Range(&context, req, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GE(got.kvs_size(), count);
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(got.kvs(i).key(), KeyOf("load/", i));
    ASSERT_EQ(got.kvs(i).value(), ValueOf(i));
  }
}

bool IsLearnerIn(const etcdserverpb::MemberListResponse& list, uint64_t id) {
  for (const auto& m : list.members()) {
    if (m.id() == id) return m.islearner();
  }
  return false;
}

// Adds member `i` (already AddMember()ed in the harness) through `via`, starts it, and
// returns its id; as a learner it is promoted once it caught up.
uint64_t GrowBy(Cluster& c, int via, int i, bool learner) {
  etcdserverpb::MemberAddResponse added;
  grpc::Status s = AddMember(c, via, c.peer_url(i), learner, &added);
  EXPECT_TRUE(s.ok()) << s.error_message();
  if (!s.ok()) return 0;
  EXPECT_EQ(added.member().islearner(), learner);
  EXPECT_EQ(added.member().peerurls(0), c.peer_url(i));
  EXPECT_GE(added.members_size(), 4);
  const uint64_t id = added.member().id();
  absl::Status started = c.Spawn(i);
  if (started.ok()) started = c.WaitServing(i, absl::Seconds(20));
  EXPECT_TRUE(started.ok()) << started;
  EXPECT_EQ(IdOf(c, i), id);
  if (learner) {
    // Refused (etcd's text) until it caught up; then accepted.
    grpc::Status promoted;
    EXPECT_TRUE(WaitFor(
        [&] {
          promoted = PromoteMember(c, via, id);
          if (!promoted.ok()) {
            EXPECT_EQ(promoted.error_message(),
                      "etcdserver: can only promote a learner member which is in sync with "
                      "leader");
          }
          return promoted.ok();
        },
        absl::Seconds(30)))
        << promoted.error_message();
    EXPECT_TRUE(WaitFor(  // `via` may apply the promotion after the leader answered.
        [&] {
          auto list = ListMembers(c, via);
          return list.ok() && !IsLearnerIn(*list, id);
        },
        absl::Seconds(10)));
  }
  return id;
}

TEST_F(MembershipTest, GrowsToFiveAndShrinksToThreeUnderWritesWithoutLosingAckedWrites) {
  // Frequent snapshots and a short log: the new members catch up from a snapshot, which
  // must carry the membership.
  ClusterOptions options;
  options.extra_flags = {"--snapshot-count", "200", "--snapshot-catchup-entries", "20"};
  Cluster& c = StartCluster(options);
  Writer writer(c, {0, 1, 2});
  ASSERT_TRUE(WaitFor([&] { return writer.acked() > 300; }, absl::Seconds(60)));

  // 3 -> 4: a learner, started with --initial-cluster-state existing, then promoted.
  const int n4 = c.AddMember();
  const uint64_t id4 = GrowBy(c, 1, n4, /*learner=*/true);
  ASSERT_NE(id4, 0u);
  writer.SetTargets({0, 1, 2, n4});
  // 4 -> 5: a voter straight away.
  const int n5 = c.AddMember();
  const uint64_t id5 = GrowBy(c, n4, n5, /*learner=*/false);
  ASSERT_NE(id5, 0u);
  writer.SetTargets({0, 1, 2, n4, n5});
  auto list = ListMembers(c, 0);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->members_size(), 5);
  for (const auto& m : list->members()) EXPECT_FALSE(m.islearner());
  // The new members learn their names once they connect.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto l = ListMembers(c, 0);
        if (!l.ok()) return false;
        for (const auto& m : l->members()) {
          if (m.name().empty() || m.clienturls().empty()) return false;
        }
        return true;
      },
      absl::Seconds(10)));
  const int before_shrink = writer.acked();
  ASSERT_TRUE(WaitFor([&] { return writer.acked() > before_shrink + 20; }, absl::Seconds(20)));

  // 5 -> 4: remove the leader. It hands over, then stops by itself.
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int old_leader = *leader;
  std::vector<int> rest;
  for (int i : {0, 1, 2, n4, n5}) {
    if (i != old_leader) rest.push_back(i);
  }
  writer.SetTargets(rest);
  grpc::Status s = RemoveMember(c, rest[0], IdOf(c, old_leader));
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto exited = c.WaitExited(old_leader, absl::Seconds(20));
  ASSERT_TRUE(exited.has_value()) << "the removed leader did not stop";
  EXPECT_EQ(*exited, 0);
  EXPECT_NE(c.Log(old_leader).find("was removed from the cluster"), std::string::npos);
  auto new_leader = c.WaitForLeader();
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();

  // 4 -> 3: remove a follower.
  const int follower = rest[0] == *new_leader ? rest[1] : rest[0];
  std::vector<int> last;
  for (int i : rest) {
    if (i != follower) last.push_back(i);
  }
  writer.SetTargets(last);
  s = RemoveMember(c, follower, IdOf(c, follower));  // Through the member itself.
  ASSERT_TRUE(s.ok()) << s.error_message();
  exited = c.WaitExited(follower, absl::Seconds(20));
  ASSERT_TRUE(exited.has_value()) << "the removed follower did not stop";

  const int before_end = writer.acked();
  ASSERT_TRUE(WaitFor([&] { return writer.acked() > before_end + 20; }, absl::Seconds(20)));
  writer.Stop();
  list = ListMembers(c, last[0]);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->members_size(), 3);
  for (int i : last) ExpectAllKeys(c, i, writer.acked());
  std::fprintf(stderr, "membership: %d writes acknowledged, %d attempts failed and retried\n",
               writer.acked(), writer.failures());
}

TEST_F(MembershipTest, MoveLeaderMovesItAndRefusesNonVoters) {
  Cluster& c = StartCluster(ClusterOptions());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int target = (*leader + 1) % 3;
  const int other = (*leader + 2) % 3;
  // Only the leader moves it (etcd's text elsewhere).
  grpc::Status s = MoveLeader(c, other, IdOf(c, target));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "etcdserver: not leader");
  s = MoveLeader(c, *leader, 12345);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "etcdserver: bad leader transferee");
  s = MoveLeader(c, *leader, IdOf(c, target));
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto moved = c.WaitForLeader();
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, target);
  ASSERT_TRUE(c.PutWithRetry(target, "after-move", "v").ok());
}

// A change made through a follower is in that follower's member list as soon as the
// call returns (the follower answers once it applied the change, as etcd's members do),
// so `member add` then `member list` on one endpoint lists the new member.
TEST_F(MembershipTest, ChangeThroughFollowerIsInItsMemberListAtOnce) {
  Cluster& c = StartCluster(ClusterOptions());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % 3;
  auto listed = [&](uint64_t id) {
    auto list = ListMembers(c, follower);
    if (!list.ok()) return false;
    return std::any_of(list->members().begin(), list->members().end(),
                       [&](const etcdserverpb::Member& m) { return m.id() == id; });
  };
  for (int i = 0; i < 5; ++i) {  // A lagging apply showed up in about one try in three.
    etcdserverpb::MemberAddResponse added;
    grpc::Status s = AddMember(c, follower, absl::StrCat("http://127.0.0.1:", 1 + i), true, &added);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(listed(added.member().id())) << "try " << i << ": added, not listed";
    s = RemoveMember(c, follower, added.member().id());
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_FALSE(listed(added.member().id())) << "try " << i << ": removed, still listed";
  }
}

// Raft takes one membership change at a time (and, right after an election, none until
// the new leader applied the entries of earlier terms). A change that arrives while
// another is not applied yet waits for it (within its deadline) instead of failing:
// two adds sent at the same moment both succeed, one after the other.
TEST_F(MembershipTest, ConcurrentChangesWaitForEachOtherInsteadOfFailing) {
  Cluster& c = StartCluster(ClusterOptions());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  for (int round = 0; round < 3; ++round) {
    // Two unstarted voters: 3 of 5 started is still a quorum (etcd's rule).
    etcdserverpb::MemberAddResponse added[2];
    grpc::Status status[2];
    std::thread other([&] {
      status[1] =
          AddMember(c, *leader, absl::StrCat("http://127.0.0.1:", 20 + round), false, &added[1]);
    });
    status[0] =
        AddMember(c, *leader, absl::StrCat("http://127.0.0.1:", 10 + round), false, &added[0]);
    other.join();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(status[i].ok()) << "round " << round << ", add " << i << ": "
                                  << status[i].error_message();
    }
    for (int i = 0; i < 2; ++i) {
      grpc::Status s = RemoveMember(c, *leader, added[i].member().id());
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
  }
}

TEST_F(MembershipTest, RefusesInvalidAndUnsafeChangesWithEtcdErrors) {
  Cluster& c = StartCluster(ClusterOptions());
  etcdserverpb::MemberAddResponse added;
  grpc::Status s = AddMember(c, 0, c.peer_url(1), false, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "etcdserver: Peer URLs already exists");
  s = AddMember(c, 1, "not a url", false, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: given member URLs are invalid");
  s = RemoveMember(c, 2, 42);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: member not found");
  s = PromoteMember(c, 0, IdOf(c, 1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "etcdserver: can only promote a learner member");

  // A learner that never starts: not promotable, and a second learner is one too many.
  const int n4 = c.AddMember();
  s = AddMember(c, 0, c.peer_url(n4), true, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const uint64_t learner = added.member().id();
  s = PromoteMember(c, 1, learner);
  EXPECT_EQ(s.error_message(),
            "etcdserver: can only promote a learner member which is in sync with leader");
  s = AddMember(c, 2, "http://127.0.0.1:1", true, &added);
  EXPECT_EQ(s.error_message(), "etcdserver: too many learner members in cluster");
  s = RemoveMember(c, 2, learner);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // One voter down: adding a voter or removing another would leave no started quorum.
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int down = (*leader + 1) % 3;
  const int up = (*leader + 2) % 3;
  const uint64_t up_id = IdOf(c, up);
  c.Kill(down);
  // The leader counts a voter as started while it heard from it within an election
  // timeout (500 ms here): let that window pass, then the changes are refused.
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return absl::Now() > killed + absl::Seconds(1); }, absl::Seconds(5)));
  const char* kNotEnough = "etcdserver: re-configuration failed due to not enough started members";
  s = AddMember(c, *leader, "http://127.0.0.1:2", false, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), kNotEnough);
  s = RemoveMember(c, *leader, up_id);
  EXPECT_EQ(s.error_message(), kNotEnough);
  auto list = ListMembers(c, *leader);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->members_size(), 3);

  // A member that was never added cannot join.
  const int stranger = c.AddMember();
  ASSERT_TRUE(c.Spawn(stranger).ok());
  auto code = c.WaitExited(stranger, absl::Seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(c.Log(stranger).find("has no member with this member's peer URLs"), std::string::npos)
      << c.LogTail(stranger);
}

TEST_F(MembershipTest, RemovedMemberStopsAndIsRefusedOnRestart) {
  Cluster& c = StartCluster(ClusterOptions());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int victim = (*leader + 1) % 3;
  grpc::Status s = RemoveMember(c, *leader, IdOf(c, victim));
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto exited = c.WaitExited(victim, absl::Seconds(20));
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(*exited, 0);
  // Its data says it was removed: a restart is refused with a clear line.
  ASSERT_TRUE(c.Spawn(victim).ok());
  exited = c.WaitExited(victim, absl::Seconds(20));
  ASSERT_TRUE(exited.has_value());
  EXPECT_NE(*exited, 0);
  EXPECT_NE(c.Log(victim).find("was removed from cluster"), std::string::npos) << c.LogTail(victim);
  // The two left commit on their own.
  ASSERT_TRUE(c.PutWithRetry(*leader, "after-remove", "v").ok());
  auto list = ListMembers(c, *leader);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->members_size(), 2);
}

// The keel CLI (on keel::Client): member add --learner, start as printed, promote
// (refused until in sync), move-leader to it, member remove.
TEST_F(MembershipTest, KeelCliAddsPromotesMovesLeaderAndRemoves) {
  Cluster& c = StartCluster(ClusterOptions());
  auto keel = [&](std::vector<std::string> args) {
    std::vector<std::string> endpoints;
    for (int i = 0; i < c.size(); ++i) {
      if (c.running(i)) endpoints.push_back(c.client_address(i));
    }
    args.insert(args.begin(), {KEEL_CLI_PATH, "--endpoints=" + absl::StrJoin(endpoints, ","),
                               "--command-timeout=10s"});
    return RunCommand(args, "", {}, absl::Seconds(40));
  };
  const int n4 = c.AddMember("placeholder");
  CommandResult added = keel({"member", "add", "n4", "--peer-urls=" + c.peer_url(n4), "--learner"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  ASSERT_TRUE(absl::StartsWith(added.out, "Member ")) << added.out;
  EXPECT_NE(added.out.find("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), std::string::npos);
  const size_t at = added.out.find("ETCD_INITIAL_CLUSTER=\"");
  ASSERT_NE(at, std::string::npos) << added.out;
  const size_t from = at + strlen("ETCD_INITIAL_CLUSTER=\"");
  const std::string initial_cluster = added.out.substr(from, added.out.find('"', from) - from);
  EXPECT_NE(initial_cluster.find("n4=" + c.peer_url(n4)), std::string::npos) << added.out;
  const std::string hex = added.out.substr(7, added.out.find(' ', 7) - 7);
  c.SetInitialCluster(n4, initial_cluster);
  ASSERT_TRUE(c.Spawn(n4).ok());
  ASSERT_TRUE(c.WaitServing(n4, absl::Seconds(20)).ok()) << c.LogTail(n4);
  CommandResult promoted;
  ASSERT_TRUE(WaitFor(
      [&] {
        promoted = keel({"member", "promote", hex});
        return promoted.exit_code == 0;
      },
      absl::Seconds(30)))
      << promoted.err;
  EXPECT_EQ(promoted.out.rfind("Member " + hex + " promoted in cluster ", 0), 0u) << promoted.out;
  CommandResult moved = keel({"move-leader", hex});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find("Leadership transferred from "), std::string::npos) << moved.out;
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  EXPECT_EQ(*leader, n4);
  CommandResult bad = keel({"member", "remove", "abc"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("member not found"), std::string::npos) << bad.err;
  CommandResult removed = keel({"member", "remove", hex});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(removed.out.rfind("Member " + hex + " removed from cluster ", 0), 0u) << removed.out;
  EXPECT_TRUE(c.WaitExited(n4, absl::Seconds(20)).has_value());
  CommandResult list = keel({"member", "list"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 3) << list.out;
}

}  // namespace
}  // namespace keel::integration
