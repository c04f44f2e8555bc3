// GoogleTest fixture for integration tests: owns one Cluster and, when a test fails,
// prints the tail of every member's log before the cluster is torn down (all members
// SIGKILLed, temp dirs removed).
#pragma once

#include <cstdio>
#include <memory>

#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace keel::integration {

class ClusterTest : public ::testing::Test {
 protected:
  // Creates and starts a cluster; the test fails (fatally) if it does not come up.
  Cluster& StartCluster(ClusterOptions options) {
    cluster_ = std::make_unique<Cluster>(std::move(options));
    absl::Status status = cluster_->Start();
    EXPECT_TRUE(status.ok()) << status;
    return *cluster_;
  }

  void TearDown() override {
    if (cluster_ && HasFailure()) {
      std::fprintf(stderr, "%s", cluster_->AllLogTails(40).c_str());
    }
    cluster_.reset();
  }

  std::unique_ptr<Cluster> cluster_;
};

// Key/value helpers shared by tests.
inline std::string KeyOf(const std::string& prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05d", i);
  return prefix + buf;
}
inline std::string ValueOf(int i) { return "value-" + std::to_string(i); }

}  // namespace keel::integration
