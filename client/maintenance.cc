// Client's Maintenance calls (Status; Alarm, Defragment, Snapshot, MoveLeader... belong
// here when the server has them).
#include "client/call.h"
#include "client/endpoint.h"
#include "keel/client.h"

namespace keel {

void Client::StatusAsync(std::string_view endpoint, const CallOptions& options,
                         Callback<StatusResponse> done) {
  absl::StatusOr<std::string> address = client::NormalizeEndpoint(endpoint);
  if (!address.ok()) return client::FailNow(done, address.status());
  client::StartCall<etcdserverpb::StatusRequest, StatusResponse>(
      core_.get(),
      client::CallSpec{"Status", client::CallKind::kRead, client::Route::Fixed(*address),
                       options.timeout},
      etcdserverpb::StatusRequest(),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::StatusRequest* req,
         StatusResponse* resp, std::function<void(grpc::Status)> d) {
        e.maintenance->async()->Status(c, req, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<StatusResponse> Client::Status(std::string_view endpoint,
                                              const CallOptions& options) {
  return client::Await<StatusResponse>(
      [&](Callback<StatusResponse> d) { StatusAsync(endpoint, options, std::move(d)); });
}

}  // namespace keel
