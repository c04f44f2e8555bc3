// keel-chaos: runs a real keeld cluster under client load while injecting faults on a
// seeded schedule (kill -9, SIGSTOP, network partitions in private network namespaces,
// message and disk failpoints, leader moves and members removed and added again), then
// heals it, checks the membership, reads everything back, checks the
// recorded history for linearizability (tools/lincheck) and that no acknowledged write
// of the set workload was lost. Prints exactly one line on stdout:
//   VALID ops=… ok=… fail=… unknown=… faults=… lost=0            (exit 0)
//   INVALID ops=… … lost=N                                       (exit 1)
// and on failure keeps the history, the fault log and every member's log in a directory
// it names. Progress goes to stderr. Exit 2: the run could not be set up (e.g. no
// network namespaces: needs root).
//
//   keel-chaos --time 600 --seed 42                  # the long run
//   keel-chaos --time 20 --faults isolate-leader --bug stale-local-reads --expect-invalid
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/App.hpp"
#include "CLI/Config.hpp"
#include "CLI/Formatter.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/chaos/faults.h"
#include "tests/chaos/history.h"
#include "tests/chaos/netns.h"
#include "tests/chaos/watchers.h"
#include "tests/chaos/workload.h"
#include "tests/integration/cluster.h"
#include "tools/lincheck/checker.h"
#include "tools/lincheck/report.h"

namespace keel::chaos {
namespace {

#if defined(KEEL_CHAOS_FAILPOINTS) && KEEL_CHAOS_FAILPOINTS
constexpr bool kFailpoints = true;
#else
constexpr bool kFailpoints = false;
#endif

std::atomic<bool> interrupted{false};

void OnSignal(int) { interrupted = true; }

struct Options {
  int time_s = 60;
  uint64_t seed = 0;  // 0: from the clock (printed).
  int members = 3;
  int workers = 4;
  int set_workers = 1;
  int watchers = 3;
  int keys = 8;
  int op_timeout_ms = 1000;
  int heartbeat_ms = 50;
  int election_ms = 500;
  std::string faults = "all";
  std::string bug;
  std::vector<std::string> keeld_flags;
  std::string keeld;
  bool expect_invalid = false;
  bool no_netns = false;
  bool keep = false;
  bool cleanup = false;
  std::string dir;
  int check_timeout_s = 120;
};

void Say(const std::string& line) {
  std::fprintf(stderr, "keel-chaos: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string MakeRunDir(const std::string& wanted) {
  if (!wanted.empty()) {
    std::filesystem::create_directories(wanted);
    return wanted;
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "keel-chaos-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

struct Verdict {
  bool valid = false;
  std::string word = "INVALID";  // VALID, INVALID, UNKNOWN (checker timed out).
  std::vector<std::string> reasons;
};

// Runs the checker on the history file; explains an invalid key in `detail_path`.
void CheckHistoryFile(const std::string& path, const std::string& detail_path,
                      absl::Duration timeout, Verdict* verdict) {
  auto history = lincheck::ReadHistoryFile(path);
  if (!history.ok()) {
    verdict->reasons.push_back(
        absl::StrCat("the checker cannot read the history: ", history.status().message()));
    return;
  }
  lincheck::CheckOptions options;
  options.timeout_per_key = timeout;
  const lincheck::CheckResult result = lincheck::CheckHistory(*history, options);
  Say(absl::StrCat("checker: ", lincheck::VerdictName(result.verdict), " for ", result.ops,
                   " operations on ", result.keys.size(), " keys in ",
                   absl::FormatDuration(result.elapsed)));
  if (result.verdict == lincheck::Verdict::kValid) return;
  if (result.verdict == lincheck::Verdict::kUnknown) {
    verdict->word = "UNKNOWN";
    verdict->reasons.push_back("the checker timed out on a key");
    return;
  }
  const lincheck::KeyResult* bad = result.FirstInvalid();
  std::ofstream out(detail_path);
  out << lincheck::FormatText(result, {.timeline = true});
  verdict->reasons.push_back(
      absl::StrCat("key ", bad->key, " is not linearizable (see ", detail_path, ")"));
}

// Reads every member's event history up to the current revision (they must agree),
// waits for the watchers to receive all of it, and checks what they received.
WatchCheckResult CheckWatchers(const Options& o, integration::Cluster& cluster, Watchers& watchers,
                               const Workload& workload, const std::string& detail_path,
                               Verdict* verdict) {
  WatchCheckResult result;
  auto last = watchers.CurrentRevision(absl::Seconds(60));
  if (!last.ok()) {
    verdict->reasons.push_back(absl::StrCat("watch: ", last.status().message()));
    return result;
  }
  std::vector<WatchEvent> history;
  int64_t first = 1;
  int source = -1;
  for (int i = 0; i < o.members; ++i) {
    int64_t member_first = 1;
    auto events =
        ReadEventHistory(cluster.client_address(i), 1, *last, absl::Seconds(60), &member_first);
    if (!events.ok()) {
      verdict->reasons.push_back(absl::StrCat("watch: n", i + 1, ": ", events.status().message()));
      continue;
    }
    if (source < 0) {
      history = std::move(*events);
      first = member_first;
      source = i;
      continue;
    }
    // Compared where both reach back to.
    const int64_t from = std::max(first, member_first);
    auto tail = [from](const std::vector<WatchEvent>& h) {
      return std::vector<WatchEvent>(
          std::find_if(h.begin(), h.end(),
                       [from](const WatchEvent& e) { return e.revision >= from; }),
          h.end());
    };
    const std::vector<WatchEvent> a = tail(history), b = tail(*events);
    if (a != b) {
      ++result.diverged;
      size_t k = 0;
      while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
      verdict->reasons.push_back(
          absl::StrCat("watch: n", i + 1, " serves another event history than n", source + 1,
                       " (they differ from revision ",
                       k < a.size() ? a[k].revision : (k < b.size() ? b[k].revision : 0), ")"));
    }
  }
  if (source < 0) return result;
  absl::Status caught_up = watchers.WaitCaughtUp(history, absl::Seconds(60));
  if (!caught_up.ok()) verdict->reasons.push_back(absl::StrCat("watch: ", caught_up.message()));
  watchers.Stop();
  const uint64_t diverged = result.diverged;
  result = CheckWatch(history, first, *last, watchers.Logs(), workload.Writes());
  result.diverged = diverged;
  Say(absl::StrCat("watch: ", result.events, " events received by ", o.watchers, " watchers (",
                   watchers.resumes(), " resumes, ", watchers.restarts(), " restarts), history of ",
                   history.size(), " events to revision ", *last, " from n", source + 1));
  if (result.ok()) return result;
  std::ofstream out(detail_path);
  out << result.Summary() << "\n";
  for (const auto& example : result.examples) out << example << "\n";
  verdict->reasons.push_back(
      absl::StrCat("watch: ", result.examples.empty() ? "" : result.examples.front(), " (see ",
                   detail_path, ")"));
  return result;
}

int Run(const Options& o) {
  if (o.cleanup) {
    Say(absl::StrCat("removed ", NetworkLab::RemoveStale(), " stale network namespace(s)"));
    return 0;
  }
  const uint64_t seed = o.seed != 0 ? o.seed : std::random_device{}() % 1'000'000 + 1;
  auto faults = ParseFaults(o.faults, !o.no_netns, kFailpoints);
  if (!faults.ok()) {
    Say(std::string(faults.status().message()));
    return 2;
  }
  if (!o.bug.empty() && !kFailpoints) {
    Say("--bug needs a keeld built with -DKEEL_FAILPOINTS=ON");
    return 2;
  }
  const std::string dir = MakeRunDir(o.dir);
  if (dir.empty()) {
    Say("cannot create the run directory");
    return 2;
  }
  std::vector<std::string> fault_names;
  for (Fault f : *faults) fault_names.push_back(FaultName(f));
  Say(absl::StrCat("seed ", seed, ", ", o.time_s, " s, ", o.members, " members, faults ",
                   absl::StrJoin(fault_names, ","), o.bug.empty() ? "" : ", UNSAFE bug ", o.bug,
                   "; run dir ", dir));

  // Network first, while this process has one thread: setns() moves only the calling
  // thread, and every thread started afterwards (gRPC's too) inherits its namespace.
  std::unique_ptr<NetworkLab> lab;
  if (!o.no_netns) {
    const int stale = NetworkLab::RemoveStale();
    if (stale > 0) Say(absl::StrCat("removed ", stale, " stale network namespace(s)"));
    auto created = NetworkLab::Create(o.members);
    if (!created.ok()) {
      Say(absl::StrCat("FAILED: ", created.status().message()));
      if (o.dir.empty()) {  // Nothing ran: the empty run dir would only litter.
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
      return 2;
    }
    lab = std::move(*created);
    absl::Status entered = lab->EnterBridgeNamespace();
    if (!entered.ok()) {
      Say(absl::StrCat("FAILED: ", entered.message()));
      return 2;
    }
  }

  std::vector<std::string> failpoint_files(o.members);
  integration::ClusterOptions cluster_options;
  cluster_options.size = o.members;
  cluster_options.heartbeat_interval_ms = o.heartbeat_ms;
  cluster_options.election_timeout_ms = o.election_ms;
  cluster_options.token = absl::StrCat("keel-chaos-", seed);
  cluster_options.root = dir + "/cluster";
  cluster_options.extra_flags = o.keeld_flags;
  cluster_options.keeld_path = o.keeld;
  if (!o.bug.empty()) {
    cluster_options.extra_flags.push_back("--UNSAFE-bug");
    cluster_options.extra_flags.push_back(o.bug);
  }
  if (kFailpoints) {
    for (int i = 0; i < o.members; ++i) {
      failpoint_files[i] = absl::StrCat(cluster_options.root, "/n", i + 1, ".failpoints");
    }
    cluster_options.member_flags = [failpoint_files](int i) {
      return std::vector<std::string>{"--failpoints-file", failpoint_files[i]};
    };
  }
  if (lab) {
    for (int i = 0; i < o.members; ++i) {
      cluster_options.member_hosts.push_back(lab->member_address(i));
      cluster_options.member_netns.push_back(lab->member_netns_path(i));
    }
  }

  Verdict verdict;
  WorkloadOptions workload_options;
  workload_options.register_workers = o.workers;
  workload_options.set_workers = o.set_workers;
  workload_options.keys = o.keys;
  workload_options.op_timeout = absl::Milliseconds(o.op_timeout_ms);
  workload_options.seed = seed;
  OpCounts counts;
  int injected = 0;
  int leader_moves = 0;
  int members_replaced = 0;
  uint64_t lost = 0;
  WatchCheckResult watch;
  {
    integration::Cluster cluster(cluster_options);
    absl::Status started = cluster.Start(absl::Seconds(60));
    if (!started.ok()) {
      Say(absl::StrCat("FAILED: the cluster did not start: ", started.message()));
      return 2;
    }
    std::vector<std::string> addresses;
    for (int i = 0; i < o.members; ++i) addresses.push_back(cluster.client_address(i));
    Workload workload(workload_options, addresses);
    workload.Start();
    WatchersOptions watchers_options;
    watchers_options.watchers = o.watchers;
    watchers_options.keys = o.keys;
    watchers_options.seed = seed;
    Watchers watchers(watchers_options, addresses);
    if (o.watchers > 0) {
      absl::Status watching = watchers.Start();
      if (!watching.ok()) {
        Say(absl::StrCat("FAILED: the watchers did not start: ", watching.message()));
        return 2;
      }
    }

    FaultScheduleOptions schedule_options;
    schedule_options.seed = seed;
    schedule_options.faults = *faults;
    schedule_options.election_timeout_ms = o.election_ms;
    std::ofstream fault_log(dir + "/faults.log");
    FaultSchedule schedule(schedule_options, &cluster, lab.get(), failpoint_files,
                           [&fault_log](const std::string& line) {
                             fault_log << line << "\n" << std::flush;
                             Say(line);
                           });
    absl::Status status =
        schedule.RunUntil(absl::Now() + absl::Seconds(o.time_s), [] { return interrupted.load(); });
    if (status.ok()) status = schedule.HealAll();
    injected = schedule.injected();
    if (!status.ok())
      verdict.reasons.push_back(absl::StrCat("fault injection: ", status.message()));
    for (const auto& crash : schedule.crashes()) verdict.reasons.push_back(crash);
    if (interrupted) verdict.reasons.push_back("interrupted");

    // Healed: the cluster must elect a leader and answer again.
    auto leader = cluster.WaitForLeader(absl::Seconds(60));
    if (!leader.ok()) {
      verdict.reasons.push_back(
          absl::StrCat("no leader after healing: ", leader.status().message()));
    } else {
      Say(absl::StrCat("healed; leader n", *leader + 1));
    }
    // One member per slot, each started and a voter (replace-member changes them).
    absl::Status members = schedule.CheckMembers(absl::Seconds(60));
    if (!members.ok()) verdict.reasons.push_back(std::string(members.message()));
    leader_moves = schedule.leader_moves();
    members_replaced = schedule.members_replaced();
    workload.Stop();
    absl::Status read = workload.ReadEveryKey(absl::Seconds(60));
    if (!read.ok()) verdict.reasons.push_back(std::string(read.message()));
    auto set = workload.CheckSet(absl::Seconds(60));
    if (!set.ok()) {
      verdict.reasons.push_back(std::string(set.status().message()));
    } else {
      lost = set->lost.size();
      Say(absl::StrCat("set: ", set->acknowledged, " acknowledged writes, ", lost, " lost, ",
                       set->unknown_present, " unknown-outcome writes present"));
      if (lost > 0) {
        verdict.reasons.push_back(
            absl::StrCat(lost, " acknowledged set writes lost, e.g. ", set->lost.front()));
      }
    }
    if (o.watchers > 0) {
      watch = CheckWatchers(o, cluster, watchers, workload, dir + "/watch.txt", &verdict);
    }
    counts = workload.Counts();
    const std::string history_path = dir + "/history.jsonl";
    absl::Status written = WriteHistory(workload.RegisterHistory(), history_path);
    if (!written.ok()) {
      verdict.reasons.push_back(std::string(written.message()));
    } else {
      CheckHistoryFile(history_path, dir + "/counterexample.txt", absl::Seconds(o.check_timeout_s),
                       &verdict);
    }
  }             // The cluster stops here (its logs stay in the run dir).
  lab.reset();  // Namespaces removed.

  verdict.valid = verdict.reasons.empty();
  if (verdict.valid) verdict.word = "VALID";
  std::printf(
      "%s ops=%lu ok=%lu fail=%lu unknown=%lu faults=%d leader_moves=%d members_replaced=%d "
      "lost=%lu watchers=%d %s\n",
      verdict.word.c_str(), static_cast<unsigned long>(counts.ops),
      static_cast<unsigned long>(counts.ok), static_cast<unsigned long>(counts.fail),
      static_cast<unsigned long>(counts.unknown), injected, leader_moves, members_replaced,
      static_cast<unsigned long>(lost), o.watchers, watch.Summary().c_str());
  std::fflush(stdout);
  for (const auto& reason : verdict.reasons) Say(reason);
  const bool caught = !verdict.valid && verdict.word == "INVALID";
  int exit_code = verdict.valid ? 0 : 1;
  if (o.expect_invalid) {
    if (!caught) Say("expected INVALID: the broken build was not caught");
    exit_code = caught ? 0 : 1;
  }
  // Kept when the run failed (for the post-mortem) or when asked to.
  if (exit_code == 0 && !o.keep) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    Say(absl::StrCat("history, fault log and member logs kept in ", dir, " (seed ", seed, ")"));
  }
  return exit_code;
}

}  // namespace
}  // namespace keel::chaos

int main(int argc, char** argv) {
  keel::chaos::Options o;
  CLI::App app{
      "keel-chaos: fault injection against a real keeld cluster, checked for "
      "linearizability and lost writes",
      "keel-chaos"};
  app.add_option("--time", o.time_s, "Seconds of faults")
      ->check(CLI::Range(1, 86'400))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the fault schedule and the workload (0: random)");
  app.add_option("--members", o.members, "Cluster size")
      ->check(CLI::Range(3, 7))
      ->capture_default_str();
  app.add_option("--workers", o.workers, "Register workers")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--set-workers", o.set_workers, "Set-workload workers")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--watchers", o.watchers,
                 "Watchers (keel::Client watches of every key, the register keys, one key)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--keys", o.keys, "Register keys")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--op-timeout-ms", o.op_timeout_ms, "Deadline of each client call")
      ->check(CLI::Range(50, 60'000))
      ->capture_default_str();
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "keeld --heartbeat-interval")
      ->capture_default_str();
  app.add_option("--election-ms", o.election_ms, "keeld --election-timeout")->capture_default_str();
  app.add_option("--faults", o.faults,
                 "Comma-separated: all, kill, pause, partition, net, disk, member, or single "
                 "faults (kill-leader, isolate-leader, split, bridge, one-way, flap, move-leader, "
                 "replace-member, ...)")
      ->capture_default_str();
  app.add_option("--bug", o.bug, "Start every member with --UNSAFE-bug NAME (test builds)");
  app.add_option("--keeld-flag", o.keeld_flags,
                 "Extra keeld flag for every member, repeatable: --keeld-flag=--snapshot-count=100")
      ->allow_extra_args(false);
  app.add_option("--keeld", o.keeld,
                 "The keeld binary (default: the one built with keel-chaos); a copy lets a "
                 "long run go on while keeld is rebuilt");
  app.add_flag("--expect-invalid", o.expect_invalid,
               "Exit 0 only if the run is INVALID or loses writes (for --bug runs)");
  app.add_flag("--no-netns", o.no_netns,
               "Run on 127.0.0.1 without network namespaces (no partitions; no root needed)");
  app.add_option("--dir", o.dir, "Run directory (default: a new temp dir)");
  app.add_flag("--keep", o.keep, "Keep the run directory even if the run is VALID");
  app.add_option("--check-timeout", o.check_timeout_s, "Checker time limit per key, seconds")
      ->capture_default_str();
  app.add_flag("--cleanup", o.cleanup,
               "Only remove network namespaces left by crashed runs, then exit");
  CLI11_PARSE(app, argc, argv);
  // Ctrl-C / SIGTERM end the schedule early; the run still heals, checks and cleans up.
  signal(SIGINT, keel::chaos::OnSignal);
  signal(SIGTERM, keel::chaos::OnSignal);
  return keel::chaos::Run(o);
}
