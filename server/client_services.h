// The etcd v3 client API served by keeld: KV (Range, Put, DeleteRange, Txn, Compact),
// Lease (Grant, Revoke, KeepAlive, TimeToLive, Leases), Maintenance.Status and
// Cluster.MemberList. Written on gRPC's callback API: a handler
// never blocks a thread while its request waits for raft; writes are answered from the
// apply thread, linearizable reads after their ReadIndex barrier on a small executor.
//
// Every response carries a ResponseHeader (cluster id, member id, revision, raft term),
// and errors use etcd's codes and texts (server/errors.h, storage/mvcc_errors.h).
//
// Thread-safety: gRPC calls the handlers concurrently; the services hold no mutable
// state of their own. Ownership: the node, store and executor must outlive the server.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"
#include "server/executor.h"
#include "server/lease_manager.h"
#include "server/membership.h"
#include "server/raft_node.h"
#include "server/space_quota.h"
#include "storage/kv_store.h"

namespace keel::server {

// Stubs of the leaders' Cluster services on their peer ports (cluster_service.cc).
class MemberChangeForwarder {
 public:
  etcdserverpb::Cluster::Stub* Stub(const std::string& address);

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<etcdserverpb::Cluster::Stub>> stubs_;  // mu_.
};

struct ClientServiceContext {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  RaftNode* node = nullptr;
  storage::KvStore* kv = nullptr;
  Executor* read_executor = nullptr;
  MemberDirectory* members = nullptr;
  LeaseManager* leases = nullptr;
  // etcd's minimum lease TTL (1.5 election timeouts, whole seconds): shorter grants are
  // raised to it, so a lease cannot expire during a normal leader election.
  int64_t min_lease_ttl_s = 2;
  // etcd's --max-request-bytes: larger requests get "request is too large".
  uint64_t max_request_bytes = 1536 * 1024;
  int64_t max_txn_ops = 128;
  // Server-side bound on any request's wait (a client deadline may shorten it).
  absl::Duration request_timeout = absl::Seconds(7);
  // Directories whose size Status reports as the database size.
  std::vector<std::string> data_dirs;
  // --quota-backend-bytes (null: none): writes that need space are refused up front
  // while it is exceeded (the state machine refuses them once NOSPACE is raised).
  const SpaceQuota* quota = nullptr;
  std::string version = "3.5.0";
  // --initial-cluster-token: part of an added member's id (membership.h).
  std::string cluster_token;
  // Where a follower sends membership changes: the leader's Cluster service on its peer
  // port (cluster_service.cc).
  MemberChangeForwarder* member_forwarder = nullptr;
};

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(const ClientServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* call,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* call,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* call,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* call,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* call,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override;

 private:
  const ClientServiceContext* ctx_;
};

// Lease: Grant and Revoke go through raft (any member); KeepAlive and TimeToLive reach
// the leader's lessor (forwarded by followers, lease_manager.h); Leases is a
// linearizable read of the lease table.
class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(const ClientServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* call,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* call,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* call) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* call,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* call,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  const ClientServiceContext* ctx_;
};

// keel.internalpb.LeaseForward on the peer port: the leader's side of the keep-alives
// and time-to-live queries that followers forward (proto/lease_forward.proto).
class LeaseForwardService final : public internalpb::LeaseForward::CallbackService {
 public:
  explicit LeaseForwardService(const ClientServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* call,
                                  const etcdserverpb::LeaseKeepAliveRequest* req,
                                  etcdserverpb::LeaseKeepAliveResponse* resp) override;
  grpc::ServerUnaryReactor* TimeToLive(grpc::CallbackServerContext* call,
                                       const etcdserverpb::LeaseTimeToLiveRequest* req,
                                       etcdserverpb::LeaseTimeToLiveResponse* resp) override;

 private:
  const ClientServiceContext* ctx_;
};

// Maintenance: Status, Alarm (GET answered locally; ACTIVATE/DEACTIVATE through raft),
// Defragment (a RocksDB flush + full compaction), Hash / HashKV (of the local state
// machine), Snapshot (a stream of keel's snapshot file, storage/snapshot_file.h).
class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(const ClientServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* call,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* call,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* call,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override;
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* call,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* call,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* call, const etcdserverpb::SnapshotRequest* req) override;
  // In cluster_service.cc, with the membership calls.
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* call,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override;

 private:
  const ClientServiceContext* ctx_;
};

// Cluster: MemberList answers this member's view of the applied membership; the
// changes (cluster_service.cc) are decided by the leader — a follower forwards them to
// the leader's peer port, where this service is served too (a joining member also
// asks it for its id and the cluster's).
class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(const ClientServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* call,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override;
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* call,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* call,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* call,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* call,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  const ClientServiceContext* ctx_;
};

}  // namespace keel::server
