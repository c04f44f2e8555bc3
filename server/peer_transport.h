// PeerTransport: carries Raft messages between the members of one keel cluster over
// gRPC (proto/peer.proto).
//
// Sending. Each peer has a bounded queue (messages and bytes) and one long-lived
// `Stream` call on gRPC's callback API; each write carries as many queued messages as
// fit in `batch_bytes_max`. There is no sender thread on the write path: Send starts a
// write on the caller's thread when none is in flight (a message goes out at once), and
// a write's completion starts the next with what queued up behind it (under load
// messages batch up). A per-peer connection thread connects, handshakes and backs off;
// it sleeps while the stream is healthy. A full queue drops the message and
// reports OnUnreachable (raft retries). A failed connect or write drops what was queued
// or in flight, reports OnUnreachable, and reconnects after an exponential backoff with
// full jitter. A MsgSnap goes to its own `SendSnapshot` call on its own thread (at most
// one per peer), which streams the state machine's bytes in CRC32C-checked chunks, so
// heartbeats keep flowing while a snapshot is in transfer.
//
// Receiving. service() is the gRPC service to register on the peer port. Message
// streams are served on gRPC's callback API (a batch goes to OnMessages on the gRPC
// thread that read it), snapshot streams on the sync API. Every stream
// carries the sender's cluster id and member id and the member id it addresses; a
// stream from another cluster, addressed to another member id, or from a removed member
// is refused with FAILED_PRECONDITION and a message naming both sides' ids, logged on
// both sides. Accepted batches go to PeerMessageHandler::OnMessages in the order sent;
// a snapshot goes to SnapshotHandler::ReceiveSnapshot, and its MsgSnap is delivered
// through OnMessages only once the handler installed the data.
//
// Thread-safety: every public method of PeerTransport may be called from any thread.
// Handler callbacks run on transport threads (gRPC's threads, per-peer connection and
// snapshot threads), possibly concurrently — OnUnreachable also inside Send; after
// Stop() returns there are no more.
// AddPeer/RemovePeer/UpdatePeer/Stop join transport threads and so must not be called
// from inside a handler callback.
//
// Ownership: the handlers must outlive the transport. Shut the grpc::Server that
// serves service() down before destroying the transport.
//
// Wiring (node loop): build the peer port's server with ConfigureServerBuilder() (it
// is required: without it gRPC's default 4 MiB receive limit rejects full batches, and
// the default ping policy drops idle keepalive-pinged connections) and
// RegisterService(service()); AddPeer every other member; Send(ready.messages) at once
// and Send(ready.messages_after_persist) after the synced write; feed OnMessages into
// RawNode::Step, OnUnreachable into ReportUnreachable, OnSnapshotSent into
// ReportSnapshot, all through the node loop's inbox.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/server_builder.h"
#include "proto/peer.pb.h"
#include "proto/raft.pb.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace keel::server {

class PeerReceiver;
class PeerSender;

struct PeerTransportOptions {
  uint64_t cluster_id = 0;  // Both must be set (non-zero).
  uint64_t member_id = 0;
  // This member's advertised client URLs, comma-separated; sent to every peer so that
  // each member can list the others' client URLs (Cluster.MemberList).
  std::string advertise_client_urls;
  // This member's --name, sent to every peer alongside the client URLs.
  std::string member_name;

  // Per-peer send queue bounds; past either, messages are dropped (OnUnreachable).
  size_t queue_messages_max = 4096;
  size_t queue_bytes_max = 64 << 20;
  // Bytes of messages per Stream write (a single larger message goes alone).
  size_t batch_bytes_max = 4 << 20;

  // Reconnect backoff: the n-th consecutive failure waits a uniformly random time in
  // [0, min(max, initial * 2^n)] ("full jitter"), so restarted peers are not hit by
  // every member at once. Also given to gRPC as the channel's own reconnect backoff.
  int reconnect_backoff_initial_ms = 50;
  int reconnect_backoff_max_ms = 2000;
  // How long a connect (TCP + HTTP/2 handshake) may take before it counts as failed.
  int connect_timeout_ms = 2000;

  // Snapshot data travels in wire chunks of at most this many bytes (a larger reader
  // chunk is split, and rejoined by the receiver).
  size_t snapshot_chunk_bytes = 1 << 20;

  // Seeds the backoff jitter; 0 seeds from std::random_device.
  uint64_t random_seed = 0;

  // Where the transport reports refusals, reconnects and drops (one line per call,
  // no trailing newline). Called from transport threads. Default: stderr.
  std::function<void(const std::string&)> log;

  // Test-only failpoints (leave empty in production).
  // Called on the peer's connection (or snapshot) thread just before a message is
  // written: returning true drops it; blocking delays it and everything queued behind
  // it for that peer. Setting it moves that peer's writes from the caller's thread to
  // the connection thread (one thread hop more), so a blocking filter stalls only it.
  std::function<bool(const raftpb::Message&)> drop_filter;
  // Called on the snapshot thread on every data chunk after its CRC is computed; may
  // alter the chunk (e.g. to corrupt it).
  std::function<void(raftpb::SnapshotChunk&)> snapshot_chunk_filter;
};

// Implemented by the node. Called from transport threads, possibly concurrently.
class PeerMessageHandler {
 public:
  virtual ~PeerMessageHandler() = default;
  // Messages from one peer, in the order that peer sent them, on the stream's receiving
  // thread. Queues them for the node loop; when the loop is idle it may run one pass of
  // it right here (RaftNode: an fsync at most), which saves a thread wake-up on the
  // replication path. So the caller holds no lock and starts its next read after.
  virtual void OnMessages(std::vector<raftpb::Message> messages) = 0;
  // A message to `peer_id` was dropped (queue full, peer down, stream failed): the
  // node should call RawNode::ReportUnreachable. May be called many times in a row,
  // and also synchronously from inside PeerTransport::Send (queue full), so it must not
  // take a lock that Send's caller holds: posting to the node loop's inbox is the
  // intended implementation.
  virtual void OnUnreachable(uint64_t peer_id) = 0;
  // A snapshot transfer to `peer_id` finished: RawNode::ReportSnapshot(peer_id, ok).
  virtual void OnSnapshotSent(uint64_t peer_id, bool ok) = 0;
  // A peer connected and told its client URLs (comma-separated) and name.
  virtual void OnPeerClientUrls(uint64_t peer_id, const std::string& client_urls,
                                const std::string& name) {}
  // Peer `peer_id` refused our stream because this member was removed from the cluster
  // (it applied the removal; we may never apply it: once the leader applied it, it
  // sends us nothing more, possibly not even the commit). etcd's 410 Gone.
  virtual void OnRemovedByPeer(uint64_t peer_id) {}
};

// A sequence of snapshot data chunks (records). Used by one thread at a time.
// Boundaries are preserved end to end: the receiver's reader yields exactly the chunks
// the sender's reader yielded, in order, so a chunk may be a self-contained serialized
// record. On the wire a chunk larger than snapshot_chunk_bytes is split and rejoined;
// a chunk may be at most 64 MiB. Empty chunks are skipped.
class SnapshotChunkReader {
 public:
  virtual ~SnapshotChunkReader() = default;
  // Sets `chunk` to the next chunk and returns true, or returns false at the end.
  // Errors end the transfer (the receiver side: kDataLoss for a corrupt or out-of-order
  // chunk, kAborted/kCancelled for a stream that ended early).
  [[nodiscard]] virtual absl::StatusOr<bool> Next(std::string* chunk) = 0;
};

// Implemented by the node: the state machine's snapshots. Called from transport threads.
class SnapshotHandler {
 public:
  virtual ~SnapshotHandler() = default;
  // Sender side: opens the state-machine snapshot that `msg_snap` refers to (its
  // snapshot.data handle). Runs on the peer's snapshot thread.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<SnapshotChunkReader>> OpenSnapshot(
      const raftpb::Message& msg_snap) = 0;
  // Receiver side: consumes all chunks and installs the data. On OK the transport
  // delivers `msg_snap` through OnMessages, so raft sees the snapshot only once the
  // data is in place. Must not return OK for data it did not fully read and check.
  [[nodiscard]] virtual absl::Status ReceiveSnapshot(const raftpb::Message& msg_snap,
                                                     SnapshotChunkReader& chunks) = 0;
};

// Counters of one peer's outgoing side (monotonic; for metrics and tests).
struct PeerSendStats {
  uint64_t messages_sent = 0;     // Written to a stream (not necessarily received).
  uint64_t batches_sent = 0;      // Stream writes.
  uint64_t messages_dropped = 0;  // Queue full, filtered, or lost with a failed stream.
  uint64_t connects = 0;          // Streams accepted by the peer.
  uint64_t connect_failures = 0;  // Unreachable, refused, or timed out.
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_failed = 0;
};

class PeerTransport {
 public:
  // `handler` and `snapshots` must be non-null and outlive the transport.
  PeerTransport(PeerTransportOptions options, PeerMessageHandler* handler,
                SnapshotHandler* snapshots);
  ~PeerTransport();  // Stop()s.
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // The receiving side; register it on the peer port's ServerBuilder.
  [[nodiscard]] grpc::Service* service();
  // Sets what the peer port's server needs for this transport: a receive message limit
  // that fits the largest batch and snapshot chunk, and keepalive pings from peers.
  void ConfigureServerBuilder(grpc::ServerBuilder& builder) const;

  // Starts sending to peer `id` at `address` ("host:port"). AddPeer of a known id
  // updates its address; UpdatePeer of an unknown id adds it.
  void AddPeer(uint64_t id, const std::string& address);
  // Reconnects peer `id` to a new address (its queue is kept).
  void UpdatePeer(uint64_t id, const std::string& address);
  // Stops sending to `id` (queued messages are dropped, an in-flight snapshot is
  // cancelled) and refuses its streams from now on: a removed member is gone for good.
  void RemovePeer(uint64_t id);

  // Queues each message for its `to` peer. Never blocks. A MsgSnap starts a snapshot
  // transfer instead (dropped if one to that peer is in flight: raft waits for the
  // result of the first). Messages to unknown peers are dropped and logged.
  void Send(std::vector<raftpb::Message> messages);

  // Refuses new streams, cancels open ones, closes outgoing streams and joins every
  // transport thread. Idempotent. Afterwards Send drops everything. Waits for handler
  // calls in progress (e.g. a ReceiveSnapshot, whose chunk reader fails once the
  // stream is cancelled) to return.
  void Stop();

  [[nodiscard]] std::optional<PeerSendStats> GetPeerSendStats(uint64_t id) const;

 private:
  void Log(const std::string& line) const;
  std::shared_ptr<PeerSender> FindPeer(uint64_t id) const;

  const PeerTransportOptions options_;
  PeerMessageHandler* const handler_;
  SnapshotHandler* const snapshots_;
  std::unique_ptr<PeerReceiver> receiver_;

  mutable std::mutex mu_;
  bool stopped_ = false;                                   // Guarded by mu_.
  std::map<uint64_t, std::shared_ptr<PeerSender>> peers_;  // Guarded by mu_.
  std::set<uint64_t> removed_;  // RemovePeer()d; messages to them drop silently. mu_.
  uint64_t next_seed_ = 0;      // Guarded by mu_.
};

}  // namespace keel::server
