// Maintenance.Snapshot: streams a consistent snapshot of this member's state machine as
// keel's snapshot file (storage/snapshot_file.h) — etcd streams its bbolt file plus a
// SHA-256 the same way; `etcdctl snapshot save` stores whatever the stream carries.
//
// The checkpoint is taken on the apply thread (RaftNode::CheckpointStateMachine), so it
// is exactly the state after one applied batch; then its files are read and sent one
// chunk per message, each read after the previous message was written (memory stays
// at one chunk per stream). The checkpoint's files are hard links, so a long download
// holds disk space, not the apply thread.
#include "server/client_services.h"
#include "server/errors.h"
#include "server/service_helpers.h"
#include "storage/snapshot_file.h"

namespace keel::server {
namespace {

class SnapshotReactor final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  explicit SnapshotReactor(const ClientServiceContext* ctx) : ctx_(ctx) {
    // Taking the checkpoint waits for the apply thread: not on gRPC's thread.
    if (!ctx_->read_executor->Submit([this] { Begin(); })) {
      Finish(ToGrpcStatus(ErrTooManyRequests()));
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream broken"));
    if (finished_writing_) return Finish(grpc::Status::OK);
    // Reading the next chunk is file I/O: on the read executor, not gRPC's thread.
    if (!ctx_->read_executor->Submit([this] { SendNext(); })) {
      Finish(ToGrpcStatus(ErrTooManyRequests()));
    }
  }

  void OnDone() override { delete this; }

 private:
  void Begin() {
    auto reader = ctx_->node->CheckpointStateMachine();
    if (!reader.ok()) return Finish(ToGrpcStatus(reader.status()));
    reader_ = std::move(*reader);
    remaining_ = reader_->manifest().total_bytes();
    SendNext();
  }

  void SendNext() {
    internalpb::SnapshotChunk chunk;
    auto more = reader_->Next(&chunk);
    if (!more.ok()) return Finish(ToGrpcStatus(more.status()));
    resp_.Clear();
    FillHeader(ctx_, resp_.mutable_header());
    if (*more) {
      remaining_ -= std::min<uint64_t>(remaining_, chunk.data().size());
      *resp_.mutable_blob() = encoder_.Record(chunk);
      resp_.set_remaining_bytes(remaining_);
    } else {
      *resp_.mutable_blob() = encoder_.End();
      resp_.set_remaining_bytes(0);
      finished_writing_ = true;
      reader_.reset();  // Removes the checkpoint now rather than at OnDone.
    }
    StartWrite(&resp_);
  }

  const ClientServiceContext* ctx_;
  std::unique_ptr<storage::SnapshotReader> reader_;
  storage::SnapshotFileEncoder encoder_;
  etcdserverpb::SnapshotResponse resp_;
  uint64_t remaining_ = 0;
  bool finished_writing_ = false;
};

}  // namespace

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* call, const etcdserverpb::SnapshotRequest* req) {
  return new SnapshotReactor(ctx_);
}

}  // namespace keel::server
