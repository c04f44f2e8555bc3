// The `keel` CLI against a real 3-member cluster: every command, in every output
// format, with its exit code; and the one-line errors when members are down.
#include <signal.h>

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

// Exit codes documented in `keel --help` (tools/keel/context.h).
constexpr int kOk = 0, kFailed = 1, kUsage = 2, kUnavailable = 3;

class CliTest : public ClusterTest {
 protected:
  // keel with --endpoints of the given members (default: member 0 only, so the tests
  // also prove that the CLI finds the rest of the cluster by itself).
  CommandResult Keel(std::vector<std::string> args, const std::string& input = "",
                     std::vector<int> members = {0}, std::vector<std::string> env = {}) {
    std::vector<std::string> endpoints;
    for (int m : members) endpoints.push_back(cluster_->client_address(m));
    args.insert(args.begin(), {KEEL_CLI_PATH, "--endpoints=" + absl::StrJoin(endpoints, ","),
                               "--command-timeout=5s", "--dial-timeout=3s"});
    return RunCommand(args, input, env, absl::Seconds(40));
  }
  std::string KeelOk(std::vector<std::string> args, const std::string& input = "") {
    CommandResult r = Keel(args, input);
    EXPECT_EQ(r.exit_code, kOk) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_EQ(r.err, "") << absl::StrJoin(args, " ");
    return r.out;
  }

  int64_t Revision() {
    etcdserverpb::RangeResponse got;
    EXPECT_TRUE(cluster_->Get(0, "any", false, &got).ok());
    return got.header().revision();
  }
};

template <typename Message>
Message FromJson(const std::string& json) {
  Message m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, &m, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return m;
}

// Without a cluster: help, version and usage errors.
TEST(CliUsageTest, HelpIsCompleteAndBadUsageExitsTwo) {
  auto keel = [](std::vector<std::string> args) {
    args.insert(args.begin(), KEEL_CLI_PATH);
    return RunCommand(args, "", {}, absl::Seconds(10));
  };
  CommandResult help = keel({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* text :
       {"put", "get", "del", "txn", "lease", "member", "endpoint", "compaction", "check",
        "--endpoints", "KEEL_ENDPOINTS", "--dial-timeout", "--command-timeout", "--write-out",
        "Exit codes:", "3  unavailable", "4  timed out"}) {
    EXPECT_TRUE(absl::StrContains(help.out, text)) << text << "\n" << help.out;
  }
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{{"get"},
                                                                            {"put"},
                                                                            {"del"},
                                                                            {"txn"},
                                                                            {"compaction"},
                                                                            {"member", "list"},
                                                                            {"endpoint", "status"},
                                                                            {"endpoint", "health"},
                                                                            {"check", "perf"}}) {
    cmd.push_back("--help");
    CommandResult r = keel(cmd);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(cmd, " ");
    EXPECT_TRUE(absl::StrContains(r.out, "Usage:")) << r.out;
  }
  EXPECT_TRUE(absl::StrContains(keel({"txn", "--help"}).out, "compares, one per line"));
  EXPECT_TRUE(absl::StrContains(keel({"check", "perf", "--help"}).out, "PASS needs"));

  struct Bad {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{}, "Usage:"},
           {{"frobnicate"}, "keel: "},
           {{"get"}, "key is required"},
           {{"get", "k", "--bogus"}, "--bogus"},
           {{"-w", "yaml", "get", "k"}, "yaml"},
           {{"get", "k", "--consistency", "x"}, "x"},
           {{"--command-timeout", "soon", "get", "k"}, "not a duration"},
           {{"get", "k", "--prefix", "--from-key"}, "cannot be used together"},
           {{"get", "a", "b", "--prefix"}, "range_end"},
           {{"get", "k", "--sort-by", "size"}, "--sort-by"},
           {{"compaction", "0"}, "must be > 0"},
           {{"check", "perf", "--load", "xxl"}, "xxl"},
       }) {
    CommandResult r = keel(bad.args);
    EXPECT_EQ(r.exit_code, kUsage) << absl::StrJoin(bad.args, " ") << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, bad.says))
        << absl::StrJoin(bad.args, " ") << ": " << r.err;
    EXPECT_EQ(r.out, "");
  }
  // A malformed txn is a usage error too, found before anything is sent.
  CommandResult txn =
      RunCommand({KEEL_CLI_PATH, "txn"}, "value(\"a\") == \"1\"\n\n\n", {}, absl::Seconds(10));
  EXPECT_EQ(txn.exit_code, kUsage);
  EXPECT_TRUE(absl::StrContains(txn.err, "malformed compare")) << txn.err;
  EXPECT_EQ(std::count(txn.err.begin(), txn.err.end(), '\n'), 1) << "one line: " << txn.err;
}

TEST_F(CliTest, PutGetDelInEveryFormat) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c.WaitForLeader().ok());

  EXPECT_EQ(KeelOk({"put", "foo", "bar"}), "OK\n");
  const int64_t rev_bar = Revision();
  EXPECT_EQ(KeelOk({"put", "foo1", "v1"}), "OK\n");
  EXPECT_EQ(KeelOk({"put", "foo2", "v2"}), "OK\n");
  EXPECT_EQ(KeelOk({"put", "fop", "other"}), "OK\n");
  EXPECT_EQ(KeelOk({"put", "foo", "bar2", "--prev-kv"}), "OK\nfoo\nbar\n");
  EXPECT_EQ(KeelOk({"put", "from-stdin"}, "line1\nline2"), "OK\n");
  EXPECT_EQ(KeelOk({"get", "from-stdin", "--print-value-only"}), "line1\nline2\n");

  // simple
  EXPECT_EQ(KeelOk({"get", "foo"}), "foo\nbar2\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix"}), "foo\nbar2\nfoo1\nv1\nfoo2\nv2\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix", "--limit", "2"}), "foo\nbar2\nfoo1\nv1\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix", "--keys-only"}), "foo\n\nfoo1\n\nfoo2\n\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix", "--print-value-only"}), "bar2\nv1\nv2\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix", "--count-only"}), "3\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--rev", std::to_string(rev_bar)}), "foo\nbar\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--consistency", "s"}), "foo\nbar2\n");
  EXPECT_EQ(KeelOk({"get", "foo", "fop"}), "foo\nbar2\nfoo1\nv1\nfoo2\nv2\n");
  EXPECT_EQ(KeelOk({"get", "foo2", "--from-key", "--keys-only"}), "foo2\n\nfop\n\nfrom-stdin\n\n");
  EXPECT_EQ(KeelOk({"get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND",
                    "--keys-only"}),
            "foo\n\nfoo2\n\nfoo1\n\n");
  EXPECT_EQ(KeelOk({"get", "", "--prefix", "--keys-only", "--limit", "1"}), "foo\n\n");
  EXPECT_EQ(KeelOk({"get", "nothing-here"}), "");

  // json: etcdctl's shape (proto field names, base64 bytes), global flag after the command.
  {
    etcdserverpb::RangeResponse got =
        FromJson<etcdserverpb::RangeResponse>(KeelOk({"get", "foo", "--prefix", "-w", "json"}));
    EXPECT_EQ(got.header().revision(), Revision());
    EXPECT_NE(got.header().cluster_id(), 0u);
    EXPECT_EQ(got.count(), 3);
    ASSERT_EQ(got.kvs_size(), 3);
    EXPECT_EQ(got.kvs(0).key(), "foo");
    EXPECT_EQ(got.kvs(0).value(), "bar2");
    EXPECT_EQ(got.kvs(0).version(), 2);
    EXPECT_EQ(got.kvs(0).create_revision(), rev_bar);
    const std::string raw = KeelOk({"-w", "json", "get", "foo"});
    EXPECT_TRUE(absl::StrContains(raw, "\"key\":\"Zm9v\"")) << raw;
    EXPECT_TRUE(absl::StrContains(raw, "\"cluster_id\":")) << raw;
    etcdserverpb::PutResponse put = FromJson<etcdserverpb::PutResponse>(
        KeelOk({"put", "foo", "bar3", "--prev-kv", "-w", "json"}));
    EXPECT_EQ(put.prev_kv().value(), "bar2");
  }

  // table
  const std::string table = KeelOk({"get", "foo", "--prefix", "-w", "table"});
  EXPECT_TRUE(absl::StartsWith(table, "+------+-------+---------+")) << table;
  EXPECT_TRUE(absl::StrContains(table, "| KEY  | VALUE | VERSION | CREATE REV | MOD REV | LEASE |"))
      << table;
  EXPECT_TRUE(absl::StrContains(table, "| foo2 |    v2 |       1 |")) << table;

  // del
  EXPECT_EQ(KeelOk({"del", "foo1"}), "1\n");
  EXPECT_EQ(KeelOk({"del", "foo1"}), "0\n");
  EXPECT_EQ(KeelOk({"del", "foo", "--prefix", "--prev-kv"}), "2\nfoo\nbar3\nfoo2\nv2\n");
  etcdserverpb::DeleteRangeResponse deleted =
      FromJson<etcdserverpb::DeleteRangeResponse>(KeelOk({"del", "fo", "fz", "-w", "json"}));
  EXPECT_EQ(deleted.deleted(), 2);  // fop, from-stdin
  EXPECT_EQ(KeelOk({"get", "", "--from-key"}), "");

  // KEEL_ENDPOINTS when --endpoints is not given.
  CommandResult env = RunCommand({KEEL_CLI_PATH, "put", "via-env", "1"}, "",
                                 {"KEEL_ENDPOINTS=" + c.client_address(2)}, absl::Seconds(30));
  EXPECT_EQ(env.exit_code, kOk) << env.err;
}

TEST_F(CliTest, TxnCompactionAndServerErrors) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c.WaitForLeader().ok());

  KeelOk({"put", "tk", "1"});
  const int64_t rev_one = Revision();
  // etcdctl's syntax from stdin: compares, blank, success ops, blank, failure ops.
  EXPECT_EQ(KeelOk({"txn"}, "value(\"tk\") = \"1\"\n\nput tk 2\nput res yes\n\nput res no\n\n"),
            "SUCCESS\n\nOK\n\nOK\n");
  EXPECT_EQ(KeelOk({"txn", "--interactive=false"},
                   "value(\"tk\") = \"1\"\n\nput res yes-again\n\nget tk\n\n"),
            "FAILURE\n\ntk\n2\n");
  EXPECT_EQ(KeelOk({"get", "res", "--print-value-only"}), "yes\n");
  {
    const std::string json =
        KeelOk({"txn", "-w", "json"}, "version(\"tk\") = \"2\"\n\ndel res --prev-kv\n\n");
    EXPECT_TRUE(absl::StrContains(json, "{\"Response\":{\"ResponseDeleteRange\":")) << json;
    EXPECT_TRUE(absl::StrContains(json, "\"succeeded\":true")) << json;
  }
  // Prompts go to stderr, so stdout stays the same when asked for them.
  CommandResult prompted = Keel({"txn", "--interactive"}, "\nget tk\n\n");
  EXPECT_EQ(prompted.exit_code, kOk);
  EXPECT_EQ(prompted.out, "SUCCESS\n\ntk\n2\n");
  EXPECT_TRUE(absl::StrContains(prompted.err, "compares:")) << prompted.err;

  // A server-side refusal: exit 1, one line, with a hint.
  CommandResult too_many = Keel({"txn"}, "\nput a 1\nput a 2\n\n");  // Duplicate key in one branch.
  EXPECT_EQ(too_many.exit_code, kUsage) << too_many.err;
  EXPECT_TRUE(absl::StrContains(too_many.err, "duplicate key")) << too_many.err;

  const int64_t now = Revision();
  EXPECT_EQ(KeelOk({"compaction", std::to_string(now)}),
            "compacted revision " + std::to_string(now) + "\n");
  CommandResult old = Keel({"get", "tk", "--rev", std::to_string(rev_one)});
  EXPECT_EQ(old.exit_code, kFailed);
  EXPECT_EQ(old.out, "");
  EXPECT_EQ(old.err,
            "keel: etcdserver: mvcc: required revision has been compacted: read at a newer "
            "--rev (keel get <key> -w json shows the current revision)\n");
  EXPECT_EQ(KeelOk({"get", "tk", "--rev", std::to_string(now), "--print-value-only"}), "2\n");
  CommandResult future = Keel({"get", "tk", "--rev", std::to_string(now + 1000)});
  EXPECT_EQ(future.exit_code, kFailed);
  EXPECT_TRUE(absl::StrContains(future.err, "future revision")) << future.err;
  CommandResult again = Keel({"compaction", std::to_string(now), "--physical"});
  EXPECT_EQ(again.exit_code, kFailed) << "compacting twice at the same revision is refused";
}

TEST_F(CliTest, MemberListAndEndpointsCoverEveryMember) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());

  // member list: one line per member, etcdctl's simple format.
  const std::string simple = KeelOk({"member", "list"});
  EXPECT_EQ(std::count(simple.begin(), simple.end(), '\n'), 3) << simple;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(
        absl::StrContains(simple, absl::StrCat(absl::Hex(c.member(i).member_id), ", started, n",
                                               i + 1, ", http://127.0.0.1:", c.member(i).peer_port,
                                               ", http://", c.client_address(i), ", false")))
        << simple;
  }
  EXPECT_TRUE(absl::StrContains(KeelOk({"member", "list", "-w", "table"}),
                                "| STATUS  | NAME |       PEER ADDRS"));
  auto members =
      FromJson<etcdserverpb::MemberListResponse>(KeelOk({"member", "list", "-w", "json"}));
  EXPECT_EQ(members.members_size(), 3);

  // endpoint status: every member, although only member 0 was given.
  const std::string status = KeelOk({"endpoint", "status", "-w", "table"});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(status, c.client_address(i))) << status;
  }
  int leader_rows = 0;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::StrContains(line, " true ")) {
      ++leader_rows;
      EXPECT_TRUE(absl::StrContains(line, c.client_address(*leader))) << status;
    }
  }
  EXPECT_EQ(leader_rows, 1) << status;
  const std::string status_json = KeelOk({"endpoint", "status", "-w", "json"});
  EXPECT_TRUE(absl::StartsWith(
      status_json, "[{\"Endpoint\":\"" + c.client_address(0) + "\",\"Status\":{\"header\":"))
      << status_json;
  EXPECT_TRUE(
      absl::StrContains(status_json, absl::StrCat("\"leader\":", c.member(*leader).member_id)))
      << status_json;
  const std::string status_simple = KeelOk({"endpoint", "status"});
  EXPECT_TRUE(absl::StrContains(
      status_simple,
      absl::StrCat(c.client_address(*leader), ", ", absl::Hex(c.member(*leader).member_id), ", ")))
      << status_simple;

  // endpoint health: every member healthy.
  const std::string health = KeelOk({"endpoint", "health"});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(
        health, c.client_address(i) + " is healthy: successfully committed proposal"))
        << health;
  }
  const std::string health_table = KeelOk({"endpoint", "health", "-w", "table"});
  EXPECT_TRUE(absl::StrContains(health_table, "ENDPOINT")) << health_table;
  EXPECT_TRUE(absl::StrContains(health_table, "| HEALTH |")) << health_table;
  const std::string health_json = KeelOk({"endpoint", "health", "-w", "json"});
  EXPECT_EQ(std::count(health_json.begin(), health_json.end(), '{'), 3) << health_json;
  EXPECT_TRUE(absl::StrContains(health_json, "\"health\":true,\"took\":\"")) << health_json;
}

TEST_F(CliTest, CheckPerfSaysPassOrFailAndCleansUp) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c.WaitForLeader().ok());

  CommandResult r = Keel({"check", "perf", "--load", "s", "--duration", "3s", "--auto-compact"});
  // The verdict depends on the machine; the report's shape and its exit code must agree.
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 4u) << r.out << r.err;
  EXPECT_TRUE(absl::StartsWith(lines[0], "PASS: Throughput is ") ||
              absl::StartsWith(lines[0], "FAIL: Throughput too low: "))
      << r.out;
  EXPECT_TRUE(absl::StrContains(lines[1], "Slowest request took")) << r.out;
  EXPECT_TRUE(absl::StrContains(lines[2], "Stddev")) << r.out;
  EXPECT_EQ(r.exit_code, lines.back() == "PASS" ? kOk : kFailed) << r.out << r.err;
  EXPECT_EQ(KeelOk({"get", "/keel-check-perf/", "--prefix", "--count-only"}), "0\n");

  // Writes went through the cluster (3 s at 150 writes/s is 450 when it keeps up).
  int64_t revision = Revision();
  EXPECT_GE(revision, 100);

  // It never writes under a prefix that holds keys.
  KeelOk({"put", "/mine/precious", "x"});
  CommandResult taken = Keel({"check", "perf", "--prefix", "/mine/", "--duration", "1s"});
  EXPECT_EQ(taken.exit_code, kFailed);
  EXPECT_TRUE(absl::StrContains(taken.err, "prefix /mine/ has 1 keys")) << taken.err;
  EXPECT_EQ(KeelOk({"get", "/mine/precious", "--print-value-only"}), "x\n");

  const std::string json = KeelOk({"check", "perf", "--duration", "1s", "-w", "json"});
  EXPECT_TRUE(absl::StrContains(json, "\"load\":\"s\",\"target_writes_per_s\":150")) << json;
}

TEST_F(CliTest, MembersDownGiveOneLineThatSaysWhatToDo) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c.WaitForLeader().ok());
  KeelOk({"put", "k", "v"});

  c.Stop(1);
  c.Stop(2);
  const std::string down = c.client_address(1) + ", " + c.client_address(2);
  // Members keel learnt from the member list are listed in address order.
  const std::string down_sorted = std::min(c.client_address(1), c.client_address(2)) + ", " +
                                  std::max(c.client_address(1), c.client_address(2));

  // Every member is named in --endpoints here (as a user with all three would).
  CommandResult put = Keel({"--command-timeout=2s", "put", "k", "v2"}, "", {0, 1, 2});
  EXPECT_EQ(put.exit_code, kUnavailable) << put.err;
  EXPECT_EQ(put.err, "keel: no leader: 2 of 3 members unreachable (" + down +
                         "); start them: 2 of 3 must run\n");
  EXPECT_EQ(put.out, "");
  // The same from one endpoint: the client knew the others from the member list.
  CommandResult get = Keel({"--command-timeout=2s", "get", "k"});
  EXPECT_EQ(get.exit_code, kUnavailable) << get.err;
  EXPECT_TRUE(absl::StrContains(get.err, "no leader: 2 of 3 members unreachable")) << get.err;
  // A serializable read needs no leader.
  CommandResult stale = Keel({"get", "k", "--consistency", "s", "--print-value-only"});
  EXPECT_EQ(stale.exit_code, kOk) << stale.err;
  EXPECT_EQ(stale.out, "v\n");

  // endpoint status: a row per member, the stopped ones marked unreachable; exit 1.
  CommandResult status = Keel({"--command-timeout=2s", "endpoint", "status", "-w", "table"});
  EXPECT_EQ(status.exit_code, kFailed) << status.err;
  EXPECT_TRUE(absl::StrContains(status.out, c.client_address(0))) << status.out;
  for (int i : {1, 2}) {
    EXPECT_TRUE(absl::StrContains(status.out, "| " + c.client_address(i) + " |")) << status.out;
  }
  EXPECT_EQ(std::count(status.out.begin(), status.out.end(), '\n'), 7) << status.out;
  EXPECT_TRUE(absl::StrContains(status.out, "unreachable: ")) << status.out;
  EXPECT_EQ(status.err, "keel: 2 of 3 members unreachable (" + down_sorted + ")\n");

  // endpoint health: no member is healthy without a quorum; the line says why.
  CommandResult health = Keel({"--command-timeout=2s", "endpoint", "health"});
  EXPECT_EQ(health.exit_code, kUnavailable) << health.err;
  EXPECT_TRUE(absl::StrContains(health.out, c.client_address(0) + " is unhealthy")) << health.out;
  EXPECT_EQ(health.err, "keel: no leader: 2 of 3 members unreachable (" + down_sorted +
                            "); start them: 2 of 3 must run\n");

  // Nothing reachable at all.
  c.Stop(0);
  CommandResult none = Keel({"get", "k"});
  EXPECT_EQ(none.exit_code, kUnavailable) << none.err;
  EXPECT_EQ(none.err, "keel: cannot reach any member at " + c.client_address(0) +
                          " within 3s (--dial-timeout); is the cluster up? Check --endpoints or "
                          "KEEL_ENDPOINTS\n")
      << none.err;
  EXPECT_EQ(std::count(none.err.begin(), none.err.end(), '\n'), 1) << none.err;
}

TEST_F(CliTest, LeaseCommandsAndPutWithLease) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());

  // "lease 0000000000000001 granted with TTL(30s)"
  const std::string granted = KeelOk({"lease", "grant", "30"});
  std::vector<std::string> words = absl::StrSplit(absl::StripSuffix(granted, "\n"), ' ');
  ASSERT_EQ(words.size(), 5u) << granted;
  EXPECT_EQ(absl::StrCat(words[0], " ", words[2], " ", words[3], " ", words[4]),
            "lease granted with TTL(30s)");
  const std::string id = words[1];
  ASSERT_EQ(id.size(), 16u);
  EXPECT_EQ(KeelOk({"lease", "grant", "60", "--id=abc"}),
            "lease 0000000000000abc granted with TTL(60s)\n");

  EXPECT_EQ(KeelOk({"put", "--lease=" + id, "svc/a", "1"}), "OK\n");
  EXPECT_EQ(KeelOk({"put", "--lease=abc", "svc/b", "2"}), "OK\n");
  const std::string ttl = KeelOk({"lease", "timetolive", id, "--keys"});
  EXPECT_TRUE(absl::StartsWith(ttl, "lease " + id + " granted with TTL(30s), remaining(")) << ttl;
  EXPECT_TRUE(absl::EndsWith(ttl, "s), attached keys([svc/a])\n")) << ttl;
  const std::string json = KeelOk({"lease", "timetolive", "abc", "--keys", "-w", "json"});
  EXPECT_TRUE(absl::StrContains(json, "\"id\":2748,\"ttl\":")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"granted-ttl\":60,\"keys\":[\"c3ZjL2I=\"]}")) << json;

  std::vector<std::string> ids = {id, "0000000000000abc"};
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(KeelOk({"lease", "list"}),
            absl::StrCat("found 2 leases\n", ids[0], "\n", ids[1], "\n"));
  EXPECT_EQ(KeelOk({"lease", "keep-alive", "--once", id}),
            "lease " + id + " keepalived with TTL(30)\n");

  // Continuous keep-alive: a line per renewal (every TTL/3; a 3 s lease: every second).
  EXPECT_EQ(KeelOk({"lease", "grant", "3", "--id=77"}),
            "lease 0000000000000077 granted with TTL(3s)\n");
  EXPECT_EQ(KeelOk({"put", "--lease=77", "svc/kept", "3"}), "OK\n");
  {
    BackgroundCommand keep(
        {KEEL_CLI_PATH, "--endpoints=" + c.client_address(1), "lease", "keep-alive", "77"}, {});
    ASSERT_TRUE(keep.WaitForOut(
        [](const std::string& out) {
          return std::count(out.begin(), out.end(), '\n') >= 6;  // ~5 s: past the TTL.
        },
        absl::Seconds(20)))
        << keep.Out() << keep.Err();
    EXPECT_TRUE(absl::StartsWith(keep.Out(), "lease 0000000000000077 keepalived with TTL(3)\n"));
    EXPECT_EQ(KeelOk({"get", "svc/kept", "--print-value-only"}), "3\n");
    // Revoked under it: it says so and exits 1.
    EXPECT_EQ(KeelOk({"lease", "revoke", "77"}), "lease 0000000000000077 revoked\n");
    std::optional<int> code = keep.WaitExited(absl::Seconds(10));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, kFailed);
    EXPECT_EQ(keep.Err(), "keel: lease 0000000000000077 expired or revoked\n");
  }

  EXPECT_EQ(KeelOk({"lease", "revoke", id}), "lease " + id + " revoked\n");
  EXPECT_EQ(KeelOk({"get", "svc/", "--prefix", "--keys-only"}), "svc/b\n\n");
  EXPECT_EQ(KeelOk({"lease", "timetolive", id}), "lease " + id + " already expired\n");
  CommandResult again = Keel({"lease", "revoke", id});
  EXPECT_EQ(again.exit_code, kFailed);
  EXPECT_EQ(again.err, "keel: etcdserver: requested lease not found\n");
  CommandResult bad = Keel({"lease", "revoke", "not-hex"});
  EXPECT_EQ(bad.exit_code, kUsage);
  CommandResult zero = Keel({"lease", "grant", "0"});
  EXPECT_EQ(zero.exit_code, kUsage) << zero.err;
  CommandResult bad_put = Keel({"put", "--lease=999", "k", "v"});
  EXPECT_EQ(bad_put.exit_code, kFailed);
  EXPECT_TRUE(absl::StrContains(bad_put.err, "requested lease not found")) << bad_put.err;
}

}  // namespace
}  // namespace keel::integration
