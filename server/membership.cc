#include "server/membership.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/errors.h"
#include "server/server_config.h"

namespace keel::server {
namespace {

// FNV-1a then a splitmix finaliser: stable across builds and platforms, unlike
// std::hash or absl::Hash, which is what ids persisted in data dirs need.
class StableHash {
 public:
  void Add(const std::string& s) {
    for (unsigned char c : s) h_ = (h_ ^ c) * 0x100000001b3ULL;
    h_ = (h_ ^ 0xff) * 0x100000001b3ULL;  // Separator: "ab","c" != "a","bc".
  }
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) h_ = (h_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
  }
  uint64_t Finish() const {
    uint64_t z = h_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z == 0 ? 1 : z;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

bool IsRemoved(const internalpb::MembershipRecord& record, uint64_t id) {
  return std::find(record.removed().begin(), record.removed().end(), id) != record.removed().end();
}

// Peer URLs must parse, and none may belong to a member other than `self`.
absl::Status CheckPeerUrls(const internalpb::MembershipRecord& record,
                           const std::vector<std::string>& peer_urls, uint64_t self) {
  if (peer_urls.empty()) return ErrMemberBadUrls();
  for (const auto& url : peer_urls) {
    if (!UrlToAddress(url).ok()) return ErrMemberBadUrls();
  }
  for (const auto& m : record.members()) {
    if (m.id() == self) continue;
    for (const auto& url : m.peer_urls()) {
      if (std::find(peer_urls.begin(), peer_urls.end(), url) != peer_urls.end()) {
        return ErrPeerUrlExists();
      }
    }
  }
  return absl::OkStatus();
}

int LearnerCount(const internalpb::MembershipRecord& record) {
  int n = 0;
  for (const auto& m : record.members()) n += m.is_learner() ? 1 : 0;
  return n;
}

std::vector<std::string> Urls(const internalpb::MemberRecord& m) {
  return {m.peer_urls().begin(), m.peer_urls().end()};
}

}  // namespace

absl::Status ErrMemberIdExists() {
  return absl::FailedPreconditionError("etcdserver: member ID already exist");
}
absl::Status ErrPeerUrlExists() {
  return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
}
absl::Status ErrMemberBadUrls() {
  return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
}
absl::Status ErrMemberNotLearner() {
  return absl::FailedPreconditionError("etcdserver: can only promote a learner member");
}
absl::Status ErrLearnerNotReady() {
  return absl::FailedPreconditionError(
      "etcdserver: can only promote a learner member which is in sync with leader");
}
absl::Status ErrTooManyLearners() {
  return absl::FailedPreconditionError("etcdserver: too many learner members in cluster");
}
absl::Status ErrNotEnoughStartedMembers() {
  return absl::FailedPreconditionError(
      "etcdserver: re-configuration failed due to not enough started members");
}
absl::Status ErrBadLeaderTransferee() {
  return absl::FailedPreconditionError("etcdserver: bad leader transferee");
}
absl::Status ErrLeaderTransferTimeout() {
  return absl::UnavailableError("etcdserver: request timed out, leader transfer took too long");
}

internalpb::MembershipRecord RecordFromMembers(const std::vector<MemberInfo>& members) {
  internalpb::MembershipRecord record;
  for (const auto& m : members) {
    auto* r = record.add_members();
    r->set_id(m.id);
    r->set_name(m.name);
    for (const auto& u : m.peer_urls) r->add_peer_urls(u);
    r->set_is_learner(m.is_learner);
  }
  std::sort(record.mutable_members()->begin(), record.mutable_members()->end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return record;
}

const internalpb::MemberRecord* FindMember(const internalpb::MembershipRecord& record,
                                           uint64_t id) {
  for (const auto& m : record.members()) {
    if (m.id() == id) return &m;
  }
  return nullptr;
}

absl::Status CheckAdd(const internalpb::MembershipRecord& record,
                      const std::vector<std::string>& peer_urls, bool is_learner) {
  if (absl::Status s = CheckPeerUrls(record, peer_urls, 0); !s.ok()) return s;
  if (is_learner && LearnerCount(record) >= kMaxLearners) return ErrTooManyLearners();
  return absl::OkStatus();
}

absl::Status CheckRemove(const internalpb::MembershipRecord& record, uint64_t id) {
  if (FindMember(record, id) == nullptr) return ErrMemberNotFound();
  return absl::OkStatus();
}

absl::Status CheckUpdate(const internalpb::MembershipRecord& record, uint64_t id,
                         const std::vector<std::string>& peer_urls) {
  if (FindMember(record, id) == nullptr) return ErrMemberNotFound();
  return CheckPeerUrls(record, peer_urls, id);
}

absl::Status CheckPromote(const internalpb::MembershipRecord& record, uint64_t id) {
  const internalpb::MemberRecord* m = FindMember(record, id);
  if (m == nullptr) return ErrMemberNotFound();
  if (!m->is_learner()) return ErrMemberNotLearner();
  return absl::OkStatus();
}

absl::Status ApplyChange(const raftpb::ConfChange& change,
                         const internalpb::ConfChangeContext& context,
                         internalpb::MembershipRecord* record) {
  const uint64_t id = change.node_id();
  internalpb::MemberRecord* existing = nullptr;
  for (auto& m : *record->mutable_members()) {
    if (m.id() == id) existing = &m;
  }
  switch (change.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
    case raftpb::CONF_CHANGE_ADD_LEARNER: {
      const bool learner = change.type() == raftpb::CONF_CHANGE_ADD_LEARNER;
      if (existing != nullptr) {
        // Promotion of a learner; anything else is a repeat (the bootstrap entries of
        // the initial members, which the record already lists).
        if (!learner && existing->is_learner()) {
          existing->set_is_learner(false);
          return absl::OkStatus();
        }
        return learner ? ErrMemberIdExists() : ErrMemberNotLearner();
      }
      if (IsRemoved(*record, id)) return ErrMemberIdExists();
      const std::vector<std::string> urls = Urls(context.member());
      if (absl::Status s = CheckAdd(*record, urls, learner); !s.ok()) return s;
      internalpb::MemberRecord added = context.member();
      added.set_id(id);
      added.set_is_learner(learner);
      *record->add_members() = std::move(added);
      std::sort(record->mutable_members()->begin(), record->mutable_members()->end(),
                [](const auto& a, const auto& b) { return a.id() < b.id(); });
      return absl::OkStatus();
    }
    case raftpb::CONF_CHANGE_REMOVE_NODE: {
      if (existing == nullptr) return ErrMemberNotFound();
      auto* members = record->mutable_members();
      members->erase(std::remove_if(members->begin(), members->end(),
                                    [id](const auto& m) { return m.id() == id; }),
                     members->end());
      record->add_removed(id);
      return absl::OkStatus();
    }
    case raftpb::CONF_CHANGE_UPDATE_NODE: {
      if (existing == nullptr) return ErrMemberNotFound();
      const std::vector<std::string> urls = Urls(context.member());
      if (absl::Status s = CheckPeerUrls(*record, urls, id); !s.ok()) return s;
      existing->clear_peer_urls();
      for (const auto& u : urls) existing->add_peer_urls(u);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("keel: unknown conf change type");
  }
}

absl::Status CheckQuorumAfter(const std::vector<uint64_t>& voters,
                              const std::vector<uint64_t>& active,
                              const raftpb::ConfChange& change) {
  const std::set<uint64_t> up(active.begin(), active.end());
  const uint64_t id = change.node_id();
  const bool is_voter = std::find(voters.begin(), voters.end(), id) != voters.end();
  size_t members = 0, started = 0;
  for (uint64_t v : voters) {
    if (change.type() == raftpb::CONF_CHANGE_REMOVE_NODE && v == id) continue;
    ++members;
    started += up.count(v);
  }
  if (change.type() == raftpb::CONF_CHANGE_ADD_NODE && !is_voter) {
    ++members;  // A new voter (or a promoted learner) counts, started only if it is up.
    started += up.count(id);
  }
  if (change.type() == raftpb::CONF_CHANGE_ADD_LEARNER ||
      change.type() == raftpb::CONF_CHANGE_UPDATE_NODE) {
    return absl::OkStatus();  // Voters unchanged.
  }
  if (members == 0 || started < members / 2 + 1) return ErrNotEnoughStartedMembers();
  return absl::OkStatus();
}

MemberDirectory::MemberDirectory(std::vector<MemberInfo> members)
    : record_(RecordFromMembers(members)) {
  for (const auto& m : members) {
    if (!m.client_urls.empty()) client_urls_[m.id] = m.client_urls;
  }
}

void MemberDirectory::SetPeerInfo(uint64_t id, const std::string& client_urls,
                                  const std::string& name) {
  std::vector<std::string> urls = absl::StrSplit(client_urls, ',', absl::SkipEmpty());
  std::lock_guard<std::mutex> lock(mu_);
  if (!urls.empty()) client_urls_[id] = std::move(urls);
  if (!name.empty()) names_[id] = name;
}

void MemberDirectory::SetRecord(internalpb::MembershipRecord record) {
  std::lock_guard<std::mutex> lock(mu_);
  record_ = std::move(record);
}

internalpb::MembershipRecord MemberDirectory::Record() const {
  std::lock_guard<std::mutex> lock(mu_);
  return record_;
}

std::vector<MemberInfo> MemberDirectory::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MemberInfo> out;
  for (const auto& r : record_.members()) {
    MemberInfo m;
    m.id = r.id();
    m.name = r.name();
    if (m.name.empty()) {
      // An added member is named once it has started and connected (etcd lists it
      // with an empty name until then).
      auto it = names_.find(r.id());
      if (it != names_.end()) m.name = it->second;
    }
    m.peer_urls.assign(r.peer_urls().begin(), r.peer_urls().end());
    auto urls = client_urls_.find(r.id());
    if (urls != client_urls_.end()) m.client_urls = urls->second;
    m.is_learner = r.is_learner();
    out.push_back(std::move(m));
  }
  return out;
}

uint64_t ComputeMemberId(const std::vector<std::string>& peer_urls,
                         const std::string& cluster_token, uint64_t salt) {
  std::vector<std::string> sorted = peer_urls;
  std::sort(sorted.begin(), sorted.end());
  StableHash h;
  for (const auto& url : sorted) h.Add(url);
  h.Add(cluster_token);
  if (salt != 0) h.Add(salt);  // Initial members keep the ids they always had.
  return h.Finish();
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids, const std::string& cluster_token) {
  std::sort(member_ids.begin(), member_ids.end());
  StableHash h;
  for (uint64_t id : member_ids) h.Add(id);
  h.Add(cluster_token);
  return h.Finish();
}

}  // namespace keel::server
