// Wire-level helpers of the peer transport: the identity metadata every peer stream
// carries, the receiver's identity check, and Status conversion at the gRPC edge.
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "grpcpp/support/string_ref.h"

namespace keel::server {

// gRPC metadata keys (lower case, as HTTP/2 requires). Values are decimal ids.
inline constexpr char kPeerClusterIdKey[] = "keel-cluster-id";
inline constexpr char kPeerFromMemberKey[] = "keel-from-member";
inline constexpr char kPeerToMemberKey[] = "keel-to-member";
// The sender's advertised client URLs, comma-separated (optional): how members learn
// each other's client URLs for Cluster.MemberList.
inline constexpr char kPeerClientUrlsKey[] = "keel-client-urls";
// The sender's --name (optional): how a member added by MemberAdd gets its name listed.
inline constexpr char kPeerMemberNameKey[] = "keel-member-name";
// Sent by the receiver as initial metadata once it accepted a stream, so the sender
// learns of a refusal at connect time, not at its first write.
inline constexpr char kPeerAcceptedKey[] = "keel-accepted";

// Who a stream says it comes from and whom it addresses.
struct PeerIdentity {
  uint64_t cluster_id = 0;
  uint64_t from_member = 0;
  uint64_t to_member = 0;
  std::string client_urls;  // Comma-separated; may be empty.
  std::string name;         // May be empty.
};

// Member and cluster ids are printed in hex, as etcd and etcdctl print them.
[[nodiscard]] std::string FormatPeerId(uint64_t id);

// Adds the identity metadata to an outgoing call.
void AddPeerIdentity(const PeerIdentity& identity, grpc::ClientContext& context);

// Reads the identity from a call's client metadata. kFailedPrecondition when a key is
// missing or malformed (the caller is not a keel peer, or a very old one).
[[nodiscard]] absl::StatusOr<PeerIdentity> ParsePeerIdentity(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The receiver's check of a parsed identity against its own: kFailedPrecondition,
// naming both sides' cluster or member ids, for a stream from another cluster, one
// addressed to another member, from itself, or from a member that was removed.
[[nodiscard]] absl::Status CheckPeerIdentity(const PeerIdentity& identity, uint64_t own_cluster_id,
                                             uint64_t own_member_id, bool from_member_removed);

// The one conversion at each gRPC edge of the transport.
[[nodiscard]] grpc::Status ToGrpcStatus(const absl::Status& status);
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace keel::server
