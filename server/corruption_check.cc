#include "server/corruption_check.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/alarm_proposal.h"
#include "server/server_config.h"

namespace keel::server {

CorruptionCheck::CorruptionCheck(absl::Duration interval, uint64_t member_id, storage::KvStore* kv,
                                 RaftNode* node, const MemberDirectory* members)
    : interval_(interval),
      member_id_(member_id),
      kv_(kv),
      node_(node),
      members_(members),
      task_("keel-corrupt", interval, PeriodicTask::FirstRun::kAfterInterval,
            [this] { CheckOnce(); }) {}

CorruptionCheck::~CorruptionCheck() { Stop(); }

etcdserverpb::Maintenance::Stub* CorruptionCheck::Stub(const std::string& address) {
  auto& stub = stubs_[address];
  if (!stub) {
    stub = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  return stub.get();
}

std::vector<uint64_t> CorruptionCheck::CheckOnce() {
  std::vector<uint64_t> differing;
  if (node_->leader_id() != member_id_) return differing;
  absl::StatusOr<storage::KvStore::KvHash> local = kv_->HashKv(0);
  if (!local.ok()) {
    std::fprintf(stderr, "keeld: corruption check: cannot hash this member's data: %s\n",
                 std::string(local.status().message()).c_str());
    return differing;
  }
  std::vector<uint64_t> alarmed;
  for (const auto& a : kv_->Alarms()) {
    if (a.alarm() == etcdserverpb::CORRUPT) alarmed.push_back(a.memberid());
  }
  for (const MemberInfo& m : members_->List()) {
    if (m.id == member_id_ || m.client_urls.empty()) continue;
    absl::StatusOr<std::string> address = UrlToAddress(m.client_urls.front());
    if (!address.ok()) continue;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    etcdserverpb::HashKVRequest request;
    request.set_revision(local->revision);
    etcdserverpb::HashKVResponse response;
    // Lagging (a future revision for it), compacted past it, or unreachable: next round.
    if (!Stub(*address)->HashKV(&context, request, &response).ok()) continue;
    if (response.compact_revision() != local->compact_revision) continue;
    if (response.hash() == local->hash) continue;
    differing.push_back(m.id);
    if (std::find(alarmed.begin(), alarmed.end(), m.id) != alarmed.end()) continue;
    std::fprintf(stderr,
                 "keeld: corruption check: member %s's data at revision %lld hashes to %u, this "
                 "leader's to %u (compacted at %lld): raising a CORRUPT alarm; the cluster "
                 "refuses reads and writes until it is disarmed\n",
                 absl::StrCat(absl::Hex(m.id)).c_str(), static_cast<long long>(local->revision),
                 response.hash(), local->hash, static_cast<long long>(local->compact_revision));
    // One proposal at a time; the next round proposes what is still missing.
    ProposeAlarm(node_, m.id, etcdserverpb::CORRUPT, &proposing_);
  }
  return differing;
}

}  // namespace keel::server
