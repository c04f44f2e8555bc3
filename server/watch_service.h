// The etcd Watch service (/etcdserverpb.Watch/Watch, a bidirectional stream) on gRPC's
// callback API: no thread per stream. Each stream is a reactor that reads requests
// into the WatchHub and writes the hub's responses, pre-serialized (raw ByteBuffers, so
// an event encoded once goes to every watch without re-encoding). While a stream's
// output is full it stops reading requests, so a client that sends but never reads
// cannot grow the server's memory. Streams opened with metadata hasleader=true are
// refused with "etcdserver: no leader" when this member knows no leader.
//
// Thread-safety: gRPC calls Watch concurrently. Ownership: the hub and node must
// outlive the gRPC server.
#pragma once

#include "grpcpp/support/byte_buffer.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"
#include "server/raft_node.h"
#include "server/watch_hub.h"

namespace keel::server {

class WatchService final
    : public etcdserverpb::Watch::WithRawCallbackMethod_Watch<etcdserverpb::Watch::Service> {
 public:
  WatchService(WatchHub* hub, RaftNode* node) : hub_(hub), node_(node) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* call) override;

 private:
  WatchHub* const hub_;
  RaftNode* const node_;
};

}  // namespace keel::server
