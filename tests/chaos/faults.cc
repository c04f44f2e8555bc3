#include "tests/chaos/faults.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

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
};

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
      std::vector<std::string> known = {"all", "kill", "pause", "partition", "net", "disk"};
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
  while (absl::Now() < end && !stop()) {
    const Fault fault =
        options_.faults[std::uniform_int_distribution<size_t>(0, options_.faults.size() - 1)(rng_)];
    NoteCrashes();
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
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->running(i)) continue;
    Log(absl::StrCat("restart n", i + 1));
    RETURN_IF_ERROR(cluster_->Restart(i, absl::Seconds(30)));
  }
  return absl::OkStatus();
}

}  // namespace keel::chaos
