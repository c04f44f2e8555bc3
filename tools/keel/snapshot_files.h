// `keel snapshot status|restore`: reading a saved snapshot file (storage/snapshot_file.h)
// offline, with keel's own storage code. No network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace keel::cli {

struct SnapshotFileStatus {
  uint32_t hash = 0;       // HashKV of the snapshot's newest revision (as endpoint hashkv).
  int64_t revision = 0;    // The store's revision.
  int64_t total_keys = 0;  // Live keys at that revision.
  int64_t total_size = 0;  // Bytes of the snapshot file.
};

// Verifies the file (whole-file and per-chunk checksums), unpacks it into a temporary
// directory and reads its state. kDataLoss for a corrupt, truncated or non-keel file.
[[nodiscard]] absl::StatusOr<SnapshotFileStatus> ReadSnapshotStatus(const std::string& path);

struct RestoreOptions {
  std::string data_dir;
  std::string name = "default";
  std::string initial_cluster;  // Default: "<name>=<first advertise peer url>".
  std::string initial_cluster_token = "keel-cluster";
  std::vector<std::string> initial_advertise_peer_urls = {"http://127.0.0.1:2380"};
};

// Makes `options.data_dir` (must not exist, or be empty) the data dir of member `name`
// of a NEW cluster whose state machine is the snapshot's: same keys, values, revision,
// compaction point and leases; applied index 0, no client sessions, no alarms; no raft
// log yet — keeld, started with the same --name, --initial-cluster,
// --initial-cluster-token and --initial-advertise-peer-urls (and
// --initial-cluster-state new), writes the new cluster's first log entries, so its
// cluster and member ids are new. kInvalidArgument for inconsistent flags.
[[nodiscard]] absl::StatusOr<SnapshotFileStatus> RestoreSnapshot(const std::string& path,
                                                                 const RestoreOptions& options);

}  // namespace keel::cli
