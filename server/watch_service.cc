#include "server/watch_service.h"

#include <memory>
#include <mutex>
#include <string>

#include "grpcpp/support/proto_buffer_reader.h"
#include "server/errors.h"

namespace keel::server {
namespace {

void DeleteString(void* s) { delete static_cast<std::string*>(s); }

class WatchReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                           public WatchSink {
 public:
  WatchReactor(WatchHub* hub, bool require_leader) : hub_(hub) {
    stream_ = hub_->OpenStream(this, require_leader);
    StartRead(&read_buf_);
  }

  // Refuses the stream at once.
  explicit WatchReactor(const absl::Status& refusal) : hub_(nullptr) {
    Finish(ToGrpcStatus(refusal));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client half-closed or went away.
      hub_->CloseStream(stream_.get(), absl::OkStatus());
      return;
    }
    etcdserverpb::WatchRequest request;
    grpc::ProtoBufferReader reader(&read_buf_);
    if (!request.ParseFromZeroCopyStream(&reader)) {
      hub_->CloseStream(stream_.get(), absl::InvalidArgumentError("malformed WatchRequest"));
      return;
    }
    read_buf_.Clear();
    hub_->Handle(stream_.get(), request);
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (stream_->output().HasRoom()) {
      StartRead(&read_buf_);
    } else {
      read_paused_ = true;  // Resumed by OnWriteDone once the output drains.
    }
  }

  void OnWriteDone(bool ok) override {
    stream_->output().WriteDone(ok);
    std::lock_guard<std::mutex> lock(mu_);
    if (read_paused_ && !finished_ && stream_->output().HasRoom()) {
      read_paused_ = false;
      StartRead(&read_buf_);
    }
  }

  void OnCancel() override {
    // With reads paused no OnReadDone would report it.
    if (hub_ != nullptr) hub_->CloseStream(stream_.get(), absl::CancelledError("canceled"));
  }

  void OnDone() override {
    if (hub_ != nullptr) hub_->CloseStream(stream_.get(), absl::CancelledError("done"));
    delete this;
  }

  // WatchSink.
  void Send(std::string message) override {
    auto* owned = new std::string(std::move(message));
    grpc::Slice slice(owned->data(), owned->size(), &DeleteString, owned);
    write_buf_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&write_buf_);
  }
  void End(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);  // No read may start after Finish.
    finished_ = true;
    Finish(ToGrpcStatus(status));
  }

 private:
  WatchHub* const hub_;
  std::shared_ptr<WatchStream> stream_;
  grpc::ByteBuffer read_buf_;
  grpc::ByteBuffer write_buf_;
  std::mutex mu_;
  bool read_paused_ = false;  // Guarded by mu_.
  bool finished_ = false;     // Guarded by mu_.
};

std::string_view Metadata(const grpc::CallbackServerContext* call, std::string_view key) {
  const auto& md = call->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* WatchService::Watch(
    grpc::CallbackServerContext* call) {
  const bool require_leader = Metadata(call, "hasleader") == "true";
  if (require_leader && node_->leader_id() == 0) return new WatchReactor(ErrNoLeader());
  return new WatchReactor(hub_, require_leader);
}

}  // namespace keel::server
