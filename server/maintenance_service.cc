// Maintenance.Status / Alarm / Defragment / Hash / HashKV and Cluster.MemberList.
// Snapshot is in maintenance_snapshot.cc.
#include "absl/strings/str_cat.h"
#include "server/client_services.h"
#include "server/errors.h"
#include "server/service_helpers.h"

namespace keel::server {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* call,
                                                     const etcdserverpb::StatusRequest* req,
                                                     etcdserverpb::StatusResponse* resp) {
  auto* reactor = call->DefaultReactor();
  const NodeStatus st = ctx_->node->Status();
  FillHeader(ctx_, resp->mutable_header());
  resp->set_version(ctx_->version);
  // etcd reports its bbolt file: the state machine, not the raft log (etcd's WAL).
  // dbSize: the state machine's files on disk; dbSizeInUse: RocksDB's estimate of the
  // live data plus memtables (KvStore::Space) — what the space quota is checked against.
  const storage::KvStore::SpaceUsage space = ctx_->kv->Space();
  resp->set_dbsize(space.disk_bytes);
  resp->set_dbsizeinuse(space.live_bytes);
  resp->set_leader(st.leader_id);
  resp->set_raftindex(st.commit_index);  // etcd: the committed index.
  resp->set_raftterm(st.term);
  resp->set_raftappliedindex(st.applied_index);
  resp->set_islearner(st.is_learner);
  if (st.leader_id == 0) resp->add_errors("etcdserver: no leader");
  for (const auto& a : ctx_->kv->Alarms()) {
    // etcd's text for an alarm (AlarmMember's String()).
    resp->add_errors(absl::StrCat("memberID:", a.memberid(),
                                  " alarm:", etcdserverpb::AlarmType_Name(a.alarm()), " "));
  }
  absl::Status fatal = ctx_->node->fatal_error();
  if (!fatal.ok()) resp->add_errors(std::string(fatal.message()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* call,
                                                    const etcdserverpb::AlarmRequest* req,
                                                    etcdserverpb::AlarmResponse* resp) {
  if (req->action() != etcdserverpb::AlarmRequest::GET) {
    // Raised and cleared through raft, so every member agrees and it survives restarts.
    return ServeWrite(
        ctx_, call, *req, resp, absl::OkStatus(), /*with_request_id=*/false,
        [](internalpb::Request* r) { return r->mutable_alarm(); },
        [](internalpb::Response* r, etcdserverpb::AlarmResponse* out) {
          out->Swap(r->mutable_alarm());
        });
  }
  // GET: this member's view of the replicated alarm list (etcd answers locally too),
  // filtered by member and type when given.
  auto* reactor = call->DefaultReactor();
  FillHeader(ctx_, resp->mutable_header());
  for (const auto& a : ctx_->kv->Alarms()) {
    if (req->memberid() != 0 && a.memberid() != req->memberid()) continue;
    if (req->alarm() != etcdserverpb::NONE && a.alarm() != req->alarm()) continue;
    *resp->add_alarms() = a;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(grpc::CallbackServerContext* call,
                                                         const etcdserverpb::DefragmentRequest* req,
                                                         etcdserverpb::DefragmentResponse* resp) {
  // RocksDB compacts on its own; this forces a flush and a full compaction now, so space
  // freed by deletes and compaction is returned (and the quota check sees it) at once.
  // It runs beside reads and writes (no stop-the-world, unlike bbolt's defrag).
  auto* reactor = call->DefaultReactor();
  const ClientServiceContext* ctx = ctx_;
  if (!ctx->read_executor->Submit([ctx, reactor, resp] {
        absl::Status s = ctx->kv->CompactStorage();
        if (!s.ok()) return reactor->Finish(ToGrpcStatus(s));
        FillHeader(ctx, resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      })) {
    reactor->Finish(ToGrpcStatus(ErrTooManyRequests()));
  }
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* call,
                                                   const etcdserverpb::HashRequest* req,
                                                   etcdserverpb::HashResponse* resp) {
  auto* reactor = call->DefaultReactor();
  const ClientServiceContext* ctx = ctx_;
  if (!ctx->read_executor->Submit([ctx, reactor, resp] {
        auto hash = ctx->kv->HashAll();
        if (!hash.ok()) return reactor->Finish(ToGrpcStatus(hash.status()));
        resp->set_hash(*hash);
        FillHeader(ctx, resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      })) {
    reactor->Finish(ToGrpcStatus(ErrTooManyRequests()));
  }
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* call,
                                                     const etcdserverpb::HashKVRequest* req,
                                                     etcdserverpb::HashKVResponse* resp) {
  auto* reactor = call->DefaultReactor();
  const ClientServiceContext* ctx = ctx_;
  const int64_t revision = req->revision();
  if (!ctx->read_executor->Submit([ctx, reactor, resp, revision] {
        auto hash = ctx->kv->HashKv(revision);
        if (!hash.ok()) return reactor->Finish(ToGrpcStatus(hash.status()));
        resp->set_hash(hash->hash);
        resp->set_compact_revision(hash->compact_revision);
        resp->set_hash_revision(hash->revision);
        FillHeader(ctx, resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      })) {
    reactor->Finish(ToGrpcStatus(ErrTooManyRequests()));
  }
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* call,
                                                     const etcdserverpb::MemberListRequest* req,
                                                     etcdserverpb::MemberListResponse* resp) {
  auto* reactor = call->DefaultReactor();
  FillHeader(ctx_, resp->mutable_header());
  for (const auto& m : ctx_->members->List()) {
    auto* out = resp->add_members();
    out->set_id(m.id);
    out->set_name(m.name);
    for (const auto& u : m.peer_urls) out->add_peerurls(u);
    for (const auto& u : m.client_urls) out->add_clienturls(u);
    out->set_islearner(m.is_learner);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace keel::server
