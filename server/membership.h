// Cluster membership as keeld knows it from its configuration, and the stable ids
// derived from it (as etcd derives them: the same flags give the same ids on every
// member and across restarts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::server {

struct MemberInfo {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;  // Known for this member; empty for others for now.
  bool is_learner = false;
};

// A member's id: a hash of its peer URLs and the cluster token (never 0).
[[nodiscard]] uint64_t ComputeMemberId(const std::vector<std::string>& peer_urls,
                                       const std::string& cluster_token);
// The cluster's id: a hash of its initial member ids (order-independent; never 0).
[[nodiscard]] uint64_t ComputeClusterId(std::vector<uint64_t> member_ids,
                                        const std::string& cluster_token);

}  // namespace keel::server
