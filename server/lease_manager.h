// LeaseManager: runs the Lessor (lessor.h) on the leader and routes lease calls that
// need the leader's live countdown.
//
// - Promotion / demotion. A thread checks the node every `tick`. When this member leads
//   term T and its lessor is not primary for T, it asks for a read barrier (which
//   completes once the leader committed an entry of T and this member applied everything
//   before it), then promotes the lessor from the state machine's lease table. When the
//   member stops leading (or the term moves on) the lessor is demoted at the next tick.
// - Expiry and checkpoints. While primary, each tick proposes a LeaseRevoke for every
//   expired lease (at most `revokes_per_tick`) and, every checkpoint interval, the
//   remaining TTLs in LeaseCheckpoint entries of at most `checkpoints_per_entry`
//   leases. Both are leader-only proposals for the lessor's term: a deposed leader's
//   decision never commits.
// - Keep-alive and time-to-live reach the leader: a follower FORWARDS them to the
//   leader's peer port (keel.internalpb.LeaseForward, proto/lease_forward.proto), so
//   unmodified etcd clients may keep leases alive through any member. A request that
//   finds no leader, or a leader whose lessor is not promoted yet, waits (re-tried every
//   tick) until its deadline; a forwarded request is never forwarded again.
//
// Thread-safety: every public method may be called from any thread. Callbacks run on
// gRPC, raft, apply or the manager's own thread and must be quick.
// Ownership: the node, store and member directory must outlive the manager; call Stop
// after RaftNode::Stop and before destroying them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "proto/lease_forward.grpc.pb.h"
#include "server/lessor.h"
#include "server/membership.h"
#include "server/raft_node.h"
#include "storage/kv_store.h"

namespace keel::server {

struct LeaseManagerOptions {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  LessorOptions lessor;
  // How often the manager checks leadership, expiry, checkpoints and waiting requests.
  absl::Duration tick = absl::Milliseconds(50);
  // Deadline of the manager's own proposals and of the promotion barrier.
  absl::Duration request_timeout = absl::Seconds(5);
  size_t revokes_per_tick = 100;
  size_t checkpoints_per_entry = 1000;
  // Requests waiting for a leader; past it, "too many requests".
  size_t waiting_max = 10'000;
};

class LeaseManager {
 public:
  LeaseManager(LeaseManagerOptions options, storage::KvStore* kv, MemberDirectory* members);
  ~LeaseManager();  // Stop()s.
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  // The node is created after the manager (the node's on_applied hook calls OnApplied);
  // attach it before the node starts, Start the thread after.
  void Attach(RaftNode* node) { node_ = node; }
  void Start();
  // Fails every waiting request with "server stopped", cancels forwarded calls and
  // waits for their callbacks, joins the thread. Idempotent.
  void Stop();

  // RaftNode::Options::on_applied: tells the lessor about applied grants and revokes.
  void OnApplied(const std::vector<raftpb::Entry>& entries,
                 const std::vector<storage::ApplyResult>& results);

  // Renews lease `id`; `done` gets the granted TTL, 0 if the lease does not exist or
  // expired (etcd answers a keep-alive of an unknown lease with TTL 0), or an error
  // (no leader, timed out, stopped). `forwarded`: the request came from another member.
  using RenewCallback = std::function<void(absl::StatusOr<int64_t>)>;
  void Renew(int64_t id, absl::Time deadline, bool forwarded, RenewCallback done);

  // The leader's view of a lease: TTL is the live remaining TTL (-1 if the lease does
  // not exist or expired), keys from the leader's state machine when asked.
  using TimeToLiveCallback =
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)>;
  void TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request, absl::Time deadline,
                  bool forwarded, TimeToLiveCallback done);

  // For Status-like reporting and tests.
  [[nodiscard]] bool primary() const { return lessor_.primary(); }

 private:
  // A request that waits for a leader (or for this leader's promotion).
  struct Waiting {
    absl::Time deadline;
    std::function<void()> retry;
    std::function<void(absl::Status)> fail;
  };
  enum class Route { kLocal, kWait, kForward, kRefuse };

  void Loop();
  void Tick();
  void MaybePromote(const NodeStatus& status);
  void ProposeRevokes();
  void ProposeCheckpoints();
  // Where a lease call goes now; for kForward, *leader_address is the leader's peer
  // address.
  Route RouteCall(bool forwarded, std::string* leader_address);
  void RenewLocal(int64_t id, absl::Time deadline, bool after_barrier, RenewCallback done);
  void TimeToLiveLocal(const etcdserverpb::LeaseTimeToLiveRequest& request, absl::Time deadline,
                       TimeToLiveCallback done);
  // Queues `w`; an error when stopped or full (the caller then fails the request).
  [[nodiscard]] absl::Status Wait(Waiting w);
  // Runs `retry` at a later tick, or answers `done` with the reason it cannot wait.
  template <typename Callback>
  void WaitThen(absl::Time deadline, std::function<void()> retry, Callback done);
  // Starts one LeaseForward call on a stub.
  template <typename Req, typename Resp>
  using ForwardMethod = void (*)(internalpb::LeaseForward::Stub*, grpc::ClientContext*, const Req*,
                                 Resp*, std::function<void(grpc::Status)>);
  // Sends `request` to the leader at `address`; `done` gets the answer. If the leader is
  // gone (UNAVAILABLE) before `deadline`, `retry` runs at a later tick instead.
  template <typename Req, typename Resp>
  void Forward(const std::string& address, const Req& request, absl::Time deadline,
               ForwardMethod<Req, Resp> method, std::function<void(absl::StatusOr<Resp>)> done,
               std::function<void()> retry);
  // Runs `fn` on the manager thread.
  void Post(std::function<void()> fn);
  [[nodiscard]] internalpb::LeaseForward::Stub* ForwardStub(const std::string& address);
  // Tracks one forwarded call; false when stopped.
  [[nodiscard]] bool BeginForward(grpc::ClientContext* context);
  void EndForward(grpc::ClientContext* context);

  const LeaseManagerOptions options_;
  storage::KvStore* const kv_;
  MemberDirectory* const members_;
  RaftNode* node_ = nullptr;
  Lessor lessor_;

  // Orders the lessor's decisions with their proposals: a checkpoint round and a
  // renewal's checkpoint clear reach raft in the order the lessor took them.
  // Never taken in a proposal callback.
  std::mutex propose_mu_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                     // Guarded by mu_.
  std::deque<Waiting> waiting_;               // Guarded by mu_.
  std::deque<std::function<void()>> posted_;  // Guarded by mu_.
  uint64_t barrier_term_ = 0;                 // Promotion barrier asked for this term; mu_.
  uint64_t barrier_done_term_ = 0;            // ... and completed for this one; mu_.
  std::set<grpc::ClientContext*> forwards_;   // In flight; guarded by mu_.
  std::map<std::string, std::unique_ptr<internalpb::LeaseForward::Stub>> stubs_;  // mu_.

  std::thread thread_;
};

}  // namespace keel::server
