#include "tests/chaos/faults.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace keel::chaos {
namespace {

struct FaultInfo {
  Fault fault;
  const char* name;
  const char* group;
};

constexpr FaultInfo kFaults[] = {
    {Fault::kKillMember, "kill-member", "kill"},
    {Fault::kKillLeader, "kill-leader", "kill"},
    {Fault::kPauseMember, "pause-member", "pause"},
    {Fault::kPauseLeader, "pause-leader", "pause"},
    {Fault::kIsolateMember, "isolate-member", "partition"},
    {Fault::kIsolateLeader, "isolate-leader", "partition"},
    {Fault::kSplit, "split", "partition"},
    {Fault::kBridge, "bridge", "partition"},
    {Fault::kOneWay, "one-way", "partition"},
    {Fault::kFlap, "flap", "partition"},
    {Fault::kNetChaos, "net", "net"},
    {Fault::kSlowDisk, "slow-disk", "disk"},
    {Fault::kMoveLeader, "move-leader", "member"},
    {Fault::kReplaceMember, "replace-member", "member"},
};

// A membership call that certainly changed nothing: refused before proposing (etcd's
// checks, no leader, not the leader). Anything else (timeouts, a leader change, a lost
// connection) may still apply: the member list tells.
bool Refused(const absl::Status& status) {
  return absl::IsFailedPrecondition(status) || absl::IsNotFound(status) ||
         absl::IsInvalidArgument(status) ||
         absl::StrContains(status.message(), "etcdserver: no leader") ||
         absl::StrContains(status.message(), "etcdserver: not leader");
}

// The message up to the client's account of its attempts (" (" or ";"), for counting.
std::string ShortMessage(const absl::Status& status) {
  std::string message(status.message());
  for (const char* end : {" (", "; "}) {
    const size_t at = message.find(end);
    if (at != std::string::npos && at > 0) message.resize(at);
  }
  return message;
}

std::string Hex(uint64_t id) { return absl::StrCat(absl::Hex(id)); }

std::string Members(const std::vector<int>& members) {
  std::vector<std::string> names;
  for (int m : members) names.push_back(absl::StrCat("n", m + 1));
  return absl::StrCat("{", absl::StrJoin(names, ","), "}");
}

}  // namespace

const char* FaultName(Fault fault) {
  for (const auto& info : kFaults) {
    if (info.fault == fault) return info.name;
  }
  return "?";
}

absl::StatusOr<std::vector<Fault>> ParseFaults(const std::string& list, bool netns,
                                               bool failpoints) {
  std::vector<Fault> faults;
  for (absl::string_view word : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    bool matched = false;
    for (const auto& info : kFaults) {
      const bool needs_netns = std::string(info.group) == "partition";
      const bool needs_failpoints =
          std::string(info.group) == "net" || std::string(info.group) == "disk";
      const bool available = (!needs_netns || netns) && (!needs_failpoints || failpoints);
      if (word == "all") {
        matched = true;
        if (available) faults.push_back(info.fault);
        continue;
      }
      if (word != info.name && word != info.group) continue;
      matched = true;
      if (needs_netns && !netns) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fault '", word, "' needs network namespaces (run as root, without --no-netns)"));
      }
      if (needs_failpoints && !failpoints) {
        return absl::InvalidArgumentError(
            absl::StrCat("fault '", word, "' needs a keeld built with -DKEEL_FAILPOINTS=ON"));
      }
      faults.push_back(info.fault);
    }
    if (!matched) {
      std::vector<std::string> known = {"all", "kill", "pause", "partition",
                                        "net", "disk", "member"};
      for (const auto& info : kFaults) known.push_back(info.name);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown fault '", word, "'; known: ", absl::StrJoin(known, ", ")));
    }
  }
  std::sort(faults.begin(), faults.end());
  faults.erase(std::unique(faults.begin(), faults.end()), faults.end());
  if (faults.empty()) return absl::InvalidArgumentError("no faults to inject");
  return faults;
}

FaultSchedule::FaultSchedule(FaultScheduleOptions options, integration::Cluster* cluster,
                             NetworkLab* lab, std::vector<std::string> failpoint_files,
                             std::function<void(const std::string&)> log)
    : options_(std::move(options)),
      cluster_(cluster),
      lab_(lab),
      failpoint_files_(std::move(failpoint_files)),
      log_(log),
      rng_(options_.seed),
      t0_(absl::Now()) {}

void FaultSchedule::Log(const std::string& line) {
  log_(absl::StrFormat("%7.2fs %s", absl::ToDoubleSeconds(absl::Now() - t0_), line));
}

void FaultSchedule::NoteCrashes() {
  for (int i = 0; i < cluster_->size(); ++i) {
    std::optional<int> code = cluster_->Exited(i);
    if (!code) continue;
    if (*code == 0 &&
        absl::StrContains(cluster_->LogSinceSpawn(i), "was removed from the cluster")) {
      // A removal whose answer was lost (and so looked refused) applied later.
      Log(absl::StrCat("n", i + 1,
                       " stopped: it was removed from the cluster; it is added again before the "
                       "next fault"));
      continue;
    }
    crashes_.push_back(absl::StrCat("n", i + 1, " exited on its own with code ", *code,
                                    "; its log: ", cluster_->member(i).log_path));
    Log(crashes_.back());
  }
}

absl::Duration FaultSchedule::RandomDuration(absl::Duration min, absl::Duration max) {
  std::uniform_int_distribution<int64_t> ms(absl::ToInt64Milliseconds(min),
                                            absl::ToInt64Milliseconds(max));
  return absl::Milliseconds(ms(rng_));
}

int FaultSchedule::RandomMember() {
  return std::uniform_int_distribution<int>(0, cluster_->size() - 1)(rng_);
}

int FaultSchedule::FindLeader() {
  // The highest term's leader among the members that answer; a member cut off from the
  // others may still believe in an old leader.
  uint64_t best_term = 0, leader = 0;
  for (int i = 0; i < cluster_->size(); ++i) {
    if (!cluster_->running(i) || paused_.count(i)) continue;
    auto status = cluster_->Status(i, absl::Milliseconds(300));
    if (!status.ok() || status->leader() == 0) continue;
    if (status->raftterm() >= best_term) {
      best_term = status->raftterm();
      leader = status->leader();
    }
  }
  const int index = cluster_->IndexOfMemberId(leader);
  return index >= 0 ? index : RandomMember();
}

absl::Status FaultSchedule::RunUntil(absl::Time end, const std::function<bool()>& stop) {
  const bool member_faults =
      std::any_of(options_.faults.begin(), options_.faults.end(),
                  [](Fault f) { return f == Fault::kMoveLeader || f == Fault::kReplaceMember; });
  if (member_faults) RETURN_IF_ERROR(ConnectClient());
  while (absl::Now() < end && !stop()) {
    const Fault fault =
        options_.faults[std::uniform_int_distribution<size_t>(0, options_.faults.size() - 1)(rng_)];
    NoteCrashes();
    if (client_) RETURN_IF_ERROR(Reconcile());
    RETURN_IF_ERROR(RunOne(fault));
    ++injected_;
    NoteCrashes();
    const absl::Duration quiet = RandomDuration(options_.quiet_min, options_.quiet_max);
    if (absl::Now() + quiet >= end) break;
    absl::SleepFor(quiet);  // The schedule itself: healthy time between faults.
  }
  return absl::OkStatus();
}

absl::Status FaultSchedule::RunOne(Fault fault) {
  absl::Duration hold = RandomDuration(options_.hold_min, options_.hold_max);
  const int n = cluster_->size();
  switch (fault) {
    case Fault::kKillMember:
    case Fault::kKillLeader: {
      const int m = fault == Fault::kKillLeader ? FindLeader() : RandomMember();
      Log(absl::StrCat(FaultName(fault), " n", m + 1, " (kill -9) for ",
                       absl::FormatDuration(hold)));
      cluster_->Kill(m);
      absl::SleepFor(hold);
      Log(absl::StrCat("restart n", m + 1));
      return cluster_->Restart(m, absl::Seconds(30));
    }
    case Fault::kPauseMember:
    case Fault::kPauseLeader: {
      const int m = fault == Fault::kPauseLeader ? FindLeader() : RandomMember();
      // Longer than an election timeout, so the others move on without it.
      hold = std::max(hold, absl::Milliseconds(2 * options_.election_timeout_ms));
      Log(absl::StrCat(FaultName(fault), " n", m + 1, " (SIGSTOP) for ",
                       absl::FormatDuration(hold)));
      cluster_->Signal(m, SIGSTOP);
      paused_.insert(m);
      absl::SleepFor(hold);
      cluster_->Signal(m, SIGCONT);
      paused_.erase(m);
      Log(absl::StrCat("SIGCONT n", m + 1));
      return absl::OkStatus();
    }
    case Fault::kIsolateMember:
    case Fault::kIsolateLeader: {
      const int m = fault == Fault::kIsolateLeader ? FindLeader() : RandomMember();
      std::vector<int> rest;
      for (int i = 0; i < n; ++i) {
        if (i != m) rest.push_back(i);
      }
      return Partition(Cut({{m}, rest}), hold,
                       absl::StrCat(FaultName(fault), " n", m + 1, " | ", Members(rest)));
    }
    case Fault::kSplit: {
      std::vector<int> order(n);
      for (int i = 0; i < n; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng_);
      const std::vector<int> minority(order.begin(), order.begin() + (n - 1) / 2);
      const std::vector<int> majority(order.begin() + (n - 1) / 2, order.end());
      return Partition(Cut({minority, majority}), hold,
                       absl::StrCat("split ", Members(minority), " | ", Members(majority)));
    }
    case Fault::kBridge: {
      std::vector<int> order(n);
      for (int i = 0; i < n; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng_);
      const int bridge = order[0];
      const std::vector<int> left(order.begin() + 1, order.begin() + 1 + (n - 1) / 2);
      const std::vector<int> right(order.begin() + 1 + (n - 1) / 2, order.end());
      return Partition(
          Cut({left, right}), hold,
          absl::StrCat("bridge ", Members(left), " | ", Members(right), " both see n", bridge + 1));
    }
    case Fault::kOneWay: {
      const int m = RandomMember();
      const bool deaf = std::bernoulli_distribution(0.5)(rng_);
      std::set<NetworkLab::Link> links;
      for (int i = 0; i < n; ++i) {
        if (i != m) links.insert(deaf ? NetworkLab::Link{i, m} : NetworkLab::Link{m, i});
      }
      return Partition(
          links, hold,
          absl::StrCat("one-way n", m + 1,
                       deaf ? " hears nobody, is heard by all" : " is heard by nobody, hears all"));
    }
    case Fault::kFlap:
      return Flap(RandomMember(), hold);
    case Fault::kNetChaos: {
      const std::string settings = absl::StrFormat(
          "net_drop=%.2f\nnet_duplicate=%.2f\nnet_delay=%.2f\nnet_delay_ms_max=%d\n",
          std::uniform_real_distribution<double>(0.02, 0.2)(rng_),
          std::uniform_real_distribution<double>(0.02, 0.2)(rng_),
          std::uniform_real_distribution<double>(0.1, 0.5)(rng_),
          std::uniform_int_distribution<int>(20, 2 * options_.election_timeout_ms)(rng_));
      Log(absl::StrCat("net chaos on every member for ", absl::FormatDuration(hold), ": ",
                       absl::StrJoin(absl::StrSplit(settings, '\n', absl::SkipEmpty()), " ")));
      for (int i = 0; i < n; ++i) RETURN_IF_ERROR(SetFailpoints(i, settings));
      absl::SleepFor(hold);
      for (int i = 0; i < n; ++i) RETURN_IF_ERROR(SetFailpoints(i, ""));
      Log("net chaos off");
      return absl::OkStatus();
    }
    case Fault::kSlowDisk: {
      const int m = std::bernoulli_distribution(0.5)(rng_) ? FindLeader() : RandomMember();
      const int delay_ms =
          std::uniform_int_distribution<int>(50, 3 * options_.election_timeout_ms)(rng_);
      Log(absl::StrCat("slow-disk n", m + 1, ": fsyncs take up to ", delay_ms, " ms for ",
                       absl::FormatDuration(hold)));
      RETURN_IF_ERROR(
          SetFailpoints(m, absl::StrCat("fsync_delay=1\nfsync_delay_ms_max=", delay_ms, "\n")));
      absl::SleepFor(hold);
      RETURN_IF_ERROR(SetFailpoints(m, ""));
      Log(absl::StrCat("slow-disk n", m + 1, " off"));
      return absl::OkStatus();
    }
    case Fault::kMoveLeader:
      return MoveLeader();
    case Fault::kReplaceMember:
      return ReplaceMember(hold);
  }
  return absl::InternalError("unhandled fault");
}

absl::Status FaultSchedule::Partition(const std::set<NetworkLab::Link>& links, absl::Duration hold,
                                      const std::string& what) {
  Log(absl::StrCat(what, " for ", absl::FormatDuration(hold)));
  RETURN_IF_ERROR(lab_->SetBlocked(links));
  absl::SleepFor(hold);
  RETURN_IF_ERROR(lab_->SetBlocked({}));
  Log("healed");
  return absl::OkStatus();
}

absl::Status FaultSchedule::Flap(int member, absl::Duration hold) {
  std::vector<int> rest;
  for (int i = 0; i < cluster_->size(); ++i) {
    if (i != member) rest.push_back(i);
  }
  const auto links = Cut({{member}, rest});
  Log(absl::StrCat("flap n", member + 1, "'s links for ", absl::FormatDuration(hold)));
  const absl::Time end = absl::Now() + hold;
  int flips = 0;
  for (bool down = true; absl::Now() < end; down = !down, ++flips) {
    RETURN_IF_ERROR(lab_->SetBlocked(down ? links : std::set<NetworkLab::Link>()));
    absl::SleepFor(RandomDuration(absl::Milliseconds(100), absl::Milliseconds(600)));
  }
  RETURN_IF_ERROR(lab_->SetBlocked({}));
  Log(absl::StrCat("flap over after ", flips, " flips"));
  return absl::OkStatus();
}

absl::Status FaultSchedule::SetFailpoints(int member, const std::string& settings) {
  const std::string& path = failpoint_files_[member];
  if (path.empty()) return absl::FailedPreconditionError("no failpoints file");
  // Written aside and renamed over: keeld never reads half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << settings;
    if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status FaultSchedule::HealAll() {
  NoteCrashes();
  if (lab_ != nullptr) RETURN_IF_ERROR(lab_->SetBlocked({}));
  for (int i = 0; i < cluster_->size(); ++i) {
    if (!failpoint_files_.empty() && !failpoint_files_[i].empty()) {
      RETURN_IF_ERROR(SetFailpoints(i, ""));
    }
  }
  for (int m : paused_) cluster_->Signal(m, SIGCONT);
  paused_.clear();
  // Removed slots first (a restart of one is refused), then the killed members, then
  // the learners (which need to be running to catch up).
  if (client_) RETURN_IF_ERROR(Reconcile());
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->running(i)) continue;
    Log(absl::StrCat("restart n", i + 1));
    RETURN_IF_ERROR(cluster_->Restart(i, absl::Seconds(30)));
  }
  if (client_) {
    RETURN_IF_ERROR(Reconcile());
    std::vector<std::string> outcomes;
    for (const auto& [what, count] : member_outcomes_) {
      outcomes.push_back(absl::StrCat(what, " x", count));
    }
    Log(absl::StrCat("membership calls: ", absl::StrJoin(outcomes, "; ")));
  }
  return absl::OkStatus();
}

absl::Status FaultSchedule::ConnectClient() {
  if (client_) return absl::OkStatus();
  ClientOptions options;
  for (int i = 0; i < cluster_->size(); ++i)
    options.endpoints.push_back(cluster_->client_address(i));
  options.connect_timeout = absl::Seconds(30);
  ASSIGN_OR_RETURN(client_, Client::Connect(options));
  return absl::OkStatus();
}

void FaultSchedule::CountOutcome(const std::string& what, const absl::Status& status) {
  ++member_outcomes_[absl::StrCat(what, ": ", status.ok() ? "ok" : ShortMessage(status))];
}

absl::StatusOr<MemberListResponse> FaultSchedule::ListMembers(absl::Duration timeout) {
  RETURN_IF_ERROR(ConnectClient());
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto list = client_->MemberList({.timeout = absl::Seconds(5)});
    if (list.ok() || absl::Now() >= deadline) return list;
    absl::SleepFor(absl::Milliseconds(200));  // Polling (with a deadline) for an answer.
  }
}

const etcdserverpb::Member* FaultSchedule::FindSlot(const MemberListResponse& list,
                                                    int member) const {
  const std::string url = cluster_->peer_url(member);
  for (const auto& m : list.members()) {
    for (const auto& u : m.peerurls()) {
      if (u == url) return &m;
    }
  }
  return nullptr;
}

absl::Status FaultSchedule::MoveLeader() {
  const int n = cluster_->size();
  const int leader = FindLeader();
  int target = std::uniform_int_distribution<int>(0, n - 2)(rng_);
  if (target >= leader) ++target;
  // The target's current id (it changes when its slot is replaced).
  auto status = cluster_->Status(target, absl::Seconds(1));
  if (!status.ok()) {
    CountOutcome("move-leader", status.status());
    Log(absl::StrCat("move-leader: n", target + 1, " does not answer (", status.status().message(),
                     "), skipped"));
    return absl::OkStatus();
  }
  const uint64_t id = status->header().member_id();
  Log(absl::StrCat("move-leader n", leader + 1, " -> n", target + 1, " (", Hex(id), ")"));
  auto moved = client_->MoveLeader(id, {.timeout = absl::Seconds(10)});
  CountOutcome("move-leader", moved.status());
  if (moved.ok()) {
    ++leader_moves_;
    Log("leader moved");
  } else {
    // etcd gives the same answers under faults (no leader, timed out): counted only.
    Log(absl::StrCat("move-leader: ", moved.status().message()));
  }
  return absl::OkStatus();
}

absl::Status FaultSchedule::ReplaceMember(absl::Duration hold) {
  const int n = cluster_->size();
  const int leader = FindLeader();
  int victim = leader;
  if (!std::bernoulli_distribution(0.25)(rng_)) {
    victim = std::uniform_int_distribution<int>(0, n - 2)(rng_);
    if (victim >= leader) ++victim;
  }
  auto list = ListMembers(absl::Seconds(10));
  if (!list.ok()) {
    CountOutcome("remove", list.status());
    Log(absl::StrCat("replace-member: no member list (", list.status().message(), "), skipped"));
    return absl::OkStatus();
  }
  const etcdserverpb::Member* listed = FindSlot(*list, victim);
  if (listed == nullptr) {
    return absl::InternalError(absl::StrCat("n", victim + 1, " is not in the member list"));
  }
  const uint64_t id = listed->id();
  Log(absl::StrCat("replace-member n", victim + 1, " (", Hex(id),
                   victim == leader ? ", leader" : "", "): remove"));
  auto removed = client_->MemberRemove(id, {.timeout = absl::Seconds(10)});
  CountOutcome("remove", removed.status());
  if (!removed.ok()) {
    bool gone = false;
    if (!Refused(removed.status())) {
      // Maybe applied: the member list tells.
      integration::WaitFor(
          [&] {
            auto now = ListMembers(absl::Seconds(5));
            gone = now.ok() && FindSlot(*now, victim) == nullptr;
            return gone;
          },
          absl::Seconds(10));
    }
    if (!gone) {
      // A refused change is skipped; the schedule tries another one later. A removal
      // that applies after all stops n<victim>, which Reconcile re-adds.
      Log(absl::StrCat("remove n", victim + 1, ": ", removed.status().message(), "; skipped"));
      return absl::OkStatus();
    }
  }
  // It hands over (if it led), then stops by itself.
  std::optional<int> code = cluster_->WaitExited(victim, absl::Seconds(20));
  if (!code) {
    crashes_.push_back(absl::StrCat(
        "n", victim + 1, " (", Hex(id),
        ") did not stop within 20 s of its removal; its log: ", cluster_->member(victim).log_path));
    Log(crashes_.back());
    cluster_->Kill(victim);
  } else if (*code != 0) {
    crashes_.push_back(
        absl::StrCat("n", victim + 1, " exited with code ", *code,
                     " after its removal; its log: ", cluster_->member(victim).log_path));
    Log(crashes_.back());
  }
  Log(absl::StrCat("n", victim + 1, " removed and stopped; ", n - 1, " members for ",
                   absl::FormatDuration(hold)));
  absl::SleepFor(hold);  // Traffic on the smaller cluster.
  RETURN_IF_ERROR(Rejoin(victim));
  ++members_replaced_;
  return absl::OkStatus();
}

absl::Status FaultSchedule::Rejoin(int member) {
  const std::string url = cluster_->peer_url(member);
  uint64_t id = 0;
  absl::Status last;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (id == 0 && absl::Now() < deadline) {
    auto added = client_->MemberAdd({url}, /*is_learner=*/true, {.timeout = absl::Seconds(10)});
    CountOutcome("add", added.status());
    if (added.ok()) {
      id = added->member().id();
      break;
    }
    last = added.status();
    if (!Refused(last) || absl::StrContains(last.message(), "Peer URLs already exists")) {
      // It may have applied, now or in an earlier attempt: the member list tells.
      auto list = ListMembers(absl::Seconds(10));
      const etcdserverpb::Member* listed = list.ok() ? FindSlot(*list, member) : nullptr;
      if (listed != nullptr) {
        id = listed->id();
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(500));  // A refused change is retried later.
  }
  if (id == 0) {
    return absl::UnavailableError(
        absl::StrCat("n", member + 1, " could not be added again in 60 s: ", last.message()));
  }
  Log(absl::StrCat("n", member + 1, " added as learner ", Hex(id),
                   "; starting it on a wiped data dir with --initial-cluster-state existing"));
  RETURN_IF_ERROR(cluster_->PrepareRejoin(member));
  RETURN_IF_ERROR(cluster_->Restart(member, absl::Seconds(30)));
  if (!Promote(member, id, absl::Seconds(60))) {
    Log(absl::StrCat("n", member + 1, " is still a learner after 60 s; promoted later"));
  }
  return absl::OkStatus();
}

bool FaultSchedule::Promote(int member, uint64_t id, absl::Duration timeout) {
  std::set<std::string> seen;  // Each refusal counted once per promotion, not per poll.
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto promoted = client_->MemberPromote(id, {.timeout = absl::Seconds(10)});
    const absl::Status& s = promoted.status();
    if (s.ok() || seen.insert(ShortMessage(s)).second) CountOutcome("promote", s);
    if (s.ok()) {
      Log(absl::StrCat("n", member + 1, " promoted to voter"));
      return true;
    }
    if (absl::IsFailedPrecondition(s) &&
        absl::StrContains(s.message(), "can only promote a learner member") &&
        !absl::StrContains(s.message(), "in sync")) {
      Log(absl::StrCat("n", member + 1, " is a voter already"));  // An earlier answer was lost.
      return true;
    }
    if (!Refused(s)) {
      auto list = ListMembers(absl::Seconds(5));
      const etcdserverpb::Member* listed = list.ok() ? FindSlot(*list, member) : nullptr;
      if (listed != nullptr && listed->id() == id && !listed->islearner()) {
        Log(absl::StrCat("n", member + 1, " promoted to voter (answer lost)"));
        return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(200));  // Polling until it caught up.
  }
  return false;
}

absl::Status FaultSchedule::Reconcile() {
  ASSIGN_OR_RETURN(MemberListResponse list, ListMembers(absl::Seconds(30)));
  for (int i = 0; i < cluster_->size(); ++i) {
    const etcdserverpb::Member* listed = FindSlot(list, i);
    if (listed == nullptr) {
      Log(absl::StrCat("n", i + 1, " is not in the member list: adding it again"));
      if (cluster_->running(i) && !cluster_->WaitExited(i, absl::Seconds(20))) {
        Log(absl::StrCat("n", i + 1, " did not stop after its removal: killed"));
        cluster_->Kill(i);
      }
      RETURN_IF_ERROR(Rejoin(i));
    } else if (listed->islearner() && cluster_->running(i)) {
      Log(absl::StrCat("n", i + 1, " (", Hex(listed->id()), ") is a learner: promoting it"));
      if (!Promote(i, listed->id(), absl::Seconds(60))) {
        return absl::DeadlineExceededError(
            absl::StrCat("learner n", i + 1, " was not promoted within 60 s"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status FaultSchedule::CheckMembers(absl::Duration timeout) {
  std::string problem;
  const bool ok = integration::WaitFor(
      [&] {
        auto list = ListMembers(absl::Seconds(5));
        if (!list.ok()) {
          problem = absl::StrCat("no member list: ", list.status().message());
          return false;
        }
        std::vector<std::string> seen;
        for (const auto& m : list->members()) {
          seen.push_back(absl::StrCat(Hex(m.id()), "=", m.name().empty() ? "(unstarted)" : m.name(),
                                      m.islearner() ? " (learner)" : ""));
        }
        problem = absl::StrCat("member list {", absl::StrJoin(seen, ", "), "}");
        if (list->members_size() != cluster_->size()) return false;
        for (int i = 0; i < cluster_->size(); ++i) {
          const etcdserverpb::Member* listed = FindSlot(*list, i);
          if (listed == nullptr || listed->islearner() ||
              listed->name() != cluster_->member(i).name || listed->clienturls().empty() ||
              !cluster_->running(i)) {
            absl::StrAppend(&problem, ": n", i + 1,
                            " is missing, a learner, not started or not running");
            return false;
          }
        }
        return true;
      },
      timeout);
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("membership after healing: ", problem));
}

}  // namespace keel::chaos
