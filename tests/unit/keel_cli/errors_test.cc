#include "tools/keel/errors.h"

#include "gtest/gtest.h"

namespace keel::cli {
namespace {

Probe Up(const std::string& endpoint, uint64_t id, uint64_t leader) {
  keel::StatusResponse s;
  s.mutable_header()->set_member_id(id);
  s.set_leader(leader);
  return {endpoint, s, absl::Milliseconds(1)};
}
Probe Down(const std::string& endpoint) {
  return {endpoint, absl::UnavailableError("connection refused"), absl::Milliseconds(1)};
}

GlobalFlags Flags() {
  GlobalFlags f;
  f.endpoints = {"127.0.0.1:2379"};
  return f;
}

TEST(ExplainTest, MajorityDownIsNoLeaderWithTheMembersNamed) {
  const Failure f = ExplainFailure(
      absl::DeadlineExceededError("deadline"), Flags(),
      {Up("127.0.0.1:2379", 1, 0), Down("127.0.0.1:22379"), Down("127.0.0.1:32379")});
  EXPECT_EQ(f.exit_code, kExitUnavailable);
  EXPECT_EQ(f.message,
            "no leader: 2 of 3 members unreachable (127.0.0.1:22379, 127.0.0.1:32379); start "
            "them: 2 of 3 must run");
}

TEST(ExplainTest, NoMemberReachable) {
  const Failure f =
      ExplainFailure(absl::UnavailableError("no member answered:\nrefused"), Flags(), {});
  EXPECT_EQ(f.exit_code, kExitUnavailable);
  EXPECT_EQ(f.message,
            "cannot reach any member at 127.0.0.1:2379 within 2s (--dial-timeout); is the "
            "cluster up? Check --endpoints or KEEL_ENDPOINTS");
}

TEST(ExplainTest, QuorumButNoLeaderYet) {
  const Failure f = ExplainFailure(absl::UnavailableError("etcdserver: no leader"), Flags(),
                                   {Up("a:1", 1, 0), Up("b:1", 2, 0), Down("c:1")});
  EXPECT_EQ(f.exit_code, kExitUnavailable);
  EXPECT_NE(f.message.find("no leader: none of the 2 reachable members"), std::string::npos)
      << f.message;
}

TEST(ExplainTest, TimeoutWithALeaderIsATimeout) {
  GlobalFlags flags = Flags();
  flags.command_timeout = absl::Seconds(3);
  const Failure f = ExplainFailure(absl::DeadlineExceededError("slow"), flags,
                                   {Up("a:1", 1, 2), Up("b:1", 2, 2), Down("c:1")});
  EXPECT_EQ(f.exit_code, kExitTimeout);
  EXPECT_EQ(f.message,
            "timed out after 3s (--command-timeout): slow; unreachable: c:1; the leader is b:1: "
            "retry, or raise --command-timeout");
}

TEST(ExplainTest, ServerErrorsGetAHintAndTheirExitCode) {
  const Failure compacted = ExplainFailure(
      absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted"), Flags(), {});
  EXPECT_EQ(compacted.exit_code, kExitFailed);
  EXPECT_NE(compacted.message.find(": read at a newer --rev"), std::string::npos);
  const Failure bad =
      ExplainFailure(absl::InvalidArgumentError("etcdserver: key is not provided"), Flags(), {});
  EXPECT_EQ(bad.exit_code, kExitUsage);
  EXPECT_EQ(OneLine(std::string(400, 'x')).size(), 300u + std::string("…").size());
  EXPECT_EQ(OneLine("keel: a\nb"), "a; b");
}

}  // namespace
}  // namespace keel::cli
