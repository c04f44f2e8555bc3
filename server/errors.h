// Server-level errors with etcd's exact codes and texts (etcd's Go client matches on
// the text), and the one conversion from absl::Status to grpc::Status at the edge.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace keel::server {

inline absl::Status ErrNoLeader() { return absl::UnavailableError("etcdserver: no leader"); }
inline absl::Status ErrNotLeader() { return absl::UnavailableError("etcdserver: not leader"); }
inline absl::Status ErrLeaderChanged() {
  return absl::UnavailableError("etcdserver: leader changed");
}
inline absl::Status ErrTimeout() { return absl::UnavailableError("etcdserver: request timed out"); }
inline absl::Status ErrStopped() { return absl::UnavailableError("etcdserver: server stopped"); }
inline absl::Status ErrTooManyRequests() {
  return absl::ResourceExhaustedError("etcdserver: too many requests");
}
inline absl::Status ErrRequestTooLarge() {
  return absl::InvalidArgumentError("etcdserver: request is too large");
}
inline absl::Status ErrKeyNotProvided() {
  return absl::InvalidArgumentError("etcdserver: key is not provided");
}
inline absl::Status ErrMemberNotFound() {
  return absl::NotFoundError("etcdserver: member not found");
}

// absl and gRPC share the canonical code numbering; the message travels unchanged.
[[nodiscard]] inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace keel::server
