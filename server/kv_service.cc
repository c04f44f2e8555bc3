// KV service: Range (linearizable via ReadIndex, or serializable), and the writes
// (Put, DeleteRange, Txn, Compact), which all go through raft.
#include "common/failpoint.h"
#include "server/client_services.h"
#include "server/errors.h"
#include "server/service_helpers.h"
#include "storage/mvcc_validate.h"

namespace keel::server {

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
    // etcd refuses reads too once members are known to disagree.
    if (ctx->kv->Corrupt()) return reactor->Finish(ToGrpcStatus(storage::mvcc::ErrCorrupt()));
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
  ServeAfterReadBarrier(ctx_, call, reactor, /*small=*/req->range_end().empty(), serve);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* call,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  return ServeWrite(
      ctx_, call, *req, resp, CheckSpace(ctx_, storage::mvcc::ValidatePut(*req)),
      /*with_request_id=*/true, [](internalpb::Request* r) { return r->mutable_put(); },
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
  absl::Status status = storage::mvcc::ValidateTxn(*req, ctx_->max_txn_ops);
  if (status.ok() && SpaceShort(ctx_) && TxnHasPut(*req)) status = storage::mvcc::ErrNoSpace();
  return ServeWrite(
      ctx_, call, *req, resp, status,
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
