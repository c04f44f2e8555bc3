#include "server/peer_sender.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "server/peer_wire.h"
#include "server/thread_name.h"
#include "storage/crc32c.h"

namespace keel::server {
namespace {

using Clock = std::chrono::steady_clock;

// A dead peer (host down, process paused) is noticed by keepalive pings, since a
// long-lived stream has no deadline. The receiver allows pings this often
// (PeerTransport::ConfigureServerBuilder).
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;
// A run of identical failures is logged once, then every this many repeats.
constexpr int kRepeatedFailureLogEvery = 50;

std::shared_ptr<grpc::Channel> MakeChannel(const PeerTransportOptions& options,
                                           const std::string& address) {
  grpc::ChannelArguments args;
  // gRPC's own reconnect backoff must not exceed ours, or a restarted peer would stay
  // unreachable (channel in TRANSIENT_FAILURE) long after our backoff said "retry".
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options.reconnect_backoff_initial_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options.reconnect_backoff_max_ms);
  // In gRPC this is also the minimum time a connect attempt is given.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, options.connect_timeout_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // One connection per peer, not shared with other channels of the process (tests run
  // several transports in one process; each must reconnect on its own).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

bool Accepted(const grpc::ClientContext& context) {
  return context.GetServerInitialMetadata().count(kPeerAcceptedKey) > 0;
}

}  // namespace

// One open Stream call. gRPC calls the reactions; the sender's mu_ guards the fields
// the reactions set. A hold (AddHold before StartCall) keeps gRPC from finishing the
// call while writes may still start from outside a reaction (Enqueue); CloseStream
// removes it once no write can start any more.
class PeerSender::Stream final : public grpc::ClientWriteReactor<raftpb::MessageBatch> {
 public:
  explicit Stream(PeerSender* sender) : sender_(sender) {}

  void OnReadInitialMetadataDone(bool ok) override {
    const bool accepted_now = ok && Accepted(*context);
    std::lock_guard<std::mutex> lock(sender_->mu_);
    headers_done = true;
    accepted = accepted_now;
    sender_->cv_.notify_all();
  }
  void OnWriteDone(bool ok) override { sender_->OnWriteDone(this, ok); }
  void OnDone(const grpc::Status& final_status) override {
    // Notified under the lock: once it is released the connection thread may delete
    // this stream and, when stopping, the sender.
    std::lock_guard<std::mutex> lock(sender_->mu_);
    status = final_status;
    done = true;
    sender_->cv_.notify_all();
  }

  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<raftpb::RaftTransport::Stub> stub;
  raftpb::StreamAck ack;
  raftpb::MessageBatch batch;  // The write in flight; owned by gRPC while writing_.
  uint64_t address_generation = 0;
  uint64_t batches_sent_at_connect = 0;
  bool headers_done = false;  // Guarded by the sender's mu_, as are the three below.
  bool accepted = false;
  bool done = false;
  grpc::Status status;

 private:
  PeerSender* const sender_;
};

PeerSender::PeerSender(const PeerTransportOptions& options, PeerMessageHandler* handler,
                       SnapshotHandler* snapshots, uint64_t peer_id, std::string address,
                       uint64_t seed)
    : options_(options),
      handler_(handler),
      snapshots_(snapshots),
      peer_id_(peer_id),
      address_(std::move(address)),
      rng_(seed) {
  channel_ = MakeChannel(options_, address_);
  thread_ = std::thread(&PeerSender::Run, this);
}

PeerSender::~PeerSender() { Stop(); }

void PeerSender::Log(const std::string& line) const { options_.log(line); }

std::string PeerSender::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrCat("peer ", FormatPeerId(peer_id_), " at ", address_);
}

void PeerSender::Enqueue(std::vector<raftpb::Message> messages) {
  size_t dropped = 0;
  bool stopping;
  Stream* write_on = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
    for (raftpb::Message& message : messages) {
      const size_t size = message.ByteSizeLong();
      if (stopping_ || queue_.size() >= options_.queue_messages_max ||
          queue_bytes_ + size > options_.queue_bytes_max) {
        ++dropped;
        continue;
      }
      queue_.push_back(Queued{std::move(message), size});
      queue_bytes_ += size;
    }
    stats_.messages_dropped += dropped;
    if (options_.drop_filter) {
      cv_.notify_all();  // The connection thread writes (and filters).
    } else {
      write_on = TakeBatchLocked();
    }
  }
  // Outside the lock: the completion may run inline and take mu_.
  if (write_on != nullptr) write_on->StartWrite(&write_on->batch);
  if (dropped > 0 && !stopping) handler_->OnUnreachable(peer_id_);
}

void PeerSender::SetAddress(std::string address) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (address == address_) return;
    address_ = std::move(address);
    channel_ = MakeChannel(options_, address_);
    ++address_generation_;
    // The open calls use the old channel; the sender thread reconnects.
    if (stream_context_ != nullptr) stream_context_->TryCancel();
  }
  cv_.notify_all();
}

bool PeerSender::StartSnapshot(raftpb::Message msg_snap) {
  std::thread previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || snapshot_in_flight_) return false;
    snapshot_in_flight_ = true;
    previous = std::move(snapshot_thread_);
    snapshot_thread_ = std::thread(&PeerSender::RunSnapshot, this, std::move(msg_snap));
  }
  // The previous transfer is over (in flight was false); it may at most be finishing
  // its OnSnapshotSent call. If that call is what led here, we are that thread.
  if (previous.joinable()) {
    if (previous.get_id() == std::this_thread::get_id()) {
      std::lock_guard<std::mutex> lock(mu_);
      retired_threads_.push_back(std::move(previous));
    } else {
      previous.join();
    }
  }
  return true;
}

void PeerSender::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stats_.messages_dropped += queue_.size();
    queue_.clear();
    queue_bytes_ = 0;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
    if (snapshot_context_ != nullptr) snapshot_context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads = std::move(retired_threads_);
    threads.push_back(std::move(snapshot_thread_));
  }
  for (std::thread& thread : threads) {
    if (thread.joinable()) thread.join();
  }
}

PeerSendStats PeerSender::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

absl::Status PeerSender::WaitConnected(grpc::Channel& channel, uint64_t address_generation) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return absl::CancelledError("transport stopping");
      if (address_generation != address_generation_) {
        return absl::CancelledError("peer address changed");
      }
    }
    if (Clock::now() >= deadline) {
      return absl::UnavailableError(
          absl::StrCat("could not connect within ", options_.connect_timeout_ms, " ms"));
    }
    // Wake up now and then to notice Stop/SetAddress. (gRPC takes system_clock only.)
    const auto slice =
        std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(50));
    if (channel.WaitForStateChange(state, std::chrono::system_clock::now() + slice)) {
      const grpc_connectivity_state next = channel.GetState(/*try_to_connect=*/true);
      // A fresh attempt that failed: report it now rather than at the timeout. (A
      // channel that *stays* in TRANSIENT_FAILURE may be retrying underneath: wait.)
      if (next == GRPC_CHANNEL_TRANSIENT_FAILURE && state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
        return absl::UnavailableError("connection failed");
      }
      state = next;
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> PeerSender::NewContext(grpc::ClientContext** slot) {
  auto context = std::make_unique<grpc::ClientContext>();
  AddPeerIdentity({options_.cluster_id, options_.member_id, peer_id_,
                   options_.advertise_client_urls, options_.member_name},
                  *context);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return nullptr;
  *slot = context.get();
  return context;
}

absl::StatusOr<std::unique_ptr<PeerSender::Stream>> PeerSender::Connect() {
  std::shared_ptr<grpc::Channel> channel;
  auto stream = std::make_unique<Stream>(this);
  {
    std::lock_guard<std::mutex> lock(mu_);
    channel = channel_;
    stream->address_generation = address_generation_;
  }
  RETURN_IF_ERROR(WaitConnected(*channel, stream->address_generation));
  stream->context = NewContext(&stream_context_);
  if (stream->context == nullptr) return absl::CancelledError("transport stopping");
  stream->stub = raftpb::RaftTransport::NewStub(channel);
  stream->stub->async()->Stream(stream->context.get(), &stream->ack, stream.get());
  stream->AddHold();  // Writes start from outside reactions (Enqueue); see Stream.
  stream->StartCall();
  bool accepted;
  {
    // Until the receiver accepted (initial metadata) or refused (status). Stop and
    // SetAddress cancel the call, which ends this wait too.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stream->headers_done || stream->done; });
    accepted = stream->accepted;
  }
  if (!accepted) {
    const grpc::Status status = CloseStream(stream, /*cancel=*/false);
    if (status.ok()) return absl::UnknownError("peer ended the stream without accepting it");
    return FromGrpcStatus(status);
  }
  Stream* write_on = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream->batches_sent_at_connect = stats_.batches_sent;
    ++stats_.connects;
    live_ = stream.get();
    if (!options_.drop_filter) write_on = TakeBatchLocked();
  }
  if (write_on != nullptr) write_on->StartWrite(&write_on->batch);
  return stream;
}

grpc::Status PeerSender::CloseStream(std::unique_ptr<Stream>& stream, bool cancel) {
  if (stream == nullptr) return grpc::Status::OK;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_ == stream.get()) live_ = nullptr;  // No write starts on it from now on.
  }
  if (cancel) stream->context->TryCancel();
  {
    std::unique_lock<std::mutex> lock(mu_);
    // A write in flight completes (failed, if cancelled) before the hold may go.
    cv_.wait(lock, [&] { return !writing_; });
  }
  stream->RemoveHold();
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Without a cancel the call ends with the peer's status (a refusal, or the
    // reason a write failed); a peer that never sends one is cancelled after a while.
    if (!cv_.wait_for(lock, std::chrono::milliseconds(options_.connect_timeout_ms),
                      [&] { return stream->done; })) {
      lock.unlock();
      stream->context->TryCancel();
      lock.lock();
      cv_.wait(lock, [&] { return stream->done; });
    }
    if (stream_context_ == stream->context.get()) stream_context_ = nullptr;
    stream_failed_ = false;
  }
  grpc::Status status = stream->status;
  stream.reset();
  return status;
}

PeerSender::Stream* PeerSender::TakeBatchLocked() {
  if (live_ == nullptr || writing_ || stopping_ || queue_.empty()) return nullptr;
  raftpb::MessageBatch& batch = live_->batch;
  batch.Clear();
  size_t bytes = 0;
  while (!queue_.empty() && (batch.messages_size() == 0 ||
                             bytes + queue_.front().size_bytes <= options_.batch_bytes_max)) {
    bytes += queue_.front().size_bytes;
    queue_bytes_ -= queue_.front().size_bytes;
    *batch.add_messages() = std::move(queue_.front().message);
    queue_.pop_front();
  }
  writing_ = true;
  return live_;
}

void PeerSender::OnWriteDone(Stream* stream, bool ok) {
  Stream* write_on = nullptr;
  bool report = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    const uint64_t count = stream->batch.messages_size();
    if (ok) {
      stats_.messages_sent += count;
      ++stats_.batches_sent;
    } else {
      stats_.messages_dropped += count;
      if (live_ == stream) {
        live_ = nullptr;
        stream_failed_ = true;
        report = !stopping_;
      }
    }
    if (live_ == stream && !options_.drop_filter) {
      write_on = TakeBatchLocked();  // What queued up behind this write, as one batch.
    } else {
      // The connection thread waits for this: a failed or closing stream, or (drop
      // filter) its turn to write. A healthy stream does not wake it.
      cv_.notify_all();
    }
  }
  if (write_on != nullptr) write_on->StartWrite(&write_on->batch);
  if (report) handler_->OnUnreachable(peer_id_);
}

void PeerSender::WriteFiltered() {
  std::vector<raftpb::Message> taken;
  Stream* stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_ == nullptr || writing_ || stopping_ || queue_.empty()) return;
    stream = live_;
    size_t bytes = 0;
    while (!queue_.empty() &&
           (taken.empty() || bytes + queue_.front().size_bytes <= options_.batch_bytes_max)) {
      bytes += queue_.front().size_bytes;
      queue_bytes_ -= queue_.front().size_bytes;
      taken.push_back(std::move(queue_.front().message));
      queue_.pop_front();
    }
    writing_ = true;
  }
  // Only this thread closes streams, so `stream` stays valid while the filter runs.
  stream->batch.Clear();
  size_t filtered = 0;
  for (raftpb::Message& message : taken) {
    if (options_.drop_filter(message)) {
      ++filtered;
      continue;
    }
    *stream->batch.add_messages() = std::move(message);
  }
  if (stream->batch.messages_size() == 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.messages_dropped += filtered;
    writing_ = false;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.messages_dropped += filtered;
  }
  stream->StartWrite(&stream->batch);
}

size_t PeerSender::DropQueued() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t dropped = queue_.size();
  stats_.messages_dropped += dropped;
  queue_.clear();
  queue_bytes_ = 0;
  return dropped;
}

void PeerSender::Backoff(int consecutive_failures) {
  const int64_t initial_ms = std::max(1, options_.reconnect_backoff_initial_ms);
  const int shift = std::min(consecutive_failures - 1, 30);
  const int64_t cap_ms =
      std::min<int64_t>(options_.reconnect_backoff_max_ms, initial_ms << std::max(shift, 0));
  std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(cap_ms, 0));
  const auto wait = std::chrono::milliseconds(jitter(rng_));
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t generation = address_generation_;
  cv_.wait_for(lock, wait, [&] { return stopping_ || generation != address_generation_; });
}

void PeerSender::NoteRemoval(const absl::Status& status) {
  // The peer's refusal (CheckPeerIdentity) names this member as removed.
  if (absl::IsFailedPrecondition(status) &&
      absl::StrContains(status.message(), absl::StrCat("member ", FormatPeerId(options_.member_id),
                                                       " was removed from cluster"))) {
    handler_->OnRemovedByPeer(peer_id_);
  }
}

void PeerSender::LogFailure(const std::string& line) {
  if (line == last_failure_logged_ && ++failures_since_log_ < kRepeatedFailureLogEvery) return;
  if (line == last_failure_logged_) {
    Log(absl::StrCat(line, " (", failures_since_log_, " times since last logged)"));
  } else {
    Log(line);
  }
  last_failure_logged_ = line;
  failures_since_log_ = 0;
}

uint64_t PeerSender::AddressGeneration() const {
  std::lock_guard<std::mutex> lock(mu_);
  return address_generation_;
}

bool PeerSender::Stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void PeerSender::Run() {
  SetThreadName("keel-peer-conn");
  std::unique_ptr<Stream> stream;
  int failures = 0;
  while (true) {
    bool failed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Connect eagerly, not at the first message: the handshake tells the peer our
      // identity (a misconfigured member is refused at once, in both logs) and our
      // client URLs, and the first real message does not pay for the connect. While
      // the stream is healthy this thread sleeps: writes start from Enqueue and from
      // each write's completion.
      cv_.wait(lock, [&] {
        return stopping_ || stream == nullptr || stream_failed_ ||
               stream->address_generation != address_generation_ ||
               (options_.drop_filter && live_ != nullptr && !writing_ && !queue_.empty());
      });
      if (stopping_) break;
      failed = stream_failed_;
    }
    if (stream != nullptr && stream->address_generation != AddressGeneration()) {
      (void)CloseStream(stream, /*cancel=*/true);  // Readdressed: reconnect at once.
      failed = false;
    }
    if (failed && stream != nullptr) {
      uint64_t sent_on_stream;
      {
        std::lock_guard<std::mutex> lock(mu_);
        sent_on_stream = stats_.batches_sent - stream->batches_sent_at_connect;
      }
      const grpc::Status status = CloseStream(stream, /*cancel=*/false);
      if (Stopping()) break;
      // OnWriteDone reported the peer unreachable; what queued meanwhile is kept for
      // the next stream (or dropped if the reconnect fails).
      LogFailure(absl::StrCat("stream to ", Describe(), " failed: ",
                              FromGrpcStatus(status).ToString(), "; reconnecting with backoff"));
      NoteRemoval(FromGrpcStatus(status));
      if (sent_on_stream > 0) failures = 0;
      Backoff(++failures);
      continue;
    }
    if (stream == nullptr) {
      absl::StatusOr<std::unique_ptr<Stream>> connected = Connect();
      if (!connected.ok()) {
        if (Stopping()) break;
        if (absl::IsCancelled(connected.status())) continue;  // Readdressed: retry now.
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.connect_failures;
        }
        const bool refused = absl::IsFailedPrecondition(connected.status());
        LogFailure(absl::StrCat(refused ? "refused by " : "cannot reach ", Describe(), ": ",
                                connected.status().ToString(), "; retrying with backoff"));
        NoteRemoval(connected.status());
        if (DropQueued() > 0) handler_->OnUnreachable(peer_id_);
        Backoff(++failures);
        continue;
      }
      stream = *std::move(connected);
      if (!last_failure_logged_.empty()) {
        Log(absl::StrCat("connected to ", Describe(), " after ", failures, " failed attempts"));
        last_failure_logged_.clear();
        failures_since_log_ = 0;
      }
      failures = 0;
    }
    if (options_.drop_filter) WriteFiltered();
  }
  (void)CloseStream(stream, /*cancel=*/true);
}

void PeerSender::RunSnapshot(raftpb::Message msg_snap) {
  SetThreadName("keel-snap-send");
  const uint64_t index = msg_snap.snapshot().metadata().index();
  const absl::Status status = TransferSnapshot(msg_snap);
  if (!status.ok()) {
    Log(absl::StrCat("snapshot at index ", index, " to ", Describe(),
                     " failed: ", status.ToString()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++(status.ok() ? stats_.snapshots_sent : stats_.snapshots_failed);
    // Cleared before reporting: raft may answer the report with a new MsgSnap at once,
    // which must not be dropped as a duplicate of this finished one.
    snapshot_in_flight_ = false;
  }
  handler_->OnSnapshotSent(peer_id_, status.ok());
}

absl::Status PeerSender::TransferSnapshot(const raftpb::Message& msg_snap) {
  if (options_.drop_filter && options_.drop_filter(msg_snap)) {
    return absl::AbortedError("dropped by the test failpoint");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SnapshotChunkReader> reader, snapshots_->OpenSnapshot(msg_snap));
  std::shared_ptr<grpc::Channel> channel;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    channel = channel_;
    generation = address_generation_;
  }
  RETURN_IF_ERROR(WaitConnected(*channel, generation));
  std::unique_ptr<grpc::ClientContext> context = NewContext(&snapshot_context_);
  if (context == nullptr) return absl::CancelledError("transport stopping");
  absl::Cleanup unregister = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_context_ = nullptr;
  };
  auto stub = raftpb::RaftTransport::NewStub(channel);
  raftpb::SnapshotAck ack;
  std::unique_ptr<grpc::ClientWriter<raftpb::SnapshotChunk>> writer =
      stub->SendSnapshot(context.get(), &ack);
  // The call's final status explains a failed write (e.g. the receiver's CRC check).
  auto finish_failed = [&]() -> absl::Status {
    const grpc::Status status = writer->Finish();
    if (status.ok()) return absl::UnknownError("snapshot stream closed early");
    return FromGrpcStatus(status);
  };
  writer->WaitForInitialMetadata();
  if (!Accepted(*context)) return finish_failed();

  raftpb::SnapshotChunk chunk;
  *chunk.mutable_message() = msg_snap;
  if (!writer->Write(chunk)) return finish_failed();
  uint64_t offset = 0;
  std::string data;
  const size_t chunk_bytes_max = std::max<size_t>(1, options_.snapshot_chunk_bytes);
  while (true) {
    absl::StatusOr<bool> more = reader->Next(&data);
    if (!more.ok()) {
      context->TryCancel();
      (void)writer->Finish();
      return more.status();
    }
    if (!*more) break;
    for (size_t pos = 0; pos < data.size(); pos += chunk_bytes_max) {
      const std::string_view piece =
          std::string_view(data).substr(pos, std::min(chunk_bytes_max, data.size() - pos));
      chunk.Clear();
      chunk.set_data(piece.data(), piece.size());
      chunk.set_crc32c(storage::Crc32c(piece));
      chunk.set_offset(offset);
      chunk.set_continued(pos + piece.size() < data.size());
      offset += piece.size();
      if (options_.snapshot_chunk_filter) options_.snapshot_chunk_filter(chunk);
      if (!writer->Write(chunk)) return finish_failed();
    }
  }
  chunk.Clear();
  chunk.set_last(true);
  chunk.set_offset(offset);
  if (!writer->Write(chunk)) return finish_failed();
  (void)writer->WritesDone();
  return FromGrpcStatus(writer->Finish());
}

}  // namespace keel::server
