// PeerSender: the outgoing side of the peer transport for one peer — a bounded queue,
// one sender thread holding a long-lived Stream call, and at most one snapshot thread.
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
  struct Stream;  // One open Stream call.
  struct Queued {
    raftpb::Message message;
    size_t size_bytes;
  };

  void Run();
  // Opens and handshakes a Stream call; kFailedPrecondition if the peer refused it.
  absl::StatusOr<std::unique_ptr<Stream>> Connect();
  // Ends a stream (cancelling and finishing it first if `cancel`) and unregisters it.
  void CloseStream(std::unique_ptr<Stream>& stream, bool cancel);
  // Waits until the channel is connected, the connect timeout passes, or the sender
  // is stopped or readdressed (kCancelled).
  absl::Status WaitConnected(grpc::Channel& channel, uint64_t address_generation);
  // Takes queued messages up to batch_bytes_max (the drop filter applied); false when
  // stopping.
  bool TakeBatch(raftpb::MessageBatch* batch);
  // Drops the queue; returns how many messages were dropped.
  size_t DropQueued();
  // Sleeps for the next backoff interval or until stopped / readdressed.
  void Backoff(int consecutive_failures);
  void LogFailure(const std::string& line);

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
  bool stopping_ = false;                            // Guarded by mu_.
  std::string address_;                              // Guarded by mu_.
  uint64_t address_generation_ = 0;                  // Guarded by mu_; bumped by SetAddress.
  std::shared_ptr<grpc::Channel> channel_;           // Guarded by mu_.
  std::deque<Queued> queue_;                         // Guarded by mu_.
  size_t queue_bytes_ = 0;                           // Guarded by mu_; sum of ByteSizeLong.
  grpc::ClientContext* stream_context_ = nullptr;    // Guarded by mu_; open Stream call.
  grpc::ClientContext* snapshot_context_ = nullptr;  // Guarded by mu_.
  bool snapshot_in_flight_ = false;                  // Guarded by mu_.
  std::thread snapshot_thread_;                      // Guarded by mu_.
  std::vector<std::thread> retired_threads_;         // Guarded by mu_; joined by Stop.
  PeerSendStats stats_;                              // Guarded by mu_.

  // Sender thread only.
  std::mt19937_64 rng_;
  std::string last_failure_logged_;
  int failures_since_log_ = 0;

  std::thread thread_;
};

}  // namespace keel::server
