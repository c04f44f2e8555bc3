// Endpoint: one member's address with its gRPC channel, a stub per etcd service, its
// circuit breaker and counters. Shared (shared_ptr) by the pool and by calls in
// flight, so an endpoint dropped from the member list stays valid until they end.
//
// Adding a service (Watch, Lease, ...): add its stub here and create it in the
// constructor; calls reach it through the Endpoint& their StartRpc receives.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "client/circuit_breaker.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::client {

struct Endpoint {
  Endpoint(std::string address, const CircuitBreakerOptions& breaker_options);

  const std::string address;  // "host:port"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  CircuitBreaker breaker;
  std::atomic<uint64_t> member_id{0};  // 0: not known yet.
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> failures{0};
};

// "http://host:port", "host:port" -> "host:port". kInvalidArgument for https://
// (no TLS yet), an empty address or a missing port.
[[nodiscard]] absl::StatusOr<std::string> NormalizeEndpoint(std::string_view url);

}  // namespace keel::client
