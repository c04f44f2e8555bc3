// Lease service (etcd's /etcdserverpb.Lease/*) and the leader's side of forwarded lease
// calls (keel.internalpb.LeaseForward).
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/client_services.h"
#include "server/errors.h"
#include "server/service_helpers.h"

namespace keel::server {
namespace {

// One LeaseKeepAlive stream: each request renews on the leader (LeaseManager::Renew)
// and is answered before the next one is read, so answers come in request order.
// A renewal that fails (no leader within the request timeout, server stopping) ends the
// stream with that error; etcd's clients then open a new one.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveReactor(const ClientServiceContext* ctx, grpc::CallbackServerContext* call)
      : ctx_(ctx), call_(call) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // The client closed its side (or went away).
      return;
    }
    const int64_t id = request_.id();
    ctx_->leases->Renew(id, CallDeadline(call_, ctx_->request_timeout), /*forwarded=*/false,
                        [this, id](absl::StatusOr<int64_t> ttl) {
                          if (!ttl.ok()) {
                            Finish(ToGrpcStatus(ttl.status()));
                            return;
                          }
                          response_.Clear();
                          response_.set_id(id);
                          response_.set_ttl(*ttl);
                          FillHeader(ctx_, response_.mutable_header());
                          StartWrite(&response_);
                        });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "keep-alive stream closed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const ClientServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
};

// Member-to-member calls must come from this cluster.
absl::Status CheckCluster(const grpc::CallbackServerContext* call, uint64_t cluster_id) {
  const std::string given(Metadata(call, "keel-cluster-id"));
  uint64_t theirs = 0;
  if (!absl::SimpleAtoi(given, &theirs) || theirs != cluster_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease forward from cluster '", given, "', this is cluster ", cluster_id));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* call,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  // etcd raises a TTL below the minimum (so a lease outlives an election); the raised
  // value travels in the entry, so every replica stores the same TTL.
  etcdserverpb::LeaseGrantRequest grant = *req;
  grant.set_ttl(std::max(grant.ttl(), ctx_->min_lease_ttl_s));
  return ServeWrite(
      ctx_, call, grant, resp, CheckSpace(ctx_, absl::OkStatus()), /*with_request_id=*/true,
      [](internalpb::Request* r) { return r->mutable_lease_grant(); },
      [](internalpb::Response* r, etcdserverpb::LeaseGrantResponse* out) {
        out->Swap(r->mutable_lease_grant());
      });
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* call,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  return ServeWrite(
      ctx_, call, *req, resp, absl::OkStatus(), /*with_request_id=*/true,
      [](internalpb::Request* r) { return r->mutable_lease_revoke(); },
      [](internalpb::Response* r, etcdserverpb::LeaseRevokeResponse* out) {
        out->Swap(r->mutable_lease_revoke());
      });
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* call) {
  return new KeepAliveReactor(ctx_, call);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* call, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (FinishIfError(reactor, CheckLeader(call, ctx_->node))) return reactor;
  const ClientServiceContext* ctx = ctx_;
  ctx_->leases->TimeToLive(
      *req, CallDeadline(call, ctx_->request_timeout), /*forwarded=*/false,
      [ctx, reactor, resp](absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> answer) {
        if (!answer.ok()) return reactor->Finish(ToGrpcStatus(answer.status()));
        resp->Swap(&*answer);
        resp->mutable_header()->Clear();  // This member's header, not the leader's.
        FillHeader(ctx, resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* call,
                                                    const etcdserverpb::LeaseLeasesRequest* req,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (FinishIfError(reactor, CheckLeader(call, ctx_->node))) return reactor;
  const ClientServiceContext* ctx = ctx_;
  auto serve = [ctx, reactor, resp] {
    auto leases = ctx->kv->LeaseLeases();
    if (!leases.ok()) return reactor->Finish(ToGrpcStatus(leases.status()));
    resp->Swap(&*leases);
    FillHeader(ctx, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  ServeAfterReadBarrier(ctx_, call, reactor, /*small=*/false, serve);  // Every lease.
  return reactor;
}

grpc::ServerUnaryReactor* LeaseForwardService::Renew(grpc::CallbackServerContext* call,
                                                     const etcdserverpb::LeaseKeepAliveRequest* req,
                                                     etcdserverpb::LeaseKeepAliveResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (FinishIfError(reactor, CheckCluster(call, ctx_->cluster_id))) return reactor;
  const int64_t id = req->id();
  ctx_->leases->Renew(id, CallDeadline(call, ctx_->request_timeout), /*forwarded=*/true,
                      [reactor, resp, id](absl::StatusOr<int64_t> ttl) {
                        if (!ttl.ok()) return reactor->Finish(ToGrpcStatus(ttl.status()));
                        resp->set_id(id);
                        resp->set_ttl(*ttl);
                        reactor->Finish(grpc::Status::OK);
                      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseForwardService::TimeToLive(
    grpc::CallbackServerContext* call, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  auto* reactor = call->DefaultReactor();
  if (FinishIfError(reactor, CheckCluster(call, ctx_->cluster_id))) return reactor;
  ctx_->leases->TimeToLive(
      *req, CallDeadline(call, ctx_->request_timeout), /*forwarded=*/true,
      [reactor, resp](absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> answer) {
        if (!answer.ok()) return reactor->Finish(ToGrpcStatus(answer.status()));
        resp->Swap(&*answer);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace keel::server
