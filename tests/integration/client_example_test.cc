// The client library's example program (client/examples/cas_counter.cc) against a
// real 3-member cluster: 4 threads x 50 compare-and-swap increments must add exactly
// 200, twice in a row on the same key.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using ClientExampleTest = ClusterTest;

TEST_F(ClientExampleTest, CasCounterAddsEveryIncrementOnce) {
  Cluster& c = StartCluster({});
  std::vector<std::string> endpoints;
  for (int i = 0; i < c.size(); ++i) endpoints.push_back(c.client_address(i));
  const std::vector<std::string> argv = {
      CAS_COUNTER_PATH, absl::StrCat("--endpoints=", absl::StrJoin(endpoints, ",")),
      "--key=example/counter", "--threads=4", "--increments=50"};
  CommandResult first = RunCommand(argv, "", {}, absl::Seconds(60));
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("example/counter = 200 (expected 200;"), std::string::npos) << first.out;
  CommandResult second = RunCommand(argv, "", {}, absl::Seconds(60));
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("example/counter = 400 (expected 400;"), std::string::npos)
      << second.out;

  CommandResult usage = RunCommand({CAS_COUNTER_PATH}, "", {}, absl::Seconds(10));
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

}  // namespace
}  // namespace keel::integration
