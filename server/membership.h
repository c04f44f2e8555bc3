// Cluster membership as keeld knows it from its configuration, and the stable ids
// derived from it (as etcd derives them: the same flags give the same ids on every
// member and across restarts).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace keel::server {

struct MemberInfo {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;  // Learned from each peer's handshake.
  bool is_learner = false;
};

// The members as this keeld knows them, for Cluster.MemberList. Client URLs of the
// other members arrive with their peer connections. Thread-safe.
class MemberDirectory {
 public:
  explicit MemberDirectory(std::vector<MemberInfo> members) : members_(std::move(members)) {}
  // `client_urls` is comma-separated; unknown ids are ignored.
  void SetClientUrls(uint64_t id, const std::string& client_urls);
  [[nodiscard]] std::vector<MemberInfo> List() const;

 private:
  mutable std::mutex mu_;
  std::vector<MemberInfo> members_;  // Guarded by mu_.
};

// A member's id: a hash of its peer URLs and the cluster token (never 0).
[[nodiscard]] uint64_t ComputeMemberId(const std::vector<std::string>& peer_urls,
                                       const std::string& cluster_token);
// The cluster's id: a hash of its initial member ids (order-independent; never 0).
[[nodiscard]] uint64_t ComputeClusterId(std::vector<uint64_t> member_ids,
                                        const std::string& cluster_token);

}  // namespace keel::server
