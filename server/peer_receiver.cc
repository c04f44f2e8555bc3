#include "server/peer_receiver.h"

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "storage/crc32c.h"

namespace keel::server {
namespace {

// Bounds the memory one reassembled snapshot record may take (see SnapshotChunkReader).
constexpr size_t kSnapshotRecordBytesMax = 64 << 20;

// The receiving end of a snapshot stream, as a SnapshotChunkReader: checks each
// chunk's CRC32C and offset, joins split records, and requires the final `last` chunk.
class ChunkStreamReader final : public SnapshotChunkReader {
 public:
  ChunkStreamReader(grpc::ServerContext* context, grpc::ServerReader<raftpb::SnapshotChunk>* reader)
      : context_(context), reader_(reader) {}

  absl::StatusOr<bool> Next(std::string* data) override {
    if (!error_.ok()) return error_;
    if (done_) return false;
    raftpb::SnapshotChunk chunk;
    std::string record;  // Pieces of a record split across chunks.
    while (true) {
      if (!reader_->Read(&chunk)) {
        return Fail(
            context_->IsCancelled()
                ? absl::CancelledError("snapshot stream cancelled")
                : absl::AbortedError(absl::StrCat(
                      "snapshot stream ended without its last chunk after ", offset_, " bytes")));
      }
      if (chunk.has_message()) {
        return Fail(absl::InvalidArgumentError("snapshot chunk after the first carries a message"));
      }
      if (chunk.offset() != offset_) {
        return Fail(absl::DataLossError(
            absl::StrCat("snapshot chunk at offset ", chunk.offset(), ", expected ", offset_)));
      }
      if (chunk.last()) {
        if (!record.empty()) {
          return Fail(absl::DataLossError("snapshot stream ended inside a split record"));
        }
        done_ = true;
        return false;
      }
      const uint32_t crc = storage::Crc32c(chunk.data());
      if (crc != chunk.crc32c()) {
        return Fail(absl::DataLossError(absl::StrCat(
            "snapshot chunk at offset ", offset_, " (", chunk.data().size(),
            " bytes) fails its CRC32C check: stored ", chunk.crc32c(), ", computed ", crc)));
      }
      offset_ += chunk.data().size();
      if (record.size() + chunk.data().size() > kSnapshotRecordBytesMax) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "snapshot record over ", kSnapshotRecordBytesMax, " bytes at offset ", offset_)));
      }
      if (record.empty() && !chunk.continued()) {
        if (chunk.data().empty()) continue;
        *data = std::move(*chunk.mutable_data());
        return true;
      }
      record += chunk.data();
      if (chunk.continued()) continue;
      *data = std::move(record);
      return true;
    }
  }

  bool done() const { return done_; }
  const absl::Status& error() const { return error_; }
  uint64_t size_bytes() const { return offset_; }

 private:
  absl::Status Fail(absl::Status status) {
    error_ = std::move(status);
    return error_;
  }

  grpc::ServerContext* const context_;
  grpc::ServerReader<raftpb::SnapshotChunk>* const reader_;
  uint64_t offset_ = 0;
  bool done_ = false;
  absl::Status error_;
};

}  // namespace

// One accepted (or refused) message stream. Reads one batch at a time: the next read
// starts once the batch is handed to the node, so batches arrive in the order sent.
class PeerReceiver::StreamReader final : public grpc::ServerReadReactor<raftpb::MessageBatch> {
 public:
  StreamReader(PeerReceiver* receiver, grpc::CallbackServerContext* context)
      : receiver_(receiver), context_(context) {
    absl::StatusOr<PeerIdentity> identity = receiver_->Admit(context, "message stream");
    if (!identity.ok()) {
      Finish(ToGrpcStatus(identity.status()));
      return;
    }
    identity_ = *std::move(identity);
    admitted_ = true;
    context->AddInitialMetadata(kPeerAcceptedKey, "1");
    StartSendInitialMetadata();
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The sender closed or cancelled the stream, or we are stopping.
      Finish(grpc::Status::OK);
      return;
    }
    // A member removed since it connected that campaigns (it no longer hears a leader)
    // is refused like a new stream of it would be, so it learns of its removal: it may
    // never apply it, as the leader stops sending to it once it applied it. A removed
    // leader handing over is not campaigning and keeps its streams.
    if (CampaignsWhileRemoved()) {
      Finish(ToGrpcStatus(CheckPeerIdentity(identity_, receiver_->options_.cluster_id,
                                            receiver_->options_.member_id,
                                            /*from_member_removed=*/true)));
      return;
    }
    receiver_->DeliverBatch(identity_, batch_);
    StartRead(&batch_);
  }

  void OnDone() override {
    // Leave last: once active_ is empty Stop() returns and the receiver may go.
    if (admitted_) receiver_->Leave(context_);
    delete this;
  }

 private:
  bool CampaignsWhileRemoved() {
    for (const raftpb::Message& m : batch_.messages()) {
      if ((m.type() == raftpb::MSG_PRE_VOTE || m.type() == raftpb::MSG_VOTE) &&
          receiver_->IsRemoved(identity_.from_member)) {
        return true;
      }
    }
    return false;
  }

  PeerReceiver* const receiver_;
  grpc::CallbackServerContext* const context_;
  PeerIdentity identity_;
  bool admitted_ = false;
  raftpb::MessageBatch batch_;
};

PeerReceiver::PeerReceiver(const PeerTransportOptions& options, PeerMessageHandler* handler,
                           SnapshotHandler* snapshots)
    : options_(options), handler_(handler), snapshots_(snapshots) {}

void PeerReceiver::MarkRemoved(uint64_t member_id) {
  std::lock_guard<std::mutex> lock(mu_);
  removed_.insert(member_id);
}

bool PeerReceiver::IsRemoved(uint64_t member_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return removed_.count(member_id) > 0;
}

void PeerReceiver::UnmarkRemoved(uint64_t member_id) {
  std::lock_guard<std::mutex> lock(mu_);
  removed_.erase(member_id);
}

void PeerReceiver::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_ = true;
  for (grpc::ServerContextBase* context : active_) context->TryCancel();
  idle_cv_.wait(lock, [&] { return active_.empty(); });
}

absl::StatusOr<PeerIdentity> PeerReceiver::Admit(grpc::ServerContextBase* context,
                                                 const char* kind) {
  absl::StatusOr<PeerIdentity> identity = ParsePeerIdentity(context->client_metadata());
  absl::Status status = identity.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return absl::UnavailableError("peer transport is stopping");
    if (status.ok()) {
      status = CheckPeerIdentity(*identity, options_.cluster_id, options_.member_id,
                                 removed_.count(identity->from_member) > 0);
    }
    if (status.ok()) active_.insert(context);
  }
  if (!status.ok()) {
    options_.log(absl::StrCat(status.message(), " [", kind, " from ", context->peer(), "]"));
    return status;
  }
  if (!identity->client_urls.empty() || !identity->name.empty()) {
    handler_->OnPeerClientUrls(identity->from_member, identity->client_urls, identity->name);
  }
  return identity;
}

void PeerReceiver::Leave(grpc::ServerContextBase* context) {
  std::lock_guard<std::mutex> lock(mu_);
  active_.erase(context);
  if (active_.empty()) idle_cv_.notify_all();
}

template <typename Reader>
void PeerReceiver::Accept(grpc::ServerContext* context, Reader* reader) {
  context->AddInitialMetadata(kPeerAcceptedKey, "1");
  reader->SendInitialMetadata();
}

grpc::ServerReadReactor<raftpb::MessageBatch>* PeerReceiver::Stream(
    grpc::CallbackServerContext* context, raftpb::StreamAck* /*ack*/) {
  return new StreamReader(this, context);
}

void PeerReceiver::DeliverBatch(const PeerIdentity& identity, raftpb::MessageBatch& batch) {
  std::vector<raftpb::Message> messages;
  messages.reserve(batch.messages_size());
  size_t misaddressed = 0;
  for (raftpb::Message& message : *batch.mutable_messages()) {
    // The handshake named both ends; a message that disagrees is a sender bug.
    if (message.to() != options_.member_id || message.from() != identity.from_member) {
      ++misaddressed;
      continue;
    }
    messages.push_back(std::move(message));
  }
  if (misaddressed > 0) {
    options_.log(absl::StrCat("dropped ", misaddressed, " message(s) on the stream from member ",
                              FormatPeerId(identity.from_member),
                              " whose from/to do not match the stream"));
  }
  if (!messages.empty()) handler_->OnMessages(std::move(messages));
}

grpc::Status PeerReceiver::SendSnapshot(grpc::ServerContext* context,
                                        grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                                        raftpb::SnapshotAck* /*ack*/) {
  absl::StatusOr<PeerIdentity> identity = Admit(context, "snapshot stream");
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  absl::Cleanup leave = [&] { Leave(context); };
  Accept(context, reader);
  const absl::Status status = ReceiveSnapshot(*identity, context, reader);
  if (!status.ok()) {
    options_.log(absl::StrCat("rejected snapshot from member ", FormatPeerId(identity->from_member),
                              ": ", status.ToString()));
  }
  return ToGrpcStatus(status);
}

absl::Status PeerReceiver::ReceiveSnapshot(const PeerIdentity& identity,
                                           grpc::ServerContext* context,
                                           grpc::ServerReader<raftpb::SnapshotChunk>* reader) {
  raftpb::SnapshotChunk first;
  if (!reader->Read(&first)) return absl::AbortedError("snapshot stream ended before its message");
  const raftpb::Message& msg_snap = first.message();
  if (!first.has_message() || msg_snap.type() != raftpb::MSG_SNAP) {
    return absl::InvalidArgumentError("first snapshot chunk does not carry a MsgSnap");
  }
  if (msg_snap.to() != options_.member_id || msg_snap.from() != identity.from_member) {
    return absl::InvalidArgumentError("MsgSnap from/to do not match the stream");
  }
  ChunkStreamReader chunks(context, reader);
  absl::Status status = snapshots_->ReceiveSnapshot(msg_snap, chunks);
  // The reader's own verdict wins: the handler may have swallowed its error.
  if (!chunks.error().ok()) return chunks.error();
  if (!status.ok()) return status;
  if (!chunks.done()) {
    return absl::InternalError(
        "snapshot handler returned OK without reading the snapshot to its end");
  }
  handler_->OnMessages({msg_snap});
  return absl::OkStatus();
}

}  // namespace keel::server
