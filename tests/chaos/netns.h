// NetworkLab: a private network for a chaos run, built from Linux network namespaces,
// so partitions can be made without touching the host's network.
//
//   namespace <prefix>br:  bridge br0 (client address 10.211.0.1/24) and one veth
//                          per member attached to it; the chaos driver runs here
//   namespace <prefix>nI:  eth0 = 10.211.0.(10+I)/24, the other end of member I's veth
//
// Every address exists only inside these namespaces. <prefix> is "kchaos<pid>-", so
// concurrent runs never collide and a run can tell its namespaces from a crashed run's
// (RemoveStale, called before creating new ones). Partitions are iptables DROP rules on
// INPUT inside the member namespaces (silent, like a real partition: the sender sees no
// error); the client address is never blocked, so clients keep reaching every member.
//
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and the `ip` and `iptables-restore` commands.
// Thread-safety: one thread at a time.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace keel::chaos {

class NetworkLab {
 public:
  // A blocked (from, to) pair: packets from member `from` are dropped at member `to`.
  using Link = std::pair<int, int>;

  // Creates the namespaces, bridge, veths and addresses for `members` members.
  // Errors name the command that failed and what it printed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NetworkLab>> Create(int members);
  // Deletes every namespace this lab created (which also removes its veths).
  ~NetworkLab();
  NetworkLab(const NetworkLab&) = delete;
  NetworkLab& operator=(const NetworkLab&) = delete;

  // Deletes namespaces left by chaos runs whose process is gone (crashed or killed).
  // Returns how many were removed.
  static int RemoveStale();

  // Moves the calling thread into the bridge namespace. Call it from main() before any
  // other thread exists: threads created afterwards inherit the namespace.
  [[nodiscard]] absl::Status EnterBridgeNamespace();

  int members() const { return members_; }
  std::string member_address(int i) const;
  std::string client_address() const { return "10.211.0.1"; }
  // "/var/run/netns/<name>", for a child process to setns() into.
  std::string member_netns_path(int i) const;

  // Replaces every partition rule: exactly the links in `blocked` drop packets.
  [[nodiscard]] absl::Status SetBlocked(const std::set<Link>& blocked);
  const std::set<Link>& blocked() const { return blocked_; }

 private:
  NetworkLab(std::string prefix, int members) : prefix_(std::move(prefix)), members_(members) {}
  [[nodiscard]] absl::Status Build();
  std::string bridge_ns() const { return prefix_ + "br"; }
  std::string member_ns(int i) const;

  const std::string prefix_;
  const int members_;
  std::vector<std::string> created_;  // Namespaces to delete.
  std::set<Link> blocked_;
  std::vector<std::string> rules_;  // Per member: the iptables rules last loaded.
};

// The links a partition of the members into `groups` blocks: every pair in different
// groups, both directions. Members in no group are not cut off from anyone.
std::set<NetworkLab::Link> Cut(const std::vector<std::vector<int>>& groups);

}  // namespace keel::chaos
