// Maintenance.Status / Alarm and Cluster.MemberList.
#include <filesystem>

#include "server/client_services.h"
#include "server/errors.h"

namespace keel::server {
namespace {

int64_t DirectoryBytes(const std::string& dir) {
  std::error_code ec;
  int64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

void FillHeader(const ClientServiceContext* ctx, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(ctx->cluster_id);
  h->set_member_id(ctx->member_id);
  h->set_raft_term(ctx->node->term());
  h->set_revision(ctx->kv->Revision());
}

}  // namespace

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* call,
                                                     const etcdserverpb::StatusRequest* req,
                                                     etcdserverpb::StatusResponse* resp) {
  auto* reactor = call->DefaultReactor();
  const NodeStatus st = ctx_->node->Status();
  FillHeader(ctx_, resp->mutable_header());
  resp->set_version(ctx_->version);
  int64_t bytes = 0;
  for (const auto& dir : ctx_->data_dirs) bytes += DirectoryBytes(dir);
  resp->set_dbsize(bytes);
  resp->set_dbsizeinuse(bytes);
  resp->set_leader(st.leader_id);
  resp->set_raftindex(st.commit_index);
  resp->set_raftterm(st.term);
  resp->set_raftappliedindex(st.applied_index);
  resp->set_islearner(st.is_learner);
  if (st.leader_id == 0) resp->add_errors("etcdserver: no leader");
  absl::Status fatal = ctx_->node->fatal_error();
  if (!fatal.ok()) resp->add_errors(std::string(fatal.message()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* call,
                                                    const etcdserverpb::AlarmRequest* req,
                                                    etcdserverpb::AlarmResponse* resp) {
  // No alarms exist yet (the space quota and its NOSPACE alarm come with the
  // maintenance work); GET answers an empty list, which `etcdctl endpoint health` reads.
  auto* reactor = call->DefaultReactor();
  FillHeader(ctx_, resp->mutable_header());
  reactor->Finish(grpc::Status::OK);
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
