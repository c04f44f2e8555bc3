// KeelServer: one keeld member, wired together — data directory and identity, the Raft
// log and state-machine stores, the node loop, the peer transport and its gRPC port,
// and the client API's gRPC port.
//
// Data directory layout:
//   <data-dir>/member   this member's identity (name, member id, cluster id)
//   <data-dir>/log/     the Raft log (storage::RaftLogStore)
//   <data-dir>/kv/      the state machine (storage::KvStore)
//   <data-dir>/snap/    state-machine snapshots (checkpoints, received snapshots)
//
// Thread-safety: Start and Shutdown from one thread; the getters from any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/client_services.h"
#include "server/corruption_check.h"
#include "server/executor.h"
#include "server/peer_transport.h"
#include "server/raft_node.h"
#include "server/server_config.h"
#include "server/space_quota.h"
#include "server/watch_hub.h"
#include "server/watch_service.h"
#include "storage/kv_store.h"
#include "storage/raft_log_store.h"

namespace keel::server {

class KeelServer {
 public:
  // Opens (or bootstraps) the member and starts serving. Errors name what is wrong:
  // a data dir of another member or cluster, a corrupt log, a port in use.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeelServer>> Start(
      const ServerConfig& config);
  ~KeelServer();

  // Graceful stop: a leader first hands leadership to another voter; new client
  // requests are refused, in-flight ones get up to `grace` to finish, then the rest
  // fail with "server stopped"; files are closed. Idempotent.
  void Shutdown(absl::Duration grace);

  // Non-OK once the node stopped on a fatal error (e.g. a storage failure).
  [[nodiscard]] absl::Status fatal_error() const { return node_->fatal_error(); }
  // This member was removed from the cluster (and another member leads): keeld stops.
  [[nodiscard]] bool removed() const { return removed_.load(); }
  [[nodiscard]] const ServerConfig& config() const { return config_; }
  [[nodiscard]] std::string Describe() const;

 private:
  explicit KeelServer(ServerConfig config) : config_(std::move(config)) {}
  [[nodiscard]] absl::Status Open();
  // --initial-cluster-state existing on an empty data dir: asks the members listed in
  // --initial-cluster (their peer ports) for this member's id and the cluster's.
  [[nodiscard]] absl::Status DiscoverJoin();
  // Apply thread: a new applied membership record.
  void OnMembership(const internalpb::MembershipRecord& record);
  // Keeps the transport's peers in step with the membership (its own thread: adding
  // and removing peers joins transport threads).
  void MembershipLoop();

  ServerConfig config_;
  std::unique_ptr<storage::RaftLogStore> log_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<RaftNode> node_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<Executor> read_executor_;
  std::unique_ptr<MemberDirectory> members_;
  std::unique_ptr<LeaseManager> lease_manager_;
  std::unique_ptr<SpaceQuota> space_quota_;
  std::unique_ptr<CorruptionCheck> corruption_check_;
  ClientServiceContext service_context_;
  std::unique_ptr<KvService> kv_service_;
  std::unique_ptr<LeaseService> lease_service_;
  std::unique_ptr<LeaseForwardService> lease_forward_service_;
  std::unique_ptr<MaintenanceService> maintenance_service_;
  std::unique_ptr<ClusterService> cluster_service_;
  std::unique_ptr<WatchHub> watch_hub_;  // Fed by the node's apply thread.
  std::unique_ptr<WatchService> watch_service_;
  std::unique_ptr<grpc::Server> peer_server_;
  std::unique_ptr<grpc::Server> client_server_;
  bool shut_down_ = false;
  MemberChangeForwarder member_forwarder_;
  std::unique_ptr<ClusterService> cluster_peer_service_;  // On the peer port.
  // Membership seen by a joining member before its own record lists anyone.
  internalpb::MembershipRecord discovered_;
  std::mutex membership_mu_;
  std::condition_variable membership_cv_;
  std::optional<internalpb::MembershipRecord> membership_pending_;  // membership_mu_.
  bool membership_stopping_ = false;                                // membership_mu_.
  std::map<uint64_t, std::string> transport_peers_;  // Membership thread: id -> address.
  std::thread membership_thread_;
  std::atomic<bool> removed_{false};
  int data_dir_lock_fd_ = -1;  // flock()ed while this keeld owns the data dir.
};

}  // namespace keel::server
