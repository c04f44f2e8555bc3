// PeerSender: the outgoing side of the peer transport for one peer — a bounded queue,
// a long-lived Stream call on gRPC's callback API, one connection thread, and at most
// one snapshot thread.
//
// The write path has no thread of its own: Enqueue starts a write on the calling thread
// (the node loop) when none is in flight, and the write's completion starts the next
// one with whatever queued up meanwhile (so messages batch up behind a write in
// progress). That saves a thread wake-up per replication round on every member. The
// connection thread only connects, handshakes, notices a failed stream and backs off;
// it sleeps while the stream is healthy. With a drop filter (tests) the connection
// thread does the writing, so that a filter that blocks holds up only this peer.
// Internal to server/peer_transport*; see peer_transport.h for the behaviour.
//
// Thread-safety: all public methods are thread-safe. Stop() joins the threads and must
// not be called from them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "proto/peer.grpc.pb.h"
#include "server/peer_transport.h"

namespace keel::server {

class PeerSender {
 public:
  // `options`, `handler` and `snapshots` must outlive the sender. Starts the sender
  // thread, which connects once there is something to send.
  PeerSender(const PeerTransportOptions& options, PeerMessageHandler* handler,
             SnapshotHandler* snapshots, uint64_t peer_id, std::string address, uint64_t seed);
  ~PeerSender();  // Stop()s.
  PeerSender(const PeerSender&) = delete;
  PeerSender& operator=(const PeerSender&) = delete;

  // Queues messages (not MsgSnap) in order; those past the queue bounds are dropped
  // and reported through OnUnreachable once per call.
  void Enqueue(std::vector<raftpb::Message> messages);
  // Starts a snapshot transfer unless one is in flight (then drops it and returns false).
  bool StartSnapshot(raftpb::Message msg_snap);
  // Points the sender at a new address; the current stream is closed.
  void SetAddress(std::string address);
  // Drops the queue, cancels the streams, joins the threads. Idempotent.
  void Stop();

  [[nodiscard]] PeerSendStats stats() const;

 private:
  class Stream;  // One open Stream call (a ClientWriteReactor).
  struct Queued {
    raftpb::Message message;
    size_t size_bytes;
  };

  void Run();
  // Opens and handshakes a Stream call; kFailedPrecondition if the peer refused it.
  absl::StatusOr<std::unique_ptr<Stream>> Connect();
  // Ends a stream: stops new writes on it, cancels it if `cancel` (otherwise waits a
  // while for the peer's status), waits for its write in flight and for gRPC to be
  // done with it. Returns the call's final status.
  grpc::Status CloseStream(std::unique_ptr<Stream>& stream, bool cancel);
  // With mu_ held: moves queued messages (up to batch_bytes_max) into the live
  // stream's batch and marks a write in flight; returns the stream to start the write
  // on (after unlocking), or nullptr when there is no live stream, a write is already
  // in flight, or nothing is queued.
  Stream* TakeBatchLocked();
  // A write on `stream` completed (a gRPC callback thread, or inline in StartWrite).
  void OnWriteDone(Stream* stream, bool ok);
  // Drop-filter mode: the connection thread takes, filters and writes one batch.
  void WriteFiltered();
  // Waits until the channel is connected, the connect timeout passes, or the sender
  // is stopped or readdressed (kCancelled).
  absl::Status WaitConnected(grpc::Channel& channel, uint64_t address_generation);
  // Drops the queue; returns how many messages were dropped.
  size_t DropQueued();
  // Sleeps for the next backoff interval or until stopped / readdressed.
  void Backoff(int consecutive_failures);
  void LogFailure(const std::string& line);
  // Tells the handler if `status` is a peer's refusal because this member was removed.
  void NoteRemoval(const absl::Status& status);

  void RunSnapshot(raftpb::Message msg_snap);
  absl::Status TransferSnapshot(const raftpb::Message& msg_snap);

  // A context carrying our identity, registered in `slot` (guarded by mu_) so Stop and
  // SetAddress can cancel the call; nullptr when stopping. The caller clears the slot.
  std::unique_ptr<grpc::ClientContext> NewContext(grpc::ClientContext** slot);
  void Log(const std::string& line) const;
  std::string Describe() const;  // "peer <id> at <address>"
  bool Stopping() const;
  uint64_t AddressGeneration() const;

  const PeerTransportOptions& options_;
  PeerMessageHandler* const handler_;
  SnapshotHandler* const snapshots_;
  const uint64_t peer_id_;

  std::mutex stop_mu_;  // Serializes Stop().
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                   // Guarded by mu_.
  std::string address_;                     // Guarded by mu_.
  uint64_t address_generation_ = 0;         // Guarded by mu_; bumped by SetAddress.
  std::shared_ptr<grpc::Channel> channel_;  // Guarded by mu_.
  std::deque<Queued> queue_;                // Guarded by mu_.
  size_t queue_bytes_ = 0;                  // Guarded by mu_; sum of ByteSizeLong.
  // The stream writes go to (handshaken, not failed, not closing); nullptr otherwise.
  Stream* live_ = nullptr;                           // Guarded by mu_.
  bool writing_ = false;                             // Guarded by mu_; a write in flight.
  bool stream_failed_ = false;                       // Guarded by mu_; a write failed.
  grpc::ClientContext* stream_context_ = nullptr;    // Guarded by mu_; open Stream call.
  grpc::ClientContext* snapshot_context_ = nullptr;  // Guarded by mu_.
  bool snapshot_in_flight_ = false;                  // Guarded by mu_.
  std::thread snapshot_thread_;                      // Guarded by mu_.
  std::vector<std::thread> retired_threads_;         // Guarded by mu_; joined by Stop.
  PeerSendStats stats_;                              // Guarded by mu_.

  // Connection thread only.
  std::mt19937_64 rng_;
  std::string last_failure_logged_;
  int failures_since_log_ = 0;

  std::thread thread_;
};

}  // namespace keel::server
