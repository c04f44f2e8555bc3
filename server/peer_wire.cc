#include "server/peer_wire.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace keel::server {
namespace {

absl::StatusOr<uint64_t> ReadId(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                const char* key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused peer stream without metadata '", key, "': not a keel peer"));
  }
  absl::string_view value(it->second.data(), it->second.size());
  uint64_t id = 0;
  if (!absl::SimpleAtoi(value, &id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused peer stream: metadata '", key, "' is not a number: '", value, "'"));
  }
  return id;
}

}  // namespace

std::string FormatPeerId(uint64_t id) { return absl::StrFormat("%x", id); }

void AddPeerIdentity(const PeerIdentity& identity, grpc::ClientContext& context) {
  context.AddMetadata(kPeerClusterIdKey, absl::StrCat(identity.cluster_id));
  context.AddMetadata(kPeerFromMemberKey, absl::StrCat(identity.from_member));
  context.AddMetadata(kPeerToMemberKey, absl::StrCat(identity.to_member));
  if (!identity.client_urls.empty()) context.AddMetadata(kPeerClientUrlsKey, identity.client_urls);
  if (!identity.name.empty()) context.AddMetadata(kPeerMemberNameKey, identity.name);
}

absl::StatusOr<PeerIdentity> ParsePeerIdentity(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  PeerIdentity identity;
  auto cluster_id = ReadId(metadata, kPeerClusterIdKey);
  if (!cluster_id.ok()) return cluster_id.status();
  auto from_member = ReadId(metadata, kPeerFromMemberKey);
  if (!from_member.ok()) return from_member.status();
  auto to_member = ReadId(metadata, kPeerToMemberKey);
  if (!to_member.ok()) return to_member.status();
  identity.cluster_id = *cluster_id;
  identity.from_member = *from_member;
  identity.to_member = *to_member;
  auto urls = metadata.find(kPeerClientUrlsKey);
  if (urls != metadata.end()) identity.client_urls.assign(urls->second.data(), urls->second.size());
  auto name = metadata.find(kPeerMemberNameKey);
  if (name != metadata.end()) identity.name.assign(name->second.data(), name->second.size());
  return identity;
}

absl::Status CheckPeerIdentity(const PeerIdentity& identity, uint64_t own_cluster_id,
                               uint64_t own_member_id, bool from_member_removed) {
  const std::string from = FormatPeerId(identity.from_member);
  const std::string own = FormatPeerId(own_member_id);
  if (identity.cluster_id != own_cluster_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused peer stream: cluster id mismatch: member ", from, " is in cluster ",
                     FormatPeerId(identity.cluster_id), " but member ", own, " is in cluster ",
                     FormatPeerId(own_cluster_id), " (check --initial-cluster-token)"));
  }
  if (identity.to_member != own_member_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused peer stream: member id mismatch: member ", from, " addressed member ",
                     FormatPeerId(identity.to_member), " but this is member ", own,
                     " (stale member id or wrong peer address)"));
  }
  if (identity.from_member == own_member_id || identity.from_member == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused peer stream: sender claims member id ", from,
                     ", which cannot be a peer of member ", own));
  }
  if (from_member_removed) {
    return absl::FailedPreconditionError(absl::StrCat("refused peer stream: member ", from,
                                                      " was removed from cluster ",
                                                      FormatPeerId(own_cluster_id)));
  }
  return absl::OkStatus();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace keel::server
