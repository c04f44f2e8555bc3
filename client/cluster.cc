// Client's Cluster calls (MemberList; MemberAdd/Remove/Update/Promote come with the
// membership work and belong here).
#include "client/call.h"
#include "keel/client.h"

namespace keel {

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

}  // namespace keel
