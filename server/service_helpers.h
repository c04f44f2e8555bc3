// What every client-facing service shares: call deadlines, metadata, the "hasleader"
// check, keel::Client's exactly-once request ids, response headers, and the one path a
// write takes through raft (ServeWrite).
#pragma once

#include <algorithm>
#include <charconv>
#include <string_view>

#include "server/client_services.h"
#include "server/errors.h"
#include "storage/mvcc_errors.h"

namespace keel::server {

// The earlier of the server's bound and the client's own deadline.
inline absl::Time CallDeadline(const grpc::CallbackServerContext* call, absl::Duration limit) {
  const absl::Time server_deadline = absl::Now() + limit;
  const absl::Time client_deadline = absl::FromChrono(call->deadline());
  return std::min(server_deadline, client_deadline);
}

inline std::string_view Metadata(const grpc::CallbackServerContext* call, std::string_view key) {
  const auto& md = call->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

// Clients that ask for "hasleader" want a fast "no leader" instead of a wait.
inline absl::Status CheckLeader(const grpc::CallbackServerContext* call, const RaftNode* node) {
  if (Metadata(call, "hasleader") == "true" && node->leader_id() == 0) return ErrNoLeader();
  return absl::OkStatus();
}

// keel::Client's exactly-once retries: (client id, sequence) as decimal metadata.
inline void AttachRequestId(const grpc::CallbackServerContext* call, internalpb::Request* r) {
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

inline void FillHeader(const ClientServiceContext* ctx, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(ctx->cluster_id);
  h->set_member_id(ctx->member_id);
  h->set_raft_term(ctx->node->term());
  if (h->revision() == 0) h->set_revision(ctx->kv->Revision());
}

// A linearizable read: runs `serve` once a read barrier passed. A `small` read (one key)
// runs on the thread that released the barrier (RaftNode::ReadBarrier: right after the
// loop pass that released it, or on the apply thread), saving a hand-off; any other on
// the read executor, so a big read holds up neither. Handlers hold no lock, so the
// barrier's loop pass may run on this thread (LoopPass).
template <typename Serve>
void ServeAfterReadBarrier(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
                           grpc::ServerUnaryReactor* reactor, bool small, Serve serve) {
  ctx->node->ReadBarrier(
      CallDeadline(call, ctx->request_timeout),
      [ctx, reactor, small, serve](absl::Status barrier) {
        if (!barrier.ok()) return reactor->Finish(ToGrpcStatus(barrier));
        if (small) return serve();
        if (!ctx->read_executor->Submit(serve)) {
          reactor->Finish(ToGrpcStatus(ErrTooManyRequests()));
        }
      },
      LoopPass::kCallerIfIdle);
}

// A write that needs space (Put, Txn with a put, LeaseGrant) is refused up front while
// a NOSPACE alarm is raised or the quota is exceeded (the state machine refuses it as
// well once the alarm applied, so this is only a shortcut). `status`: the request's
// own validation result, passed through when not OK.
inline bool SpaceShort(const ClientServiceContext* ctx) {
  return ctx->kv->NoSpace() || (ctx->quota != nullptr && ctx->quota->Exceeded());
}
inline absl::Status CheckSpace(const ClientServiceContext* ctx, absl::Status status) {
  if (status.ok() && SpaceShort(ctx)) return storage::mvcc::ErrNoSpace();
  return status;
}
// A put in either branch, nested txns included (as the state machine decides).
inline bool TxnHasPut(const etcdserverpb::TxnRequest& t) {
  for (const auto* branch : {&t.success(), &t.failure()}) {
    for (const auto& op : *branch) {
      if (op.has_request_put() || (op.has_request_txn() && TxnHasPut(op.request_txn()))) {
        return true;
      }
    }
  }
  return false;
}

// Finishes `reactor` with `status` unless it is OK; true if it did.
inline bool FinishIfError(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  if (status.ok()) return false;
  reactor->Finish(ToGrpcStatus(status));
  return true;
}

// Proposes `request` and answers `reactor` with the part of the state machine's
// response that `take` extracts into `resp`. Handlers hold no lock, so the proposal's
// loop pass may run on this thread (LoopPass).
template <typename Resp, typename Take>
void ProposeAndAnswer(const ClientServiceContext* ctx, grpc::CallbackServerContext* call,
                      grpc::ServerUnaryReactor* reactor, internalpb::Request request, Resp* resp,
                      Take take) {
  ctx->node->Propose(
      std::move(request), CallDeadline(call, ctx->request_timeout),
      [ctx, reactor, resp, take](absl::StatusOr<storage::ApplyResult> result) {
        if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
        if (!result->status.ok()) return reactor->Finish(ToGrpcStatus(result->status));
        take(&result->response, resp);
        FillHeader(ctx, resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      },
      /*leader_term=*/0, LoopPass::kCallerIfIdle);
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

}  // namespace keel::server
