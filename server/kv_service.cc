// KV service: Range (linearizable via ReadIndex, or serializable), and the writes
// (Put, DeleteRange, Txn, Compact), which all go through raft.
#include <charconv>

#include "common/failpoint.h"
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

// The path every write shares: the request's own validation result, the size limit
// and the leader check, then one proposal whose applied result `take` moves into `resp`.
// `set` names the request's slot in the raft entry.
template <typename Req, typename Resp, typename Set, typename Take>
grpc::ServerUnaryReactor* ServeWrite(const ClientServiceContext* ctx,
                                     grpc::CallbackServerContext* call, const Req& req, Resp* resp,
                                     absl::Status status, bool with_request_id, Set set,
                                     Take take) {
  auto* reactor = call->DefaultReactor();
  if (status.ok() && req.ByteSizeLong() > ctx->max_request_bytes) status = ErrRequestTooLarge();
  if (status.ok()) status = CheckLeader(call, ctx->node);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  internalpb::Request request;
  if (with_request_id) AttachRequestId(call, &request);
  *set(&request) = req;
  ProposeAndAnswer(ctx, call, reactor, std::move(request), resp, take);
  return reactor;
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
  if (req->serializable() || KEEL_UNSAFE_BUG(kStaleLocalReads)) {
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
  return ServeWrite(
      ctx_, call, *req, resp, storage::mvcc::ValidatePut(*req), /*with_request_id=*/true,
      [](internalpb::Request* r) { return r->mutable_put(); },
      [](internalpb::Response* r, etcdserverpb::PutResponse* out) { out->Swap(r->mutable_put()); });
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* call,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  return ServeWrite(
      ctx_, call, *req, resp, storage::mvcc::ValidateDeleteRange(*req),
      /*with_request_id=*/true, [](internalpb::Request* r) { return r->mutable_delete_range(); },
      [](internalpb::Response* r, etcdserverpb::DeleteRangeResponse* out) {
        out->Swap(r->mutable_delete_range());
      });
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* call,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  return ServeWrite(
      ctx_, call, *req, resp, storage::mvcc::ValidateTxn(*req, ctx_->max_txn_ops),
      /*with_request_id=*/true, [](internalpb::Request* r) { return r->mutable_txn(); },
      [](internalpb::Response* r, etcdserverpb::TxnResponse* out) { out->Swap(r->mutable_txn()); });
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* call,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  // Compaction is idempotent: no exactly-once request id needed.
  return ServeWrite(
      ctx_, call, *req, resp, absl::OkStatus(), /*with_request_id=*/false,
      [](internalpb::Request* r) { return r->mutable_compaction(); },
      [](internalpb::Response* r, etcdserverpb::CompactionResponse* out) {
        out->Swap(r->mutable_compaction());
      });
}

}  // namespace keel::server
