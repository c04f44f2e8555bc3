// keel-bench against a real 3-member keel cluster: every workload runs for a moment and
// reports what it did as JSON, with no request failing. Not a benchmark (nothing here
// asserts a speed): it proves the load generator and the server work together, so the
// side-by-side with etcd (bench/compare.sh) measures something real.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

// The number after "\"field\":" in a flat JSON line; -1 when absent.
int64_t JsonInt(const std::string& json, const std::string& field) {
  const std::string tag = absl::StrCat("\"", field, "\":");
  const size_t at = json.find(tag);
  if (at == std::string::npos) return -1;
  const size_t begin = at + tag.size();
  const size_t end = json.find_first_of(",}", begin);
  int64_t v = -1;
  if (!absl::SimpleAtoi(json.substr(begin, end - begin), &v)) return -1;
  return v;
}

class KeelBenchSmokeTest : public ClusterTest {
 protected:
  std::string Endpoints() {
    std::vector<std::string> e;
    for (int i = 0; i < cluster_->size(); ++i) e.push_back(cluster_->client_address(i));
    return absl::StrJoin(e, ",");
  }

  // Runs keel-bench with `args` plus the endpoints and JSON output; expects exit 0 and
  // returns the JSON line.
  std::string Bench(std::vector<std::string> args) {
    args.insert(args.begin(), KEEL_BENCH_PATH);
    args.insert(args.end(), {"--endpoints", Endpoints(), "-w", "json", "--no-progress",
                             "--key-size", "16", "--val-size", "256"});
    const CommandResult r = RunCommand(args, "", {}, absl::Seconds(60));
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\nstdout: " << r.out
                              << "\nstderr: " << r.err;
    EXPECT_NE(r.out.find("\"errors\":{}"), std::string::npos) << r.out;
    return r.out;
  }
};

TEST_F(KeelBenchSmokeTest, EveryWorkloadRunsWithoutErrors) {
  StartCluster({});

  // Closed loop on the leader.
  std::string out = Bench({"put", "--target-leader", "--clients", "8", "--conns", "2", "--duration",
                           "2", "--warmup", "0.5", "--key-space", "1000"});
  EXPECT_GT(JsonInt(out, "ok"), 0) << out;
  EXPECT_EQ(JsonInt(out, "ok"), JsonInt(out, "requests")) << out;

  // Linearizable 10-key ranges over preloaded keys, spread over all members (followers
  // serve them through the leader's read index).
  out = Bench({"range", "--consistency", "l", "--range-keys", "10", "--key-space", "200",
               "--preload", "--clients", "6", "--conns", "3", "--total", "600"});
  EXPECT_EQ(JsonInt(out, "ok"), 600) << out;

  out = Bench(
      {"range", "--consistency", "s", "--key-space", "200", "--clients", "3", "--total", "300"});
  EXPECT_EQ(JsonInt(out, "ok"), 300) << out;

  // Compare-and-put: every attempt either succeeds or reads the newer revision.
  out = Bench({"txn", "--target-leader", "--clients", "4", "--key-space", "20", "--total", "200"});
  EXPECT_EQ(JsonInt(out, "ok"), 200) << out;
  EXPECT_EQ(JsonInt(out, "txn_succeeded") + JsonInt(out, "txn_failed"), 200) << out;
  EXPECT_GT(JsonInt(out, "txn_succeeded"), 0) << out;

  out = Bench({"mixed", "--read-ratio", "0.9", "--clients", "4", "--total", "400"});
  EXPECT_EQ(JsonInt(out, "ok"), 400) << out;

  // Open loop: the schedule, not the server's speed, fixes how many requests are sent
  // (4 requesters x every 20 ms x 2 s).
  out = Bench({"put", "--target-leader", "--rate", "200", "--clients", "4", "--duration", "2"});
  EXPECT_EQ(JsonInt(out, "requests"), 400) << out;
  EXPECT_EQ(JsonInt(out, "ok"), 400) << out;

  // Watchers on every member, one key and a key space: each gets every put, in order.
  for (const char* space : {"1", "50"}) {
    out = Bench({"watch", "--target-leader", "--watchers", "30", "--watch-conns", "3", "--clients",
                 "4", "--key-space", space, "--total", "200"});
    EXPECT_EQ(JsonInt(out, "ok"), 200) << out;
    EXPECT_EQ(JsonInt(out, "expected_per_watcher"), 200) << out;
    EXPECT_EQ(JsonInt(out, "delivered"), 30 * 200) << out;
    EXPECT_EQ(JsonInt(out, "wrong_count"), 0) << out;
    EXPECT_EQ(JsonInt(out, "order_violations"), 0) << out;
  }
}

TEST_F(KeelBenchSmokeTest, UnreachableEndpointIsAClearError) {
  const int port = PickFreePort();
  const CommandResult r =
      RunCommand({KEEL_BENCH_PATH, "put", "--endpoints", absl::StrCat("127.0.0.1:", port),
                  "--target-leader", "--timeout-ms", "500", "--total", "1"},
                 "", {}, absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("--target-leader: expected one leader, found 0"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace keel::integration
