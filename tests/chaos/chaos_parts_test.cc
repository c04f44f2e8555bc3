// The pure parts of keel-chaos: fault lists, partition cuts, the history's JSON lines
// (read back by the checker's parser) and how a write's gRPC status becomes an outcome.
#include <algorithm>

#include "gtest/gtest.h"
#include "tests/chaos/faults.h"
#include "tests/chaos/history.h"
#include "tests/chaos/netns.h"
#include "tests/chaos/workload.h"
#include "tools/lincheck/history.h"

namespace keel::chaos {
namespace {

TEST(ChaosFaultsTest, ParsesGroupsAndNames) {
  auto faults = ParseFaults("kill,isolate-leader", /*netns=*/true, /*failpoints=*/false);
  ASSERT_TRUE(faults.ok()) << faults.status();
  EXPECT_EQ(*faults,
            (std::vector<Fault>{Fault::kKillMember, Fault::kKillLeader, Fault::kIsolateLeader}));
  auto all = ParseFaults("all", /*netns=*/false, /*failpoints=*/false);
  ASSERT_TRUE(all.ok());
  // Membership faults need neither namespaces nor failpoints.
  EXPECT_EQ(*all,
            (std::vector<Fault>{Fault::kKillMember, Fault::kKillLeader, Fault::kPauseMember,
                                Fault::kPauseLeader, Fault::kMoveLeader, Fault::kReplaceMember}));
  auto member = ParseFaults("member,kill-leader", /*netns=*/false, /*failpoints=*/false);
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_EQ(*member,
            (std::vector<Fault>{Fault::kKillLeader, Fault::kMoveLeader, Fault::kReplaceMember}));
  auto one = ParseFaults("replace-member", /*netns=*/false, /*failpoints=*/false);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, (std::vector<Fault>{Fault::kReplaceMember}));
  EXPECT_STREQ(FaultName(Fault::kMoveLeader), "move-leader");
  EXPECT_NE(ParseFaults("members", true, true).status().message().find("member,"),
            std::string::npos);  // The error lists the groups, "member" among them.
  EXPECT_EQ(ParseFaults("partition", false, true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFaults("net", true, false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFaults("kil", true, true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseFaults("", true, true).ok());
}

TEST(ChaosNetworkTest, CutBlocksEveryPairAcrossGroupsBothWays) {
  const auto links = Cut({{0}, {1, 2}});
  EXPECT_EQ(links, (std::set<NetworkLab::Link>{{0, 1}, {0, 2}, {1, 0}, {2, 0}}));
  // A bridge member (3) in no group keeps every link.
  for (const auto& [from, to] : Cut({{0, 1}, {2}})) {
    EXPECT_NE(from, 3);
    EXPECT_NE(to, 3);
  }
}

TEST(ChaosHistoryTest, JsonLinesReadBackByTheChecker) {
  OpRecord cas;
  cas.id = 7;
  cas.process = 2;
  cas.key = "k1";
  cas.type = OpType::kCas;
  cas.expect = "w1-3";
  cas.value = "w2-9";
  cas.start_ns = 1200;
  cas.end_ns = 1900;
  cas.outcome = Outcome::kOk;
  cas.cas_succeeded = true;
  cas.member = 1;
  cas.error = "tab\there \"quoted\"";
  auto parsed = lincheck::ParseOperation(ToJsonLine(cas), 1);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << ToJsonLine(cas);
  EXPECT_EQ(parsed->id, 7u);
  EXPECT_EQ(parsed->type, lincheck::OpType::kCas);
  EXPECT_EQ(parsed->expect, "w1-3");
  EXPECT_EQ(parsed->value, "w2-9");
  EXPECT_EQ(parsed->end_ns, 1900u);
  EXPECT_TRUE(parsed->cas_succeeded);

  OpRecord write;
  write.id = 8;
  write.key = "k1";
  write.type = OpType::kWrite;
  write.value = "w2-10";
  write.start_ns = 2000;
  write.end_ns = 2500;  // Not written: the outcome is unknown.
  write.outcome = Outcome::kUnknown;
  parsed = lincheck::ParseOperation(ToJsonLine(write), 1);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->outcome, lincheck::Outcome::kUnknown);
  EXPECT_EQ(parsed->end_ns, 0u);

  OpRecord read;
  read.id = 9;
  read.key = "k1";
  read.type = OpType::kRead;
  read.start_ns = 3000;
  read.end_ns = 3100;
  read.outcome = Outcome::kOk;
  read.found = true;
  read.result = "w2-10";
  parsed = lincheck::ParseOperation(ToJsonLine(read), 1);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->found);
  EXPECT_EQ(parsed->result, "w2-10");
}

TEST(ChaosWorkloadTest, WritesRefusedBeforeProposingFailOthersAreUnknown) {
  using grpc::Status;
  using grpc::StatusCode;
  EXPECT_EQ(ClassifyWrite(Status::OK), Outcome::kOk);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE, "etcdserver: no leader")),
            Outcome::kFail);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE, "etcdserver: leader changed")),
            Outcome::kFail);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::RESOURCE_EXHAUSTED, "etcdserver: too many requests")),
            Outcome::kFail);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE,
                                 "failed to connect to all addresses; last error: refused")),
            Outcome::kFail);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE, "etcdserver: request timed out")),
            Outcome::kUnknown);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE, "etcdserver: server stopped")),
            Outcome::kUnknown);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::UNAVAILABLE, "Socket closed")), Outcome::kUnknown);
  EXPECT_EQ(ClassifyWrite(Status(StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded")),
            Outcome::kUnknown);
}

}  // namespace
}  // namespace keel::chaos
