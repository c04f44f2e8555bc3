#include "client/endpoint.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace keel::client {

Endpoint::Endpoint(std::string address_in, const CircuitBreakerOptions& breaker_options)
    : address(std::move(address_in)), breaker(breaker_options) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a member restarts (gRPC's default backs off up to 120 s);
  // the client's own breaker decides how hard to try.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);  // Large ranges: the server bounds responses.
  channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  kv = etcdserverpb::KV::NewStub(channel);
  maintenance = etcdserverpb::Maintenance::NewStub(channel);
  cluster = etcdserverpb::Cluster::NewStub(channel);
  lease = etcdserverpb::Lease::NewStub(channel);
  watch = etcdserverpb::Watch::NewStub(channel);
}

absl::StatusOr<std::string> NormalizeEndpoint(std::string_view url) {
  // Debian's abseil has its own string_view type.
  absl::string_view rest(url.data(), url.size());
  if (absl::StartsWith(rest, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint ", std::string(url), ": TLS (https://) is not supported yet; use http://"));
  }
  absl::ConsumePrefix(&rest, "http://");
  absl::ConsumeSuffix(&rest, "/");
  const size_t colon = rest.rfind(':');
  int port = 0;
  if (rest.empty() || colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint \"", std::string(url),
                                                   "\": expected host:port or http://host:port"));
  }
  return std::string(rest);
}

}  // namespace keel::client
