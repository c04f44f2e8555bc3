// KV service: Range (linearizable via ReadIndex, or serializable), and the writes
// (Put, DeleteRange, Txn, Compact), which all go through raft.
#include <charconv>

#include "server/client_services.h"
#include "server/errors.h"
#include "storage/mvcc_validate.h"

namespace keel::server {
namespace {

absl::Time CallDeadline(const grpc::CallbackServerContext* call, absl::Duration limit) {
  const absl::Time server_deadline = absl::Now() + limit;
  const absl::Time client_deadline = absl::FromChrono(call->deadline());
  return std::min(server_deadline, client_deadline);
}

std::string_view Metadata(const grpc::CallbackServerContext* call, std::string_view key) {
  const auto& md = call->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

// Clients that ask for "hasleader" want a fast "no leader" instead of a wait.
absl::Status CheckLeader(const grpc::CallbackServerContext* call, const RaftNode* node) {
  if (Metadata(call, "hasleader") == "true" && node->leader_id() == 0) return ErrNoLeader();
  return absl::OkStatus();
}

// keel::Client's exactly-once retries: (client id, sequence) as decimal metadata.
void AttachRequestId(const grpc::CallbackServerContext* call, internalpb::Request* r) {
  auto parse = [](std::string_view s, uint64_t* out) {
    return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), *out).ec == std::errc();
  };
  uint64_t client_id = 0, sequence = 0;
  if (parse(Metadata(call, "keel-client-id"), &client_id) &&
      parse(Metadata(call, "keel-sequence"), &sequence)) {
    r->set_client_id(client_id);
    r->set_sequence(sequence);
  }
}

void FillHeader(const ClientServiceContext* ctx, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(ctx->cluster_id);
  h->set_member_id(ctx->member_id);
  h->set_raft_term(ctx->node->term());
  if (h->revision() == 0) h->set_revision(ctx->kv->Revision());
}

// Proposes `request` and answers `reactor` with the part of the state machine's
// response that `take` extracts into `resp`.
template <typename Resp, typename Take>
void ProposeAndAnswer(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
                      grpc::ServerUnaryReactor* reactor, internalpb::Request request, Resp* resp,
                      Take take) {
  ctx->node->Propose(std::move(request), CallDeadline(call, ctx->request_timeout),
                     [ctx, reactor, resp, take](absl::StatusOr<storage::ApplyResult> result) {
                       if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
                       if (!result->status.ok())
                         return reactor->Finish(ToGrpcStatus(result->status));
                       take(&result->response, resp);
                       FillHeader(ctx, resp->mutable_header());
                       reactor->Finish(grpc::Status::OK);
                     });
}

}  // namespace

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* call,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  auto* reactor = call->DefaultReactor();
  absl::Status status = storage::mvcc::ValidateRange(*req);
  if (status.ok()) status = CheckLeader(call, ctx_->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  const ClientServiceContext* ctx = ctx_;
  auto serve = [ctx, reactor, req, resp] {
    auto range = ctx->kv->Range(*req);
    if (!range.ok()) return reactor->Finish(ToGrpcStatus(range.status()));
    resp->Swap(&*range);
    FillHeader(ctx, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  if (req->serializable()) {
    serve();  // Local state, any member: no round trip.
    return reactor;
  }
  ctx_->node->ReadBarrier(CallDeadline(call, ctx_->request_timeout),
                          [ctx, reactor, serve](absl::Status barrier) {
                            if (!barrier.ok()) return reactor->Finish(ToGrpcStatus(barrier));
                            // Off the apply thread: a big range must not stall applies.
                            if (!ctx->read_executor->Submit(serve)) {
                              reactor->Finish(ToGrpcStatus(ErrTooManyRequests()));
                            }
                          });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* call,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  auto* reactor = call->DefaultReactor();
  absl::Status status = storage::mvcc::ValidatePut(*req);
  if (status.ok() && req->ByteSizeLong() > ctx_->max_request_bytes) status = ErrRequestTooLarge();
  if (status.ok()) status = CheckLeader(call, ctx_->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  internalpb::Request request;
  AttachRequestId(call, &request);
  *request.mutable_put() = *req;
  ProposeAndAnswer(
      ctx_, call, reactor, std::move(request), resp,
      [](internalpb::Response* r, etcdserverpb::PutResponse* out) { out->Swap(r->mutable_put()); });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* call,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  auto* reactor = call->DefaultReactor();
  absl::Status status = storage::mvcc::ValidateDeleteRange(*req);
  if (status.ok() && req->ByteSizeLong() > ctx_->max_request_bytes) status = ErrRequestTooLarge();
  if (status.ok()) status = CheckLeader(call, ctx_->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  internalpb::Request request;
  AttachRequestId(call, &request);
  *request.mutable_delete_range() = *req;
  ProposeAndAnswer(ctx_, call, reactor, std::move(request), resp,
                   [](internalpb::Response* r, etcdserverpb::DeleteRangeResponse* out) {
                     out->Swap(r->mutable_delete_range());
                   });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* call,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  auto* reactor = call->DefaultReactor();
  absl::Status status = storage::mvcc::ValidateTxn(*req, ctx_->max_txn_ops);
  if (status.ok() && req->ByteSizeLong() > ctx_->max_request_bytes) status = ErrRequestTooLarge();
  if (status.ok()) status = CheckLeader(call, ctx_->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  internalpb::Request request;
  AttachRequestId(call, &request);
  *request.mutable_txn() = *req;
  ProposeAndAnswer(
      ctx_, call, reactor, std::move(request), resp,
      [](internalpb::Response* r, etcdserverpb::TxnResponse* out) { out->Swap(r->mutable_txn()); });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* call,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  auto* reactor = call->DefaultReactor();
  absl::Status status = CheckLeader(call, ctx_->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  internalpb::Request request;
  *request.mutable_compaction() = *req;
  ProposeAndAnswer(ctx_, call, reactor, std::move(request), resp,
                   [](internalpb::Response* r, etcdserverpb::CompactionResponse* out) {
                     out->Swap(r->mutable_compaction());
                   });
  return reactor;
}

}  // namespace keel::server
