// Compatibility with Debian's python3-etcd3 (0.12, on Debian's python3-grpcio and
// python3-protobuf): tests/integration/python/etcd3_compat.py against a real 3-member
// cluster that this test starts and tears down (no process outlives it).
#include "absl/strings/str_cat.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

constexpr char kPython[] = "/usr/bin/python3";  // Debian's, which has python3-etcd3.

TEST(PythonEtcd3Test, PutGetDeleteTxnWatchLeaseMembers) {
  CommandResult probe = RunCommand({kPython, "-c", "import etcd3"}, "", {}, absl::Seconds(30));
  if (probe.exit_code != 0) {
    GTEST_SKIP() << "python3-etcd3 not installed (tools/install-deps.sh): " << probe.err;
  }
  Cluster c{ClusterOptions{}};
  absl::Status started = c.Start();
  ASSERT_TRUE(started.ok()) << started;
  std::vector<std::string> argv = {kPython,
                                   KEEL_SOURCE_DIR "/tests/integration/python/etcd3_compat.py"};
  for (int i = 0; i < c.size(); ++i) argv.push_back(c.client_address(i));
  CommandResult r = RunCommand(argv, "", {}, absl::Seconds(90));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << c.AllLogTails(20);
  EXPECT_NE(r.out.find("all python3-etcd3 checks passed"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace keel::integration
