// Compatibility with the unmodified etcdctl from Debian's etcd-client package (3.4):
// the output text and JSON are checked, not only exit codes.
#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

class EtcdctlTest : public ClusterTest {
 protected:
  void SetUp() override {
    if (std::string(EtcdctlPath()).empty()) {
      GTEST_SKIP() << "etcdctl not installed (Debian package etcd-client)";
    }
  }

  // etcdctl against member i.
  CommandResult Ctl(int i, std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {EtcdctlPath(), "--endpoints=" + cluster_->client_address(i),
                               "--command-timeout=10s", "--dial-timeout=5s"});
    return RunCommand(args, input, {"ETCDCTL_API=3"}, absl::Seconds(30));
  }
  // Same, and the call must succeed.
  std::string CtlOk(int i, std::vector<std::string> args, const std::string& input = "") {
    CommandResult r = Ctl(i, args, input);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.err;
    return r.out;
  }
};

template <typename Message>
bool ParseJson(const std::string& json, Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return status.ok();
}

// The JSON object that follows "key": in `json` (brace matching; strings in etcdctl's
// output never contain braces here).
std::string ObjectAfter(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return "";
  at = json.find('{', at);
  int depth = 0;
  for (size_t i = at; i < json.size(); ++i) {
    if (json[i] == '{') ++depth;
    if (json[i] == '}' && --depth == 0) return json.substr(at, i - at + 1);
  }
  return "";
}

int64_t RevisionOf(Cluster& c, int member) {
  etcdserverpb::RangeResponse got;
  EXPECT_TRUE(c.Get(member, "any", false, &got).ok());
  return got.header().revision();
}

TEST_F(EtcdctlTest, PutGetDelTxnCompaction) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % c.size();

  EXPECT_EQ(CtlOk(follower, {"put", "foo", "bar"}), "OK\n");
  const int64_t rev_bar = RevisionOf(c, 0);
  EXPECT_EQ(CtlOk(*leader, {"put", "foo1", "v1"}), "OK\n");
  EXPECT_EQ(CtlOk(follower, {"put", "foo2", "v2"}), "OK\n");
  EXPECT_EQ(CtlOk(follower, {"put", "fop", "other"}), "OK\n");
  EXPECT_EQ(CtlOk(*leader, {"put", "foo", "bar2"}), "OK\n");

  EXPECT_EQ(CtlOk(follower, {"get", "foo"}), "foo\nbar2\n");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "--prefix"}), "foo\nbar2\nfoo1\nv1\nfoo2\nv2\n");
  EXPECT_EQ(CtlOk(*leader, {"get", "foo", "--prefix", "--limit", "2"}), "foo\nbar2\nfoo1\nv1\n");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "--prefix", "--keys-only"}), "foo\n\nfoo1\n\nfoo2\n\n");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "--rev=" + std::to_string(rev_bar)}), "foo\nbar\n");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "--consistency=s"}), "foo\nbar2\n");
  EXPECT_EQ(CtlOk(follower, {"get", "nothing-here"}), "");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "fop"}), "foo\nbar2\nfoo1\nv1\nfoo2\nv2\n")
      << "a range [foo, fop) excludes fop";

  // -w json: the header and the key-values.
  {
    auto status = c.Status(follower);
    ASSERT_TRUE(status.ok());
    etcdserverpb::RangeResponse got;
    ASSERT_TRUE(ParseJson(CtlOk(follower, {"get", "foo", "--prefix", "-w", "json"}), &got));
    EXPECT_EQ(got.header().cluster_id(), status->header().cluster_id());
    EXPECT_EQ(got.header().member_id(), status->header().member_id());
    EXPECT_EQ(got.header().revision(), RevisionOf(c, follower));
    EXPECT_GE(got.header().raft_term(), 1u);
    EXPECT_EQ(got.count(), 3);
    ASSERT_EQ(got.kvs_size(), 3);
    EXPECT_EQ(got.kvs(0).key(), "foo");
    EXPECT_EQ(got.kvs(0).value(), "bar2");
    EXPECT_EQ(got.kvs(0).version(), 2);
    EXPECT_EQ(got.kvs(0).create_revision(), rev_bar);
    EXPECT_GT(got.kvs(0).mod_revision(), rev_bar);
  }

  // del: prints the number of deleted keys.
  EXPECT_EQ(CtlOk(follower, {"del", "foo1"}), "1\n");
  EXPECT_EQ(CtlOk(follower, {"del", "foo1"}), "0\n");
  EXPECT_EQ(CtlOk(*leader, {"del", "foo", "--prefix", "--prev-kv"}), "2\nfoo\nbar2\nfoo2\nv2\n");
  EXPECT_EQ(CtlOk(follower, {"get", "foo", "--prefix"}), "");

  // txn from stdin: compares, blank line, success ops, blank line, failure ops.
  CtlOk(follower, {"put", "tk", "1"});
  EXPECT_EQ(CtlOk(follower, {"txn", "--interactive=false"},
                  "value(\"tk\") = \"1\"\n\nput tk 2\nput res yes\n\nput res no\n\n"),
            "SUCCESS\n\nOK\n\nOK\n");
  EXPECT_EQ(CtlOk(*leader, {"txn", "--interactive=false"},
                  "value(\"tk\") = \"1\"\n\nput res yes-again\n\nget tk\n\n"),
            "FAILURE\n\ntk\n2\n");
  EXPECT_EQ(CtlOk(follower, {"get", "res"}), "res\nyes\n");

  // compaction: old revisions become unreadable, with etcd's message.
  const int64_t now = RevisionOf(c, 0);
  EXPECT_EQ(CtlOk(follower, {"compaction", std::to_string(now)}),
            "compacted revision " + std::to_string(now) + "\n");
  CommandResult old = Ctl(follower, {"get", "foo", "--rev=" + std::to_string(rev_bar)});
  EXPECT_NE(old.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(old.err, "required revision has been compacted")) << old.err;
  EXPECT_EQ(CtlOk(follower, {"get", "tk", "--rev=" + std::to_string(now)}), "tk\n2\n");
}

TEST_F(EtcdctlTest, EndpointStatusHealthAndMemberList) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  ASSERT_TRUE(c.Put(0, "a", "b").ok());
  const uint64_t leader_id = c.member(*leader).member_id;

  for (int i = 0; i < c.size(); ++i) {
    // JSON: [{"Endpoint":"...","Status":{"header":{...},"leader":...,"raftIndex":...}}]
    const std::string json = CtlOk(i, {"endpoint", "status", "-w", "json"});
    EXPECT_TRUE(absl::StrContains(json, "\"Endpoint\":\"" + c.client_address(i) + "\"")) << json;
    etcdserverpb::StatusResponse status;
    ASSERT_TRUE(ParseJson(ObjectAfter(json, "Status"), &status)) << json;
    EXPECT_EQ(status.header().member_id(), c.member(i).member_id);
    EXPECT_EQ(status.leader(), leader_id);
    EXPECT_GT(status.raftindex(), 0u);
    EXPECT_GE(status.raftterm(), 1u);
    EXPECT_GT(status.dbsize(), 0);
    EXPECT_FALSE(status.version().empty());

    // Table: endpoint, member id (hex), version, db size, is leader, ...
    const std::string text = CtlOk(i, {"endpoint", "status"});
    std::vector<std::string> fields = absl::StrSplit(absl::StripSuffix(text, "\n"), ", ");
    ASSERT_GE(fields.size(), 5u) << text;
    EXPECT_EQ(fields[0], c.client_address(i));
    EXPECT_EQ(fields[1], absl::StrCat(absl::Hex(c.member(i).member_id)));
    EXPECT_EQ(fields[4], i == *leader ? "true" : "false") << text;

    CommandResult health = Ctl(i, {"endpoint", "health"});
    EXPECT_EQ(health.exit_code, 0) << health.err;
    EXPECT_TRUE(absl::StrContains(health.out + health.err, c.client_address(i) + " is healthy"))
        << health.out << health.err;
  }

  // member list: one line per member: id, started, name, peer URLs, client URLs, learner.
  const std::string list = CtlOk(1, {"member", "list"});
  std::vector<std::string> lines = absl::StrSplit(list, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << list;
  for (int i = 0; i < c.size(); ++i) {
    const std::string expected =
        absl::StrCat(absl::Hex(c.member(i).member_id), ", started, ", c.member(i).name,
                     ", http://127.0.0.1:", c.member(i).peer_port,
                     ", http://127.0.0.1:", c.member(i).client_port, ", false");
    EXPECT_TRUE(std::find(lines.begin(), lines.end(), expected) != lines.end())
        << "missing line '" << expected << "' in:\n"
        << list;
  }
  etcdserverpb::MemberListResponse members;
  ASSERT_TRUE(ParseJson(CtlOk(2, {"member", "list", "-w", "json"}), &members));
  EXPECT_EQ(members.members_size(), 3);
  EXPECT_EQ(members.header().member_id(), c.member(2).member_id);
}

TEST_F(EtcdctlTest, LeaseGrantKeepAliveTimeToLiveListRevoke) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % c.size();

  // "lease 000000000000002a granted with TTL(30s)"
  const std::string granted = CtlOk(follower, {"lease", "grant", "30"});
  std::vector<std::string> words = absl::StrSplit(granted, ' ');
  ASSERT_EQ(words.size(), 5u) << granted;
  EXPECT_EQ(words[0], "lease");
  EXPECT_EQ(absl::StrCat(words[2], " ", words[3], " ", words[4]), "granted with TTL(30s)\n");
  const std::string id = words[1];
  ASSERT_EQ(id.size(), 16u) << granted;
  uint64_t id_value = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(id, &id_value)) << id;

  EXPECT_EQ(CtlOk(follower, {"put", "--lease=" + id, "leased/a", "1"}), "OK\n");
  EXPECT_EQ(CtlOk(*leader, {"put", "--lease=" + id, "leased/b", "2"}), "OK\n");
  CommandResult bad = Ctl(follower, {"put", "--lease=1234abcd", "leased/c", "3"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(bad.err, "requested lease not found")) << bad.err;

  const std::string ttl = CtlOk(follower, {"lease", "timetolive", id, "--keys"});
  EXPECT_TRUE(absl::StartsWith(ttl, "lease " + id + " granted with TTL(30s), remaining(")) << ttl;
  EXPECT_TRUE(absl::EndsWith(ttl, "s), attached keys([leased/a leased/b])\n")) << ttl;
  {
    // etcdctl's own flat JSON: {"cluster_id":..,"member_id":..,"revision":..,
    // "raft_term":..,"id":..,"ttl":..,"granted-ttl":..,"keys":null}
    const std::string json = CtlOk(*leader, {"lease", "timetolive", id, "-w", "json"});
    auto number = [&](const std::string& key) {
      uint64_t value = 0;  // Member ids use all 64 bits.
      const size_t at = json.find("\"" + key + "\":");
      if (at == std::string::npos) return value;
      const size_t from = at + key.size() + 3;
      EXPECT_TRUE(
          absl::SimpleAtoi(json.substr(from, json.find_first_of(",}", from) - from), &value))
          << json;
      return value;
    };
    EXPECT_EQ(number("id"), id_value) << json;
    EXPECT_EQ(number("granted-ttl"), 30u) << json;
    EXPECT_GE(number("ttl"), 28u) << json;
    EXPECT_LE(number("ttl"), 30u) << json;
    EXPECT_EQ(number("member_id"), c.member(*leader).member_id) << json;
  }

  EXPECT_EQ(CtlOk(follower, {"lease", "keep-alive", "--once", id}),
            "lease " + id + " keepalived with TTL(30)\n");
  EXPECT_EQ(CtlOk(*leader, {"lease", "keep-alive", "--once", id}),
            "lease " + id + " keepalived with TTL(30)\n");

  const std::string second = CtlOk(*leader, {"lease", "grant", "100"});
  std::vector<std::string> second_words = absl::StrSplit(second, ' ');
  ASSERT_EQ(second_words.size(), 5u) << second;
  std::vector<std::string> ids = {id, second_words[1]};
  std::sort(ids.begin(), ids.end());
  const std::string list = CtlOk(follower, {"lease", "list"});
  std::vector<std::string> lines = absl::StrSplit(list, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << list;
  EXPECT_EQ(lines[0], "found 2 leases");
  std::sort(lines.begin() + 1, lines.end());
  EXPECT_EQ(lines[1], ids[0]);
  EXPECT_EQ(lines[2], ids[1]);

  EXPECT_EQ(CtlOk(follower, {"lease", "revoke", id}), "lease " + id + " revoked\n");
  EXPECT_EQ(CtlOk(follower, {"get", "leased/", "--prefix"}), "");
  EXPECT_EQ(CtlOk(*leader, {"lease", "timetolive", id}), "lease " + id + " already expired\n");
  CommandResult again = Ctl(follower, {"lease", "revoke", id});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(again.err, "requested lease not found")) << again.err;
}

}  // namespace
}  // namespace keel::integration

namespace keel::integration {
namespace {

// The value of NAME="..." in etcdctl's `member add` output.
std::string EnvLine(const std::string& out, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::ConsumePrefix(&line, name + "=\"") && absl::ConsumeSuffix(&line, "\"")) {
      return std::string(line);
    }
  }
  return "";
}

// etcdctl's lock and elect (etcd's client-side concurrency recipes: leases, txns on
// create revisions, watches of the predecessor) work unmodified: three concurrent
// `etcdctl lock` commands never hold the lock at the same time, and `elect -l` sees the
// leader that `elect` made.
TEST_F(EtcdctlTest, LockIsMutuallyExclusiveAndElectFindsTheLeader) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_TRUE(c.WaitForLeader().ok());
  constexpr int kLockers = 3;
  std::vector<CommandResult> held(kLockers);
  std::vector<std::thread> lockers;
  for (int i = 0; i < kLockers; ++i) {
    lockers.emplace_back([&, i] {
      // Prints when it got the lock and when it lets go (ns since the epoch).
      held[i] = Ctl(i % c.size(), {"lock", "/it/lock", "--", "sh", "-c",
                                   "echo $(date +%s%N) $ETCD_LOCK_KEY; sleep 0.3; date +%s%N"});
    });
  }
  for (auto& t : lockers) t.join();
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& r : held) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> words =
        absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    ASSERT_EQ(words.size(), 3u) << r.out;
    EXPECT_TRUE(absl::StartsWith(words[1], "/it/lock/")) << r.out;
    int64_t from = 0, to = 0;
    ASSERT_TRUE(absl::SimpleAtoi(words[0], &from) && absl::SimpleAtoi(words[2], &to)) << r.out;
    spans.emplace_back(from, to);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_LE(spans[i - 1].second, spans[i].first) << "two lock holders at once";
  }

  // A candidate campaigns and stays leader until it is stopped (timeout ends it).
  std::thread candidate([&] {
    std::vector<std::string> args = {
        "/usr/bin/timeout", "4",    EtcdctlPath(), "--endpoints=" + c.client_address(0), "elect",
        "/it/elect",        "alice"};
    RunCommand(args, "", {"ETCDCTL_API=3"}, absl::Seconds(30));
  });
  EXPECT_TRUE(WaitFor(
      [&] {
        return !Ctl(1, {"get", "/it/elect", "--prefix"}).out.empty();
      },
      absl::Seconds(5)));
  CommandResult listen =
      RunCommand({"/usr/bin/timeout", "2", EtcdctlPath(), "--endpoints=" + c.client_address(2),
                  "elect", "-l", "/it/elect"},
                 "", {"ETCDCTL_API=3"}, absl::Seconds(30));
  EXPECT_TRUE(absl::StrContains(listen.out, "/it/elect/")) << listen.out << listen.err;
  EXPECT_TRUE(absl::StrContains(listen.out, "alice")) << listen.out << listen.err;
  candidate.join();
}

TEST_F(EtcdctlTest, MemberAddPromoteRemoveAndMoveLeader) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c.Put(0, "a", "b").ok());
  const int n4 = c.AddMember("placeholder");
  const std::string peer = c.peer_url(n4);

  // member add --learner through a follower (forwarded to the leader).
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  const int follower = (*leader + 1) % 3;
  const std::string added =
      CtlOk(follower, {"member", "add", "n4", "--peer-urls=" + peer, "--learner"});
  ASSERT_TRUE(absl::StartsWith(added, "Member ")) << added;
  EXPECT_TRUE(absl::StrContains(added, " added to cluster ")) << added;
  EXPECT_EQ(EnvLine(added, "ETCD_NAME"), "n4") << added;
  EXPECT_EQ(EnvLine(added, "ETCD_INITIAL_ADVERTISE_PEER_URLS"), peer) << added;
  EXPECT_EQ(EnvLine(added, "ETCD_INITIAL_CLUSTER_STATE"), "existing") << added;
  const std::string initial_cluster = EnvLine(added, "ETCD_INITIAL_CLUSTER");
  EXPECT_TRUE(absl::StrContains(initial_cluster, "n4=" + peer)) << added;
  // etcdctl prints the id as %16x: space-padded when it has fewer than 16 hex digits.
  std::vector<std::string> words = absl::StrSplit(added, ' ', absl::SkipEmpty());
  ASSERT_GE(words.size(), 2u);
  uint64_t id = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(words[1], &id)) << added;

  // An unstarted learner is listed as such, and cannot be promoted yet.
  const std::string line = absl::StrCat(absl::Hex(id), ", unstarted, , ", peer, ", , true");
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(Ctl(0, {"member", "list"}).out, line);
      },
      absl::Seconds(10)))
      << Ctl(0, {"member", "list"}).out;
  CommandResult early = Ctl(0, {"member", "promote", absl::StrCat(absl::Hex(id))});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(early.err,
                                "can only promote a learner member which is in sync with leader"))
      << early.err;

  // Started with the printed --initial-cluster, it catches up and is promoted.
  c.SetInitialCluster(n4, initial_cluster);
  ASSERT_TRUE(c.Spawn(n4).ok());
  ASSERT_TRUE(c.WaitServing(n4, absl::Seconds(20)).ok()) << c.LogTail(n4);
  CommandResult promoted;
  ASSERT_TRUE(WaitFor(
      [&] {
        promoted = Ctl(1, {"member", "promote", absl::StrCat(absl::Hex(id))});
        return promoted.exit_code == 0;
      },
      absl::Seconds(30)))
      << promoted.err;
  EXPECT_TRUE(absl::StrContains(promoted.out, "promoted in cluster")) << promoted.out;
  EXPECT_TRUE(WaitFor(
      [&] {
        CommandResult l = Ctl(n4, {"member", "list"});
        return absl::StrContains(l.out, absl::StrCat(absl::Hex(id), ", started, n4, ", peer)) &&
               absl::StrContains(l.out, ", false\n") && !absl::StrContains(l.out, "true");
      },
      absl::Seconds(10)))
      << Ctl(n4, {"member", "list"}).out;

  // move-leader to the new member (etcdctl finds the leader among the endpoints).
  std::string all;
  for (int i = 0; i < 4; ++i) all += (i ? "," : "") + c.client_address(i);
  CommandResult moved = RunCommand({EtcdctlPath(), "--endpoints=" + all, "--command-timeout=10s",
                                    "move-leader", absl::StrCat(absl::Hex(id))},
                                   "", {"ETCDCTL_API=3"}, absl::Seconds(30));
  EXPECT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_TRUE(absl::StrContains(moved.out, "Leadership transferred from ")) << moved.out;
  auto new_leader = c.WaitForLeader();
  ASSERT_TRUE(new_leader.ok());
  EXPECT_EQ(*new_leader, n4);
  // To a non-member: etcd's error.
  CommandResult bad = RunCommand(
      {EtcdctlPath(), "--endpoints=" + all, "--command-timeout=10s", "move-leader", "1234"}, "",
      {"ETCDCTL_API=3"}, absl::Seconds(30));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(bad.err, "bad leader transferee")) << bad.err;

  // member remove of the (now leading) new member: it hands over and stops.
  const std::string removed = CtlOk(0, {"member", "remove", absl::StrCat(absl::Hex(id))});
  EXPECT_TRUE(
      absl::StrContains(removed, absl::StrCat("Member ", absl::Hex(id), " removed from cluster")))
      << removed;
  EXPECT_TRUE(c.WaitExited(n4, absl::Seconds(20)).has_value());
  CommandResult gone = Ctl(0, {"member", "remove", absl::StrCat(absl::Hex(id))});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(gone.err, "member not found")) << gone.err;
  EXPECT_EQ(CtlOk(1, {"put", "after", "removal"}), "OK\n");
  std::vector<std::string> lines =
      absl::StrSplit(CtlOk(2, {"member", "list"}), '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 3u);
}

}  // namespace
}  // namespace keel::integration
