// `keel check perf`: a short write load at a fixed rate, judged PASS or FAIL by
// etcdctl's criteria (throughput >= 90% of the target rate, slowest write <= 500 ms,
// latency standard deviation <= 100 ms, and no failed writes).
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"
#include "tools/keel/errors.h"

namespace keel::cli {
namespace {

// etcdctl's loads: target writes per second and concurrent writers.
struct Load {
  const char* name;
  int writes_per_s;
  int clients;
};
constexpr Load kLoads[] = {{"s", 150, 50}, {"m", 1000, 200}, {"l", 8000, 500}, {"xl", 15000, 1000}};

constexpr size_t kKeyBytes = 8;       // Random, hex: 16 characters after the prefix.
constexpr size_t kValueBytes = 1024;  // etcdctl's value size.
constexpr double kMinThroughputRatio = 0.9;
constexpr double kSlowestMaxS = 0.5;
constexpr double kStddevMaxS = 0.1;

struct CheckPerfArgs {
  std::string load = "s";
  absl::Duration duration = absl::Seconds(60);
  std::string prefix = "/keel-check-perf/";
  bool auto_compact = false;
};

struct PerfResult {
  int64_t writes = 0;
  int64_t failed = 0;
  std::string first_error;
  double elapsed_s = 0;
  double throughput = 0;  // Successful writes per second.
  double slowest_s = 0;
  double stddev_s = 0;
  double mean_s = 0;
};

// Offers `load` for `duration`: one write every 1/rate seconds, at most `clients` in
// flight (the pacer waits when all are busy, so an overloaded cluster shows up as low
// throughput, not as an ever-growing queue). No write starts after `duration`.
PerfResult RunLoad(keel::Client& client, const Load& load, const CheckPerfArgs& args,
                   absl::Duration call_timeout) {
  const int64_t total =
      static_cast<int64_t>(absl::ToDoubleSeconds(args.duration) * load.writes_per_s);
  std::mt19937_64 rng(std::random_device{}());
  std::string value(kValueBytes, '\0');
  for (char& c : value) c = static_cast<char>('a' + rng() % 26);

  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::vector<double> latencies_s;
  latencies_s.reserve(total);
  PerfResult result;
  keel::PutOptions options;
  options.timeout = call_timeout;

  const absl::Time start = absl::Now();
  const absl::Time end = start + args.duration;
  const absl::Duration interval = absl::Seconds(1) / load.writes_per_s;
  for (int64_t i = 0; i < total && absl::Now() < end; ++i) {
    const absl::Time due = start + interval * i;
    const absl::Duration wait = due - absl::Now();
    if (wait > absl::ZeroDuration()) absl::SleepFor(wait);  // Pacing the load, not syncing.
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < load.clients; });
      ++in_flight;
    }
    const std::string key = absl::StrCat(args.prefix, absl::Hex(rng(), absl::kZeroPad16));
    const absl::Time sent = absl::Now();
    client.PutAsync(key, value, options, [&, sent](absl::StatusOr<keel::PutResponse> r) {
      const double latency_s = absl::ToDoubleSeconds(absl::Now() - sent);
      std::lock_guard<std::mutex> lock(mu);
      ++result.writes;
      if (r.ok()) {
        latencies_s.push_back(latency_s);
      } else if (result.failed++ == 0) {
        result.first_error = OneLine(r.status().message());
      }
      --in_flight;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  result.elapsed_s = absl::ToDoubleSeconds(absl::Now() - start);
  const double n = static_cast<double>(latencies_s.size());
  if (n > 0) {
    double sum = 0;
    for (double l : latencies_s) sum += l;
    result.mean_s = sum / n;
    double squares = 0;
    for (double l : latencies_s) squares += (l - result.mean_s) * (l - result.mean_s);
    result.stddev_s = std::sqrt(squares / n);
    result.slowest_s = *std::max_element(latencies_s.begin(), latencies_s.end());
    result.throughput = n / result.elapsed_s;
  }
  return result;
}

struct Verdict {
  std::string check;
  bool pass;
  std::string line;  // etcdctl's wording.
};

std::vector<Verdict> Judge(const PerfResult& r, const Load& load) {
  std::vector<Verdict> v;
  const int throughput = static_cast<int>(r.throughput) + (r.throughput > 0 ? 1 : 0);
  if (r.throughput / load.writes_per_s <= kMinThroughputRatio) {
    v.push_back({"throughput", false,
                 absl::StrFormat("FAIL: Throughput too low: %d writes/s (target %d)", throughput,
                                 load.writes_per_s)});
  } else {
    v.push_back(
        {"throughput", true, absl::StrFormat("PASS: Throughput is %d writes/s", throughput)});
  }
  if (r.slowest_s > kSlowestMaxS) {
    v.push_back({"slowest", false,
                 absl::StrFormat("FAIL: Slowest request took too long: %fs", r.slowest_s)});
  } else {
    v.push_back({"slowest", true, absl::StrFormat("PASS: Slowest request took %fs", r.slowest_s)});
  }
  if (r.stddev_s > kStddevMaxS) {
    v.push_back({"stddev", false, absl::StrFormat("FAIL: Stddev too high: %fs", r.stddev_s)});
  } else {
    v.push_back({"stddev", true, absl::StrFormat("PASS: Stddev is %fs", r.stddev_s)});
  }
  if (r.failed > 0) {
    v.push_back({"errors", false,
                 absl::StrFormat("FAIL: %d of %d writes failed (first: %s)", r.failed, r.writes,
                                 r.first_error)});
  }
  return v;
}

void PrintPerf(const PerfResult& r, const Load& load, const std::vector<Verdict>& verdicts,
               bool pass, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << absl::StrFormat(
        "{\"load\":%s,\"target_writes_per_s\":%d,\"clients\":%d,\"writes\":%d,\"failed\":%d,"
        "\"elapsed_s\":%.3f,\"throughput_writes_per_s\":%.1f,\"mean_s\":%.6f,"
        "\"slowest_s\":%.6f,\"stddev_s\":%.6f,\"pass\":%s}\n",
        JsonString(load.name), load.writes_per_s, load.clients, r.writes, r.failed, r.elapsed_s,
        r.throughput, r.mean_s, r.slowest_s, r.stddev_s, pass ? "true" : "false");
    return;
  }
  if (format == OutputFormat::kTable) {
    Table table({"check", "result", "detail"});
    for (const Verdict& v : verdicts) {
      table.AddRow({v.check, v.pass ? "PASS" : "FAIL", v.line.substr(6)});
    }
    out << table.Render() << (pass ? "PASS" : "FAIL") << "\n";
    return;
  }
  for (const Verdict& v : verdicts) out << v.line << "\n";
  out << (pass ? "PASS" : "FAIL") << "\n";
}

absl::Status RunCheckPerf(Context& ctx, const CheckPerfArgs& args) {
  const Load* load = nullptr;
  for (const Load& l : kLoads) {
    if (args.load == l.name) load = &l;
  }
  if (load == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--load is s, m, l or xl, not '", args.load, "'"));
  }
  if (args.prefix.empty()) return absl::InvalidArgumentError("--prefix must not be empty");
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());

  // Never write over someone's keys, and never delete them afterwards.
  keel::RangeOptions count;
  count.prefix = true;
  count.count_only = true;
  ASSIGN_OR_RETURN(keel::RangeResponse existing, client->Get(args.prefix, count));
  if (existing.count() > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "prefix ", args.prefix, " has ", existing.count(), " keys: delete them first (keel del ",
        args.prefix, " --prefix) or use --prefix"));
  }
  if (ctx.format() == OutputFormat::kSimple) {
    ctx.err() << absl::StrFormat(
        "check perf: %d writes/s of %d-byte values from %d clients for %s\n", load->writes_per_s,
        kValueBytes, load->clients, absl::FormatDuration(args.duration));
  }
  const PerfResult result = RunLoad(*client, *load, args, ctx.flags().command_timeout);

  keel::DeleteOptions all;
  all.prefix = true;
  ASSIGN_OR_RETURN(keel::DeleteResponse deleted, client->Delete(args.prefix, all));
  if (args.auto_compact) {
    RETURN_IF_ERROR(client->Compact(deleted.header().revision()).status());
  }

  const std::vector<Verdict> verdicts = Judge(result, *load);
  const bool pass =
      std::all_of(verdicts.begin(), verdicts.end(), [](const Verdict& v) { return v.pass; });
  PrintPerf(result, *load, verdicts, pass, ctx.format(), ctx.out());
  if (pass) return absl::OkStatus();
  std::vector<std::string> failed;
  for (const Verdict& v : verdicts) {
    if (!v.pass) failed.push_back(v.check);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "check perf failed (", absl::StrJoin(failed, ", "),
      "): the cluster does not keep up with --load ", load->name, "; see the report above"));
}

}  // namespace

void AddCheckCommands(CLI::App& app, Context& ctx) {
  CLI::App* check = app.add_subcommand("check", "Checks of the cluster");
  check->require_subcommand(1);

  auto args = std::make_shared<CheckPerfArgs>();
  CLI::App* perf = check->add_subcommand(
      "perf", "A short write load that says whether the cluster keeps up (PASS or FAIL)");
  perf->footer(
      "Loads (etcdctl's): s 150 writes/s from 50 clients, m 1000/200, l 8000/500, xl 15000/1000;\n"
      "1 KiB values to random keys under --prefix, deleted afterwards.\n"
      "PASS needs: throughput > 90% of the target, slowest write <= 0.5 s, standard deviation\n"
      "<= 0.1 s, no failed writes. Exit code 1 on FAIL.\n"
      "Example:\n  keel check perf --load m --duration 20s");
  perf->add_option("--load", args->load, "s, m, l or xl")
      ->check(CLI::IsMember({"s", "m", "l", "xl"}))
      ->capture_default_str();
  AddDurationOption(perf, "--duration", &args->duration, "How long to offer the load");
  perf->add_option("--prefix", args->prefix, "Key prefix of the writes (must hold no keys)")
      ->capture_default_str();
  perf->add_flag("--auto-compact", args->auto_compact,
                 "Compact the history at the end (drops the test's revisions)");
  perf->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunCheckPerf(ctx, *args); }); });
}

}  // namespace keel::cli
