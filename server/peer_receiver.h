// PeerReceiver: the receiving side of the peer transport, the RaftTransport gRPC
// service. Message streams use gRPC's callback API: a batch is handed to the node on
// whichever gRPC thread read it off the socket, with no stream thread to wake (one
// thread hop less per message). Snapshot streams keep the sync API (one gRPC server
// thread per transfer in progress): the snapshot handler pulls chunks and blocks.
// Internal to server/peer_transport*; see peer_transport.h for the behaviour.
//
// Thread-safety: thread-safe; gRPC calls the handlers concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "proto/peer.grpc.pb.h"
#include "server/peer_transport.h"
#include "server/peer_wire.h"

namespace keel::server {

class PeerReceiver final
    : public raftpb::RaftTransport::WithCallbackMethod_Stream<raftpb::RaftTransport::Service> {
 public:
  // `options`, `handler` and `snapshots` must outlive the receiver.
  PeerReceiver(const PeerTransportOptions& options, PeerMessageHandler* handler,
               SnapshotHandler* snapshots);

  grpc::ServerReadReactor<raftpb::MessageBatch>* Stream(grpc::CallbackServerContext* context,
                                                        raftpb::StreamAck* ack) override;
  grpc::Status SendSnapshot(grpc::ServerContext* context,
                            grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                            raftpb::SnapshotAck* ack) override;

  // Streams from `member_id` are refused from now on (it left the cluster).
  void MarkRemoved(uint64_t member_id);
  void UnmarkRemoved(uint64_t member_id);
  bool IsRemoved(uint64_t member_id);

  // Refuses new streams, cancels open ones and waits until every handler returned
  // (and every message stream's reactor is done).
  void Stop();

 private:
  class StreamReader;  // One message stream (a ServerReadReactor).

  // Admits a call: checks its identity, registers it for Stop, and sends the
  // acceptance metadata. On error the call must return the status at once.
  absl::StatusOr<PeerIdentity> Admit(grpc::ServerContextBase* context, const char* kind);
  void Leave(grpc::ServerContextBase* context);
  template <typename Reader>
  void Accept(grpc::ServerContext* context, Reader* reader);

  void DeliverBatch(const PeerIdentity& identity, raftpb::MessageBatch& batch);
  absl::Status ReceiveSnapshot(const PeerIdentity& identity, grpc::ServerContext* context,
                               grpc::ServerReader<raftpb::SnapshotChunk>* reader);

  const PeerTransportOptions& options_;
  PeerMessageHandler* const handler_;
  SnapshotHandler* const snapshots_;

  std::mutex mu_;
  std::condition_variable idle_cv_;
  bool stopped_ = false;                       // Guarded by mu_.
  std::set<uint64_t> removed_;                 // Guarded by mu_.
  std::set<grpc::ServerContextBase*> active_;  // Guarded by mu_; calls not yet done.
};

}  // namespace keel::server
