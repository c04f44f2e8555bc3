// Bad startup input: keeld says what is wrong in one line and exits non-zero; a member
// of another cluster (other token) is refused by its peers and never joins.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using StartupTest = ClusterTest;

int CountLines(const std::string& text) {
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    (void)line;
    ++lines;
  }
  return lines;
}

CommandResult RunKeeld(std::vector<std::string> args) {
  args.insert(args.begin(), KeeldPath());
  return RunCommand(args, "", {}, absl::Seconds(20));
}

TEST_F(StartupTest, UnknownFlagExitsWithCodeTwoAndOneLine) {
  CommandResult r = RunKeeld({"--name", "n1", "--no-such-flag", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "keeld: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "no-such-flag")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(StartupTest, ConflictingTimeoutsExitWithCodeTwoAndOneLine) {
  CommandResult r = RunKeeld({"--name", "n1", "--heartbeat-interval", "200", "--election-timeout",
                              "500", "--data-dir", "/nonexistent/x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--election-timeout")) << r.err;
}

TEST_F(StartupTest, BadCorruptCheckTimeExitsWithCodeTwoAndOneLine) {
  for (const char* flag : {"--corrupt-check-time", "--experimental-corrupt-check-time"}) {
    CommandResult r =
        RunKeeld({"--name", "n1", flag, "five minutes", "--data-dir", "/nonexistent/x"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(CountLines(r.err), 1) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "--corrupt-check-time: 'five minutes'")) << r.err;
  }
}

TEST_F(StartupTest, DataDirOfAnotherMemberIsRefused) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  c.Kill(0);
  c.Kill(1);
  // n2's flags, n1's data dir.
  std::vector<std::string> flags = c.member(1).flags;
  for (size_t i = 0; i + 1 < flags.size(); ++i) {
    if (flags[i] == "--data-dir") flags[i + 1] = c.member(0).data_dir;
  }
  CommandResult r = RunKeeld(flags);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'n1'")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'n2'")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, c.member(0).data_dir)) << r.err;
  // n1's own data dir still works for n1.
  EXPECT_TRUE(c.Restart(0).ok()) << c.LogTail(0);
}

TEST_F(StartupTest, ClientPortHeldByAnotherSocketIsRefused) {
  // A plain listening socket without SO_REUSEPORT: keeld must not share it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  const std::string dir = ::testing::TempDir() + "keel-port-in-use-" + std::to_string(getpid());
  CommandResult r = RunKeeld({"--name", "solo", "--data-dir", dir, "--listen-client-urls",
                              "http://127.0.0.1:" + std::to_string(port), "--listen-peer-urls",
                              "http://127.0.0.1:" + std::to_string(PickFreePort())});
  close(fd);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "cannot listen")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, std::to_string(port))) << r.err;
  // One clear line (issue 4), not gRPC's internal error dump before it.
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
}

TEST_F(StartupTest, ClientPortOfARunningKeeldIsRefused) {
  ClusterOptions options;
  options.size = 1;
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  const std::string dir = c.root() + "/second.data";
  CommandResult r =
      RunKeeld({"--name", "second", "--data-dir", dir, "--listen-client-urls",
                "http://127.0.0.1:" + std::to_string(c.member(0).client_port), "--listen-peer-urls",
                "http://127.0.0.1:" + std::to_string(PickFreePort())});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "cannot listen")) << r.err;
  // The first keeld still serves.
  EXPECT_TRUE(c.Put(0, "still", "here").ok());
}

TEST_F(StartupTest, PeerPortOfARunningKeeldIsRefused) {
  ClusterOptions options;
  options.size = 1;
  Cluster& c = StartCluster(options);
  ASSERT_FALSE(HasFailure());
  const std::string dir = c.root() + "/second.data";
  CommandResult r =
      RunKeeld({"--name", "second", "--data-dir", dir, "--listen-client-urls",
                "http://127.0.0.1:" + std::to_string(PickFreePort()), "--listen-peer-urls",
                "http://127.0.0.1:" + std::to_string(c.member(0).peer_port)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "cannot listen")) << r.err;
}

TEST_F(StartupTest, MemberWithAnotherClusterTokenNeverJoins) {
  cluster_ = std::make_unique<Cluster>(ClusterOptions{});
  Cluster& c = *cluster_;
  std::vector<std::string>& flags = c.member(2).flags;
  for (size_t i = 0; i + 1 < flags.size(); ++i) {
    if (flags[i] == "--initial-cluster-token") flags[i + 1] = "some-other-cluster";
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Spawn(i).ok());
  for (int i = 0; i < 3; ++i) {
    absl::Status s = c.WaitServing(i, absl::Seconds(15));
    ASSERT_TRUE(s.ok()) << s;
  }
  // n1 and n2 are a quorum of the 3-member cluster and elect a leader among themselves.
  int leader = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 2; ++i) {
          auto s = c.Status(i, absl::Milliseconds(500));
          if (s.ok() && s->leader() != 0 && s->leader() == s->header().member_id()) leader = i;
        }
        return leader >= 0;
      },
      absl::Seconds(15)));
  ASSERT_TRUE(c.PutWithRetry(0, "k", "v").ok());
  // The stranger is refused, and both sides say why.
  auto mentions_mismatch = [&](int i) {
    return absl::StrContains(c.Log(i), "cluster id mismatch");
  };
  EXPECT_TRUE(
      WaitFor([&] { return mentions_mismatch(0) || mentions_mismatch(1); }, absl::Seconds(10)))
      << "the good members' logs should say they refused the stranger";
  EXPECT_TRUE(WaitFor([&] { return mentions_mismatch(2); }, absl::Seconds(10)))
      << "the stranger's log should say it was refused";
  // It never learns of a leader and cannot serve linearizable reads or writes.
  auto stranger = c.Status(2);
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  EXPECT_NE(stranger->header().cluster_id(), c.Status(0)->header().cluster_id());
  EXPECT_NE(stranger->leader(), c.member(leader).member_id);
  etcdserverpb::RangeResponse got;
  grpc::Status s = c.Get(2, "k", false, &got, absl::Seconds(2));
  EXPECT_FALSE(s.ok() && got.kvs_size() == 1) << "the stranger served the cluster's data";
  // Its serializable view does not contain the cluster's write either.
  got.Clear();
  s = c.Get(2, "k", true, &got, absl::Seconds(2));
  EXPECT_EQ(got.kvs_size(), 0);
}

}  // namespace
}  // namespace keel::integration
