// The README's one-command local cluster, tools/cluster.sh, run as a user runs it:
// up -> write and read through the printed endpoints -> status -> down, in a temp dir
// on free ports, with the already-built tree (--no-deps --no-build).
#include <signal.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace keel::integration {
namespace {

const std::string kScript = std::string(KEEL_SOURCE_DIR) + "/tools/cluster.sh";

// Six distinct ports that were free a moment ago.
std::vector<int> FreePorts(int n) {
  std::set<int> ports;
  while (static_cast<int>(ports.size()) < n) ports.insert(PickFreePort());
  return {ports.begin(), ports.end()};
}

class ClusterScriptTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeTempDir("keel-cluster-sh-"); }
  void TearDown() override {
    // Whatever happened, no member outlives the test.
    Script({"down", "--purge"});
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  CommandResult Script(std::vector<std::string> args) {
    args.insert(args.begin(), kScript);
    args.insert(args.end(), {"--dir", dir()});
    return RunCommand(args, "", {}, absl::Seconds(50));
  }
  std::string dir() const { return root_ + "/cluster"; }

  // `up` on fresh free ports; a port taken by someone else between the pick and the
  // bind fails the start, so that case is retried with new ports.
  CommandResult Up(std::vector<int>* client_ports) {
    CommandResult r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      const std::vector<int> p = FreePorts(6);
      *client_ports = {p[0], p[1], p[2]};
      r = Script({"up", "--no-deps", "--no-build", "--build-dir", KEEL_BUILD_DIR, "--ports",
                  absl::StrCat(p[0], ",", p[1], ",", p[2]), "--peer-ports",
                  absl::StrCat(p[3], ",", p[4], ",", p[5])});
      if (r.exit_code == 0 || !absl::StrContains(r.err, "listen")) return r;
      Script({"down", "--purge"});
    }
    return r;
  }

  std::vector<pid_t> MemberPids() {
    std::vector<pid_t> pids;
    for (const char* name : {"n1", "n2", "n3"}) {
      int pid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir() + "/" + name + ".pid")),
                           &pid)) {
        pids.push_back(pid);
      }
    }
    return pids;
  }

  std::string root_;
};

bool Alive(pid_t pid) {
  // A zombie (parent never reaped it) has stopped too.
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (stat.empty()) return false;
  const size_t close = stat.rfind(')');
  return close == std::string::npos || stat.substr(close + 2, 1) != "Z";
}

TEST_F(ClusterScriptTest, UpPutGetStatusDown) {
  std::vector<int> ports;
  CommandResult up = Up(&ports);
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  const std::string endpoints =
      absl::StrCat("127.0.0.1:", ports[0], ",127.0.0.1:", ports[1], ",127.0.0.1:", ports[2]);
  EXPECT_TRUE(absl::StrContains(up.out, "endpoints: " + endpoints)) << up.out;
  EXPECT_TRUE(absl::StrContains(up.out, "Try:")) << up.out;
  const std::vector<pid_t> pids = MemberPids();
  ASSERT_EQ(pids.size(), 3u);
  for (pid_t pid : pids) EXPECT_TRUE(Alive(pid)) << pid;

  // The commands the script suggests, with the endpoints it printed: a write through
  // one member is read back (linearizably) through another.
  EXPECT_TRUE(absl::StrContains(up.out, "export KEEL_ENDPOINTS=" + endpoints)) << up.out;
  EXPECT_TRUE(absl::StrContains(up.out, "keel put greeting hello")) << up.out;
  auto keel = [](std::vector<std::string> args, int port) {
    args.insert(args.begin(), KEEL_CLI_PATH);
    return RunCommand(args, "", {absl::StrCat("KEEL_ENDPOINTS=127.0.0.1:", port)},
                      absl::Seconds(20));
  };
  CommandResult put = keel({"put", "greeting", "hello"}, ports[0]);
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(put.out, "OK\n");
  CommandResult get = keel({"get", "greeting"}, ports[2]);
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "greeting\nhello\n");

  // A second `up` sees the running cluster and leaves it alone.
  CommandResult again = Script({"up", "--no-deps", "--no-build"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(absl::StrContains(again.out, "already up")) << again.out;
  EXPECT_EQ(MemberPids(), pids);

  CommandResult status = Script({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(status.out, absl::StrCat("n", i + 1, "  running (pid ", pids[i])))
        << status.out;
    // `keel endpoint status -w table`, one row per member.
    EXPECT_TRUE(absl::StrContains(status.out, absl::StrCat("| 127.0.0.1:", ports[i], " |")))
        << status.out;
  }

  CommandResult down = Script({"down"});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_TRUE(absl::StrContains(down.out, "stopped 3 member(s)")) << down.out;
  for (pid_t pid : pids) EXPECT_FALSE(Alive(pid)) << pid;
  // The members stopped gracefully (SIGTERM), not by the script's SIGKILL fallback.
  EXPECT_FALSE(absl::StrContains(down.err, "killing")) << down.err;
  EXPECT_TRUE(std::filesystem::exists(dir() + "/n1")) << "down keeps the data";

  CommandResult after = Script({"status"});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(after.err, "0 of 3 members running")) << after.err;
}

TEST_F(ClusterScriptTest, BadInputIsAUsageError) {
  EXPECT_EQ(Script({"sideways"}).exit_code, 2);
  EXPECT_EQ(Script({"up", "--ports", "1,2"}).exit_code, 2);
  CommandResult missing = Script({"up", "--no-deps", "--no-build", "--build-dir", root_});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "no keeld at")) << missing.err;
  CommandResult status = Script({"status"});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(status.err, "no cluster in")) << status.err;
}

}  // namespace
}  // namespace keel::integration
