// Client's Maintenance calls: Status, Alarm list/disarm, HashKV, Defragment, Snapshot.
// (MoveLeader belongs here too.)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/call.h"
#include "client/client_core.h"
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

namespace {

void StartAlarm(client::ClientCore* core, const char* method, client::CallKind kind,
                etcdserverpb::AlarmRequest req, const CallOptions& options,
                Callback<AlarmResponse> done) {
  client::CallSpec spec{method, kind, client::Route::Any(), options.timeout};
  spec.with_request_id = false;  // Listing and disarming are idempotent.
  client::StartCall<etcdserverpb::AlarmRequest, AlarmResponse>(
      core, spec, std::move(req),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::AlarmRequest* r,
         AlarmResponse* resp, std::function<void(grpc::Status)> d) {
        e.maintenance->async()->Alarm(c, r, resp, std::move(d));
      },
      std::move(done));
}

}  // namespace

absl::StatusOr<AlarmResponse> Client::AlarmList(const CallOptions& options) {
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  return client::Await<AlarmResponse>([&](Callback<AlarmResponse> d) {
    StartAlarm(core_.get(), "Alarm", client::CallKind::kRead, req, options, std::move(d));
  });
}

absl::StatusOr<AlarmResponse> Client::AlarmDisarm(uint64_t member_id, etcdserverpb::AlarmType type,
                                                  const CallOptions& options) {
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
  req.set_memberid(member_id);
  req.set_alarm(type);
  return client::Await<AlarmResponse>([&](Callback<AlarmResponse> d) {
    StartAlarm(core_.get(), "Alarm", client::CallKind::kWrite, req, options, std::move(d));
  });
}

absl::StatusOr<HashKVResponse> Client::HashKV(std::string_view endpoint, int64_t revision,
                                              const CallOptions& options) {
  absl::StatusOr<std::string> address = client::NormalizeEndpoint(endpoint);
  if (!address.ok()) return address.status();
  etcdserverpb::HashKVRequest req;
  req.set_revision(revision);
  return client::Await<HashKVResponse>([&](Callback<HashKVResponse> d) {
    client::StartCall<etcdserverpb::HashKVRequest, HashKVResponse>(
        core_.get(),
        client::CallSpec{"HashKV", client::CallKind::kRead, client::Route::Fixed(*address),
                         options.timeout},
        req,
        [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::HashKVRequest* r,
           HashKVResponse* resp, std::function<void(grpc::Status)> done) {
          e.maintenance->async()->HashKV(c, r, resp, std::move(done));
        },
        std::move(d));
  });
}

absl::StatusOr<DefragmentResponse> Client::Defragment(std::string_view endpoint,
                                                      const CallOptions& options) {
  absl::StatusOr<std::string> address = client::NormalizeEndpoint(endpoint);
  if (!address.ok()) return address.status();
  return client::Await<DefragmentResponse>([&](Callback<DefragmentResponse> d) {
    client::StartCall<etcdserverpb::DefragmentRequest, DefragmentResponse>(
        core_.get(),
        // Harmless to repeat: it only compacts storage.
        client::CallSpec{"Defragment", client::CallKind::kRead, client::Route::Fixed(*address),
                         options.timeout},
        etcdserverpb::DefragmentRequest(),
        [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::DefragmentRequest* r,
           DefragmentResponse* resp, std::function<void(grpc::Status)> done) {
          e.maintenance->async()->Defragment(c, r, resp, std::move(done));
        },
        std::move(d));
  });
}

absl::Status Client::Snapshot(std::string_view endpoint,
                              const std::function<absl::Status(std::string_view)>& sink,
                              const CallOptions& options) {
  std::string chosen(endpoint);
  if (chosen.empty()) chosen = Leader();  // The leader is the most up to date.
  if (chosen.empty() && !Endpoints().empty()) chosen = Endpoints().front();
  absl::StatusOr<std::string> address = client::NormalizeEndpoint(chosen);
  if (!address.ok()) return address.status();
  absl::Time retry_at;
  // A fixed route bypasses the breakers (endpoint_pool.h): nothing to report back.
  std::shared_ptr<client::Endpoint> e =
      core_->pool().Pick(client::Route::Fixed(*address), nullptr, absl::Now(), &retry_at);
  if (e == nullptr) return absl::UnavailableError("keel: no member is reachable for a snapshot");
  grpc::ClientContext context;
  // A snapshot takes as long as the data takes to copy: no deadline unless asked.
  if (options.timeout > absl::ZeroDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  }
  auto reader = e->maintenance->Snapshot(&context, etcdserverpb::SnapshotRequest());
  etcdserverpb::SnapshotResponse resp;
  absl::Status sink_status;
  while (reader->Read(&resp)) {
    sink_status = sink(resp.blob());
    if (!sink_status.ok()) {
      context.TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!sink_status.ok()) return sink_status;
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("keel: snapshot from ", e->address, ": ", status.error_message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Client::SnapshotToFile(std::string_view endpoint, const std::string& path,
                                                const CallOptions& options) {
  const std::string part = path + ".part";
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("keel: cannot create ", part, ": ", std::strerror(errno)));
  }
  uint64_t written = 0;
  absl::Status status = Snapshot(
      endpoint,
      [&](std::string_view blob) -> absl::Status {
        size_t off = 0;
        while (off < blob.size()) {
          const ssize_t n = ::write(fd, blob.data() + off, blob.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            return absl::UnavailableError(
                absl::StrCat("keel: cannot write ", part, ": ", std::strerror(errno)));
          }
          off += static_cast<size_t>(n);
        }
        written += blob.size();
        return absl::OkStatus();
      },
      options);
  if (status.ok() && ::fsync(fd) != 0) {
    status = absl::UnavailableError(absl::StrCat("keel: cannot fsync ", part));
  }
  ::close(fd);
  std::error_code ec;
  if (!status.ok()) {
    std::filesystem::remove(part, ec);
    return status;
  }
  std::filesystem::rename(part, path, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("keel: cannot rename ", part, ": ", ec.message()));
  return written;
}

}  // namespace keel
