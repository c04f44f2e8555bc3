// Cluster.MemberAdd / MemberRemove / MemberUpdate / MemberPromote and
// Maintenance.MoveLeader.
//
// A membership change is decided by the leader: it checks the request against the
// applied membership (etcd's errors), its raft thread checks quorum, learner sync and
// that no other change is pending (RaftNode::ProposeConfChange), and the answer comes
// once the conf-change entry applied on the leader. A follower forwards the call to the
// leader's peer port (metadata keel-forwarded, never forwarded twice; keel-cluster-id,
// refused by a member of another cluster), and answers once it has applied the change
// itself (a read barrier), so a MemberList on the same member right after a MemberAdd
// lists the new member, as etcd's members do (they answer once they applied it).
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/client_services.h"
#include "server/errors.h"
#include "server/server_config.h"
#include "server/service_helpers.h"

namespace keel::server {

constexpr char kForwardedKey[] = "keel-forwarded";
constexpr char kClusterIdKey[] = "keel-cluster-id";

etcdserverpb::Cluster::Stub* MemberChangeForwarder::Stub(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& stub = stubs_[address];
  if (!stub) {
    stub = etcdserverpb::Cluster::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  return stub.get();
}

namespace {

void FillMember(const MemberInfo& m, etcdserverpb::Member* out) {
  out->set_id(m.id);
  out->set_name(m.name);
  for (const auto& u : m.peer_urls) out->add_peerurls(u);
  for (const auto& u : m.client_urls) out->add_clienturls(u);
  out->set_islearner(m.is_learner);
}

template <typename Resp>
void FillMembers(const ClientServiceContext* ctx, Resp* resp) {
  resp->clear_members();
  for (const auto& m : ctx->members->List()) FillMember(m, resp->add_members());
}

// Where the call is served: here (the leader), forwarded (a follower), or refused.
// On forwarding, `address` is the leader's peer address.
absl::Status Route(const ClientServiceContext* ctx, grpc::CallbackServerContext* call, bool* local,
                   std::string* address) {
  const std::string cluster(Metadata(call, kClusterIdKey));
  uint64_t caller_cluster = 0;
  if (!cluster.empty() &&
      (!absl::SimpleAtoi(cluster, &caller_cluster) || caller_cluster != ctx->cluster_id)) {
    return absl::FailedPreconditionError(absl::StrCat("keel: a member of cluster ", cluster,
                                                      " forwarded a membership change to cluster ",
                                                      absl::Hex(ctx->cluster_id)));
  }
  const uint64_t leader = ctx->node->leader_id();
  if (leader == ctx->member_id) {
    *local = true;
    return absl::OkStatus();
  }
  *local = false;
  if (!Metadata(call, kForwardedKey).empty()) return ErrNotLeader();
  if (leader == 0) return ErrNoLeader();
  const internalpb::MembershipRecord record = ctx->members->Record();
  const internalpb::MemberRecord* m = FindMember(record, leader);
  if (m == nullptr || m->peer_urls().empty()) return ErrNoLeader();
  auto addr = UrlToAddress(m->peer_urls(0));
  if (!addr.ok()) return ErrNoLeader();
  *address = *addr;
  return absl::OkStatus();
}

// Forwards one call to the leader's peer port; once the leader answered OK, waits until
// this member applied the change too, then answers with what the leader answered.
template <typename Req, typename Resp, typename Method>
void Forward(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
             grpc::ServerUnaryReactor* reactor, const std::string& address, const Req* req,
             Resp* resp, Method method, bool wait_applied) {
  struct Outgoing {
    grpc::ClientContext context;
  };
  auto out = std::make_shared<Outgoing>();
  const absl::Time deadline = CallDeadline(call, ctx->request_timeout);
  out->context.set_deadline(absl::ToChronoTime(deadline));
  out->context.AddMetadata(kForwardedKey, "1");
  out->context.AddMetadata(kClusterIdKey, absl::StrCat(ctx->cluster_id));
  etcdserverpb::Cluster::Stub* stub = ctx->member_forwarder->Stub(address);
  method(stub->async(), &out->context, req, resp,
         [ctx, reactor, out, deadline, wait_applied](grpc::Status status) {
           if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
             status = ToGrpcStatus(ErrTimeout());
           } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                      status.error_message().rfind("etcdserver: ", 0) != 0) {
             status = ToGrpcStatus(ErrLeaderChanged());  // The leader's port went away.
           }
           if (!status.ok() || !wait_applied) return reactor->Finish(status);
           // The change is committed (the leader applied it): a barrier waits for this member
           // to apply everything committed, so it is in its member list when it answers.
           ctx->node->ReadBarrier(deadline, [reactor](absl::Status applied) {
             reactor->Finish(ToGrpcStatus(applied));
           });
         });
}

// The prologue every membership call shares: refused (answered here, true), forwarded to
// the leader (answered later, true), or to be decided here, on the leader (false).
// wait_applied = false: a forwarded call answers as soon as the leader did (a member
// removing itself stops once it applies that, and could not wait for it).
template <typename Req, typename Resp, typename Method>
bool RoutedElsewhere(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
                     grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp, Method method,
                     bool wait_applied = true) {
  bool local = false;
  std::string address;
  absl::Status status = Route(ctx, call, &local, &address);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return true;
  }
  if (local) return false;
  Forward(ctx, call, reactor, address, req, resp, method, wait_applied);
  return true;
}

// Answers `status` when it is an error; true then.
bool Refused(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  if (status.ok()) return false;
  reactor->Finish(ToGrpcStatus(status));
  return true;
}

template <typename Resp>
void ProposeAndAnswer(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
                      grpc::ServerUnaryReactor* reactor, raftpb::ConfChange change,
                      internalpb::ConfChangeContext context, Resp* resp,
                      std::function<void(Resp*)> fill = nullptr) {
  ctx->node->ProposeConfChange(std::move(change), std::move(context),
                               CallDeadline(call, ctx->request_timeout),
                               [ctx, reactor, resp, fill = std::move(fill)](absl::Status status) {
                                 if (status.ok()) {
                                   FillHeader(ctx, resp->mutable_header());
                                   FillMembers(ctx, resp);
                                   if (fill) fill(resp);
                                 }
                                 reactor->Finish(ToGrpcStatus(status));
                               });
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* call,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (RoutedElsewhere(ctx_, call, reactor, req, resp,
                      [](auto* async, auto* c, auto* rq, auto* rs, auto cb) {
                        async->MemberAdd(c, rq, rs, std::move(cb));
                      })) {
    return reactor;
  }
  const std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  if (Refused(reactor, CheckAdd(ctx_->members->Record(), urls, req->islearner()))) return reactor;
  // etcd's way: the peer URLs, the cluster token and the time, so a member re-added on
  // the same URLs after a removal gets a new id (a removed id never comes back).
  const uint64_t id = ComputeMemberId(urls, ctx_->cluster_token,
                                      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  raftpb::ConfChange change;
  change.set_type(req->islearner() ? raftpb::CONF_CHANGE_ADD_LEARNER
                                   : raftpb::CONF_CHANGE_ADD_NODE);
  change.set_node_id(id);
  internalpb::ConfChangeContext context;
  auto* m = context.mutable_member();
  m->set_id(id);
  for (const auto& u : urls) m->add_peer_urls(u);
  m->set_is_learner(req->islearner());
  MemberInfo added;
  added.id = id;
  added.peer_urls = urls;
  added.is_learner = req->islearner();
  ProposeAndAnswer<etcdserverpb::MemberAddResponse>(
      ctx_, call, reactor, change, context, resp,
      [added](etcdserverpb::MemberAddResponse* r) { FillMember(added, r->mutable_member()); });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* call,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (RoutedElsewhere(
          ctx_, call, reactor, req, resp,
          [](auto* async, auto* c, auto* rq, auto* rs, auto cb) {
            async->MemberRemove(c, rq, rs, std::move(cb));
          },
          /*wait_applied=*/req->id() != ctx_->member_id)) {
    return reactor;
  }
  if (Refused(reactor, CheckRemove(ctx_->members->Record(), req->id()))) return reactor;
  raftpb::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  change.set_node_id(req->id());
  ProposeAndAnswer(ctx_, call, reactor, change, internalpb::ConfChangeContext(), resp);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* call,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (RoutedElsewhere(ctx_, call, reactor, req, resp,
                      [](auto* async, auto* c, auto* rq, auto* rs, auto cb) {
                        async->MemberUpdate(c, rq, rs, std::move(cb));
                      })) {
    return reactor;
  }
  const std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  if (Refused(reactor, CheckUpdate(ctx_->members->Record(), req->id(), urls))) return reactor;
  raftpb::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_UPDATE_NODE);
  change.set_node_id(req->id());
  internalpb::ConfChangeContext context;
  context.mutable_member()->set_id(req->id());
  for (const auto& u : urls) context.mutable_member()->add_peer_urls(u);
  ProposeAndAnswer(ctx_, call, reactor, change, context, resp);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* call, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (RoutedElsewhere(ctx_, call, reactor, req, resp,
                      [](auto* async, auto* c, auto* rq, auto* rs, auto cb) {
                        async->MemberPromote(c, rq, rs, std::move(cb));
                      })) {
    return reactor;
  }
  if (Refused(reactor, CheckPromote(ctx_->members->Record(), req->id()))) return reactor;
  raftpb::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  change.set_node_id(req->id());
  ProposeAndAnswer(ctx_, call, reactor, change, internalpb::ConfChangeContext(), resp);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* call,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  auto* reactor = call->DefaultReactor();
  ctx_->node->MoveLeader(req->targetid(), CallDeadline(call, ctx_->request_timeout),
                         [ctx = ctx_, reactor, resp](absl::Status status) {
                           if (status.ok()) FillHeader(ctx, resp->mutable_header());
                           reactor->Finish(ToGrpcStatus(status));
                         });
  return reactor;
}

}  // namespace keel::server
