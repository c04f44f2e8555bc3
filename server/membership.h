// Cluster membership: the replicated record (ids, names, peer URLs, learner flags)
// that conf-change entries change, the etcd checks a change must pass, and the
// directory Cluster.MemberList reads. Ids are derived as etcd derives them: the initial
// members' from the flags (the same on every member and across restarts), an added
// member's from its peer URLs, the cluster token and the time of the add.
//
// Where the record lives: the state machine stores it with its applied index
// (storage::KvStore "m/members"), written by every applied conf change, so a restart
// or a snapshot install restores it; until the first change it is the --initial-cluster.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/internal.pb.h"
#include "proto/raft.pb.h"

namespace keel::server {

struct MemberInfo {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;  // Learned from each peer's handshake.
  bool is_learner = false;
};

// etcd allows one learner at a time (--max-learners defaults to 1).
inline constexpr int kMaxLearners = 1;

// etcd's member errors (exact codes and texts: etcd's Go client matches on them).
absl::Status ErrMemberIdExists();
absl::Status ErrPeerUrlExists();
absl::Status ErrMemberBadUrls();
absl::Status ErrMemberNotLearner();
absl::Status ErrLearnerNotReady();
absl::Status ErrTooManyLearners();
absl::Status ErrNotEnoughStartedMembers();
absl::Status ErrBadLeaderTransferee();
absl::Status ErrLeaderTransferTimeout();
// keel's own: a second change while one is pending.

[[nodiscard]] internalpb::MembershipRecord RecordFromMembers(
    const std::vector<MemberInfo>& members);
[[nodiscard]] const internalpb::MemberRecord* FindMember(const internalpb::MembershipRecord& record,
                                                         uint64_t id);

// Checks of a requested change against the current record (the serving leader's view).
// Peer URLs must be http://host:port and used by no other member.
[[nodiscard]] absl::Status CheckAdd(const internalpb::MembershipRecord& record,
                                    const std::vector<std::string>& peer_urls, bool is_learner);
[[nodiscard]] absl::Status CheckRemove(const internalpb::MembershipRecord& record, uint64_t id);
[[nodiscard]] absl::Status CheckUpdate(const internalpb::MembershipRecord& record, uint64_t id,
                                       const std::vector<std::string>& peer_urls);
[[nodiscard]] absl::Status CheckPromote(const internalpb::MembershipRecord& record, uint64_t id);

// The record after a committed conf change whose context is `context`. Deterministic:
// every member computes the same record from the same log. A change that is not valid
// against `record` (the checks above, repeated) leaves it unchanged and returns why.
[[nodiscard]] absl::Status ApplyChange(const raftpb::ConfChange& change,
                                       const internalpb::ConfChangeContext& context,
                                       internalpb::MembershipRecord* record);

// What quorum needs: whether the change leaves enough voters that are up (`active`,
// as the leader sees them, itself included) to commit. etcd's strict reconfig check:
// adding a voter (or promoting) needs a quorum of the grown cluster already up;
// removing one needs a quorum of the rest up.
[[nodiscard]] absl::Status CheckQuorumAfter(const std::vector<uint64_t>& voters,
                                            const std::vector<uint64_t>& active,
                                            const raftpb::ConfChange& change);

// The members as this keeld knows them (the applied record plus what each peer's
// handshake told: client URLs and the name of a member that started after it was
// added). Thread-safe.
class MemberDirectory {
 public:
  explicit MemberDirectory(std::vector<MemberInfo> members);
  // Unknown ids are kept aside until the record lists them.
  void SetPeerInfo(uint64_t id, const std::string& client_urls, const std::string& name);
  void SetRecord(internalpb::MembershipRecord record);
  [[nodiscard]] internalpb::MembershipRecord Record() const;
  [[nodiscard]] std::vector<MemberInfo> List() const;

 private:
  mutable std::mutex mu_;
  internalpb::MembershipRecord record_;                       // Guarded by mu_.
  std::map<uint64_t, std::vector<std::string>> client_urls_;  // Guarded by mu_.
  std::map<uint64_t, std::string> names_;                     // Guarded by mu_.
};

// A member's id: a hash of its peer URLs, the cluster token and a salt (0 for the
// initial members; the time of the add for an added one), never 0.
[[nodiscard]] uint64_t ComputeMemberId(const std::vector<std::string>& peer_urls,
                                       const std::string& cluster_token, uint64_t salt = 0);
// The cluster's id: a hash of its initial member ids (order-independent; never 0).
[[nodiscard]] uint64_t ComputeClusterId(std::vector<uint64_t> member_ids,
                                        const std::string& cluster_token);

}  // namespace keel::server
