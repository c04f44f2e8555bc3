// The faults of a chaos run and the seeded schedule that injects them into a running
// cluster: one fault at a time, held for a random time, then healed.
//
// Members are tracked by slot (n1..nN: name, addresses, data dir), never by the raft id
// fixed at start: replace-member gives a slot a new id, and every other fault, the heal
// and the final checks look the current id up (Maintenance.Status, MemberList by peer
// URL).
//
// Thread-safety: one thread (the driver's main thread: keeld children are forked from
// it, and PR_SET_PDEATHSIG ties their life to the thread that forked them).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keel/client.h"
#include "tests/chaos/netns.h"
#include "tests/integration/cluster.h"

namespace keel::chaos {

enum class Fault {
  kKillMember,     // kill -9 a random member, restart it later
  kKillLeader,     // kill -9 the leader, restart it later
  kPauseMember,    // SIGSTOP a random member past the election timeout, then SIGCONT
  kPauseLeader,    // the same for the leader
  kIsolateMember,  // cut a random member off from its peers (clients still reach it)
  kIsolateLeader,  // cut the leader off from its peers (clients still reach it)
  kSplit,          // a random minority | majority partition
  kBridge,         // two halves that cannot see each other, one member that sees both
  kOneWay,         // a member hears nobody but is heard by all, or the reverse
  kFlap,           // a random member's links go down and up every few hundred ms
  kNetChaos,       // every member drops, duplicates, delays and reorders peer messages
  kSlowDisk,       // the leader's (or a random member's) fsyncs take up to seconds
  kMoveLeader,     // Maintenance.MoveLeader to a random other voter
  kReplaceMember,  // remove a random member (sometimes the leader), re-add it with a
                   // wiped data dir under a new id: a learner, promoted once in sync
};

const char* FaultName(Fault fault);

// Parses "kill,pause,partition,net,disk,member" (groups) or single names such as
// "isolate-leader" into faults. Partition faults need `netns`; net and disk need
// `failpoints`: asking for them without is an error. "all": everything available.
[[nodiscard]] absl::StatusOr<std::vector<Fault>> ParseFaults(const std::string& list, bool netns,
                                                             bool failpoints);

struct FaultScheduleOptions {
  uint64_t seed = 1;
  std::vector<Fault> faults;
  absl::Duration hold_min = absl::Seconds(1);  // How long one fault lasts.
  absl::Duration hold_max = absl::Seconds(4);
  absl::Duration quiet_min = absl::Milliseconds(500);  // Healthy time between faults.
  absl::Duration quiet_max = absl::Milliseconds(1500);
  int election_timeout_ms = 500;  // Pauses last longer than this.
};

class FaultSchedule {
 public:
  // `lab` may be null (no partitions); `failpoint_files[i]` is member i's settings file
  // (empty: no failpoints). `log` receives one line per fault.
  FaultSchedule(FaultScheduleOptions options, integration::Cluster* cluster, NetworkLab* lab,
                std::vector<std::string> failpoint_files,
                std::function<void(const std::string&)> log);

  // Injects faults until `end` or until `stop` returns true: each held, healed, followed
  // by a quiet time.
  [[nodiscard]] absl::Status RunUntil(absl::Time end, const std::function<bool()>& stop);
  // Ends every fault: partitions removed, failpoints off, paused members continued,
  // killed members restarted, removed slots added again and learners promoted.
  [[nodiscard]] absl::Status HealAll();
  // After HealAll: the member list has exactly one member per slot (its peer URL), each
  // started (named after its slot), none a learner. Polls until `timeout`.
  [[nodiscard]] absl::Status CheckMembers(absl::Duration timeout);

  int injected() const { return injected_; }
  // Each membership call's outcome and how often, e.g. "move-leader: ok" or
  // "remove: etcdserver: re-configuration failed due to not enough started members".
  const std::map<std::string, int>& member_outcomes() const { return member_outcomes_; }
  int members_replaced() const { return members_replaced_; }
  int leader_moves() const { return leader_moves_; }
  // Members that exited on their own (not killed by the schedule): one line each, with
  // the exit code. A crash is a bug in keel even if no answer was wrong.
  const std::vector<std::string>& crashes() const { return crashes_; }

 private:
  [[nodiscard]] absl::Status RunOne(Fault fault);
  [[nodiscard]] absl::Status Partition(const std::set<NetworkLab::Link>& links, absl::Duration hold,
                                       const std::string& what);
  [[nodiscard]] absl::Status Flap(int member, absl::Duration hold);
  [[nodiscard]] absl::Status SetFailpoints(int member, const std::string& settings);
  [[nodiscard]] absl::Status MoveLeader();
  [[nodiscard]] absl::Status ReplaceMember(absl::Duration hold);
  // Slot `member` was removed and has stopped: wipe it, add it as a learner, start it,
  // promote it once in sync (left a learner if that takes too long: see Reconcile).
  [[nodiscard]] absl::Status Rejoin(int member);
  // Promotes learner `id` (slot `member`) once it caught up; false if it did not within
  // `timeout`.
  bool Promote(int member, uint64_t id, absl::Duration timeout);
  // Repairs what an earlier change left half done (a removal whose answer was lost and
  // that applied later, a learner not promoted in time): re-adds the missing slots and
  // promotes learners.
  [[nodiscard]] absl::Status Reconcile();
  // The cluster's member list (through the client, retried until `timeout`).
  [[nodiscard]] absl::StatusOr<MemberListResponse> ListMembers(absl::Duration timeout);
  // The list's entry of slot `member` (by peer URL), or null.
  const etcdserverpb::Member* FindSlot(const MemberListResponse& list, int member) const;
  [[nodiscard]] absl::Status ConnectClient();
  void CountOutcome(const std::string& what, const absl::Status& status);
  // The member the others follow (asked over Maintenance.Status), or a random running
  // member if none can be found quickly.
  int FindLeader();
  int RandomMember();
  absl::Duration RandomDuration(absl::Duration min, absl::Duration max);
  void Log(const std::string& line);
  void NoteCrashes();

  const FaultScheduleOptions options_;
  integration::Cluster* const cluster_;
  NetworkLab* const lab_;
  const std::vector<std::string> failpoint_files_;
  const std::function<void(const std::string&)> log_;
  std::mt19937_64 rng_;
  const absl::Time t0_;
  std::set<int> paused_;
  int injected_ = 0;
  std::vector<std::string> crashes_;
  // For the member faults: a client of every slot's client address.
  std::unique_ptr<Client> client_;
  std::map<std::string, int> member_outcomes_;
  int members_replaced_ = 0;
  int leader_moves_ = 0;
};

}  // namespace keel::chaos
