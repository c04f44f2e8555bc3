// Client's Cluster calls (member list and changes) and Maintenance.MoveLeader.
#include "client/call.h"
#include "client/client_core.h"
#include "keel/client.h"

namespace keel {
namespace {

// A membership change or a leader move: on the leader (a follower would forward a
// change, but the leader answers sooner), not retried once it may have been proposed.
// A success refreshes the member list so the client follows the new membership.
template <typename Req, typename Resp, typename Start>
void StartChange(client::ClientCore* core, const char* name, const CallOptions& options,
                 Req request, Start start, Callback<Resp> done) {
  client::StartCall<Req, Resp>(core,
                               client::CallSpec{name, client::CallKind::kUnsafeWrite,
                                                client::Route::Leader(), options.timeout},
                               std::move(request), std::move(start),
                               [core, done = std::move(done)](absl::StatusOr<Resp> r) {
                                 if (r.ok()) core->RefreshSoon();
                                 done(std::move(r));
                               });
}

}  // namespace

void Client::MemberListAsync(const CallOptions& options, Callback<MemberListResponse> done) {
  // The leader's list is the newest; any member answers if the leader does not.
  client::StartCall<etcdserverpb::MemberListRequest, MemberListResponse>(
      core_.get(),
      client::CallSpec{"MemberList", client::CallKind::kRead, client::Route::Leader(),
                       options.timeout},
      etcdserverpb::MemberListRequest(),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MemberListRequest* req,
         MemberListResponse* resp, std::function<void(grpc::Status)> d) {
        e.cluster->async()->MemberList(c, req, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MemberListResponse> Client::MemberList(const CallOptions& options) {
  return client::Await<MemberListResponse>(
      [&](Callback<MemberListResponse> d) { MemberListAsync(options, std::move(d)); });
}

void Client::MemberAddAsync(const std::vector<std::string>& peer_urls, bool is_learner,
                            const CallOptions& options, Callback<MemberAddResponse> done) {
  etcdserverpb::MemberAddRequest req;
  for (const auto& u : peer_urls) req.add_peerurls(u);
  req.set_islearner(is_learner);
  StartChange<etcdserverpb::MemberAddRequest, MemberAddResponse>(
      core_.get(), "MemberAdd", options, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MemberAddRequest* r,
         MemberAddResponse* resp, std::function<void(grpc::Status)> d) {
        e.cluster->async()->MemberAdd(c, r, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MemberAddResponse> Client::MemberAdd(const std::vector<std::string>& peer_urls,
                                                    bool is_learner, const CallOptions& options) {
  return client::Await<MemberAddResponse>([&](Callback<MemberAddResponse> d) {
    MemberAddAsync(peer_urls, is_learner, options, std::move(d));
  });
}

void Client::MemberRemoveAsync(uint64_t id, const CallOptions& options,
                               Callback<MemberRemoveResponse> done) {
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  StartChange<etcdserverpb::MemberRemoveRequest, MemberRemoveResponse>(
      core_.get(), "MemberRemove", options, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MemberRemoveRequest* r,
         MemberRemoveResponse* resp, std::function<void(grpc::Status)> d) {
        e.cluster->async()->MemberRemove(c, r, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MemberRemoveResponse> Client::MemberRemove(uint64_t id, const CallOptions& options) {
  return client::Await<MemberRemoveResponse>(
      [&](Callback<MemberRemoveResponse> d) { MemberRemoveAsync(id, options, std::move(d)); });
}

void Client::MemberUpdateAsync(uint64_t id, const std::vector<std::string>& peer_urls,
                               const CallOptions& options, Callback<MemberUpdateResponse> done) {
  etcdserverpb::MemberUpdateRequest req;
  req.set_id(id);
  for (const auto& u : peer_urls) req.add_peerurls(u);
  StartChange<etcdserverpb::MemberUpdateRequest, MemberUpdateResponse>(
      core_.get(), "MemberUpdate", options, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MemberUpdateRequest* r,
         MemberUpdateResponse* resp, std::function<void(grpc::Status)> d) {
        e.cluster->async()->MemberUpdate(c, r, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MemberUpdateResponse> Client::MemberUpdate(uint64_t id,
                                                          const std::vector<std::string>& peer_urls,
                                                          const CallOptions& options) {
  return client::Await<MemberUpdateResponse>([&](Callback<MemberUpdateResponse> d) {
    MemberUpdateAsync(id, peer_urls, options, std::move(d));
  });
}

void Client::MemberPromoteAsync(uint64_t id, const CallOptions& options,
                                Callback<MemberPromoteResponse> done) {
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(id);
  StartChange<etcdserverpb::MemberPromoteRequest, MemberPromoteResponse>(
      core_.get(), "MemberPromote", options, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MemberPromoteRequest* r,
         MemberPromoteResponse* resp, std::function<void(grpc::Status)> d) {
        e.cluster->async()->MemberPromote(c, r, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MemberPromoteResponse> Client::MemberPromote(uint64_t id,
                                                            const CallOptions& options) {
  return client::Await<MemberPromoteResponse>(
      [&](Callback<MemberPromoteResponse> d) { MemberPromoteAsync(id, options, std::move(d)); });
}

void Client::MoveLeaderAsync(uint64_t target_id, const CallOptions& options,
                             Callback<MoveLeaderResponse> done) {
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(target_id);
  StartChange<etcdserverpb::MoveLeaderRequest, MoveLeaderResponse>(
      core_.get(), "MoveLeader", options, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::MoveLeaderRequest* r,
         MoveLeaderResponse* resp, std::function<void(grpc::Status)> d) {
        e.maintenance->async()->MoveLeader(c, r, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<MoveLeaderResponse> Client::MoveLeader(uint64_t target_id,
                                                      const CallOptions& options) {
  return client::Await<MoveLeaderResponse>(
      [&](Callback<MoveLeaderResponse> d) { MoveLeaderAsync(target_id, options, std::move(d)); });
}

}  // namespace keel
