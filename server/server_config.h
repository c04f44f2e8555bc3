// keeld's configuration: etcd-style flags, the same settings from a config file
// (--config-file, TOML/INI key = value, keys named like the flags), and the checks that
// turn a wrong setup into one clear line instead of a half-started node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/membership.h"

namespace keel::server {

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // Default: "<name>.keel".
  std::vector<std::string> listen_client_urls = {"http://127.0.0.1:2379"};
  std::vector<std::string> advertise_client_urls;  // Default: listen_client_urls.
  std::vector<std::string> listen_peer_urls = {"http://127.0.0.1:2380"};
  std::vector<std::string> initial_advertise_peer_urls;  // Default: listen_peer_urls.
  std::string initial_cluster;                // "name=url,name=url"; default: this member alone.
  std::string initial_cluster_state = "new";  // "new" or "existing".
  std::string initial_cluster_token = "keel-cluster";
  int heartbeat_interval_ms = 100;
  int election_timeout_ms = 1000;
  uint64_t snapshot_count = 10'000;
  uint64_t snapshot_catchup_entries = 5'000;
  uint64_t max_request_bytes = 1536 * 1024;
  int64_t max_txn_ops = 128;
  uint64_t block_cache_bytes = 256ull << 20;
  // etcd's --quota-backend-bytes: once the state machine's live data (KvStore::Space)
  // exceeds it, a NOSPACE alarm makes the cluster read-and-delete-only. etcd defaults
  // to 2 GiB because bbolt's file must fit in memory-mapped space; keel's RocksDB has
  // no such ceiling, so the default is a guard against runaway growth: 8 GiB.
  // 0: no quota.
  int64_t quota_backend_bytes = int64_t{8} << 30;
  // etcd's --experimental-corrupt-check-time: how often the leader compares every
  // member's data hash with its own and raises a CORRUPT alarm on a mismatch
  // (server/corruption_check.h). 0: off, etcd's default (each round scans all data).
  absl::Duration corrupt_check_time = absl::ZeroDuration();
  // Test builds only (KEEL_FAILPOINTS; common/failpoint.h): fault settings re-read from
  // this file, and UNSAFE bug switches. Release builds have no flags for them.
  std::string failpoints_file;
  std::vector<std::string> unsafe_bugs;
  // How often the leader records every lease's remaining TTL through raft, so a new
  // leader resumes leases from it (server/lessor.h) instead of from their full TTL.
  int lease_checkpoint_interval_ms = 5000;

  // Derived by Resolve().
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  std::vector<MemberInfo> members;  // Sorted by id.
};

// Parses argv (and the config file it names). Errors: kInvalidArgument with one line
// naming the bad flag; `--help` / `--version` come back as kCancelled carrying the text
// to print.
[[nodiscard]] absl::StatusOr<ServerConfig> ParseServerConfig(int argc, char** argv);

// Checks the settings against each other and derives ids and the member list.
[[nodiscard]] absl::Status Resolve(ServerConfig* config);

// "http://host:port" -> "host:port" for gRPC (only plain http for now).
[[nodiscard]] absl::StatusOr<std::string> UrlToAddress(const std::string& url);

}  // namespace keel::server
