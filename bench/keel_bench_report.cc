#include "bench/keel_bench_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace keel::bench {
namespace {

constexpr const char* kCodeNames[kNumGrpcCodes] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string Describe(const Options& o) {
  std::string what = WorkloadName(o.workload);
  switch (o.workload) {
    case Workload::kPut:
      break;
    case Workload::kRange:
      absl::StrAppend(&what, o.serializable ? " serializable" : " linearizable", ", ", o.range_keys,
                      " key(s)");
      break;
    case Workload::kTxn:
      absl::StrAppend(&what, " compare-mod-revision-and-put");
      break;
    case Workload::kMixed:
      absl::StrAppend(&what, " read-ratio ", o.read_ratio,
                      o.serializable ? " serializable" : " linearizable");
      break;
    case Workload::kWatch:
      absl::StrAppend(&what, " (puts, ", o.watchers, " watchers on ",
                      o.key_space == 1 ? "the key" : "the key space", ")");
      break;
  }
  return what;
}

std::string LatencyColumns(const LatencyHistogram& h) {
  return absl::StrFormat("%8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f", Ms(h.min_ns()),
                         h.mean_ns() / 1e6, Ms(h.PercentileNs(50)), Ms(h.PercentileNs(90)),
                         Ms(h.PercentileNs(99)), Ms(h.PercentileNs(99.9)), Ms(h.max_ns()));
}

std::string LatencyJson(const LatencyHistogram& h) {
  return absl::StrFormat(
      "{\"min\":%.4f,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,"
      "\"max\":%.4f}",
      Ms(h.min_ns()), h.mean_ns() / 1e6, Ms(h.PercentileNs(50)), Ms(h.PercentileNs(90)),
      Ms(h.PercentileNs(99)), Ms(h.PercentileNs(99.9)), Ms(h.max_ns()));
}

void AppendWatchTable(const Options& o, const WatchResult& w, std::string* out) {
  absl::StrAppendFormat(out, "watchers     %d on %d connection(s); %d events expected each\n",
                        w.watchers, o.watch_conns, w.expected_per_watcher);
  absl::StrAppendFormat(
      out, "delivered    %d events (%.1f per response), last %.3f s after the writes\n",
      w.delivered, w.events_per_response, w.drain_s);
  if (w.wrong_count == 0 && w.order_violations == 0) {
    *out += "check        every watcher got every acknowledged put once, in order\n";
  } else {
    absl::StrAppendFormat(out,
                          "check        FAILED: %d watcher(s) with a wrong event count, %d order "
                          "violation(s)%s%s\n",
                          w.wrong_count, w.order_violations,
                          w.first_failure.empty() ? "" : "; first failure: ", w.first_failure);
  }
  absl::StrAppendFormat(out, "delivery ms  %8s %8s %8s %8s %8s %8s %8s  (%d events)\n", "min",
                        "mean", "p50", "p90", "p99", "p99.9", "max", w.delivery.count());
  absl::StrAppendFormat(out, "             %s\n", LatencyColumns(w.delivery));
}

}  // namespace

std::string GrpcCodeName(int code) {
  if (code >= 0 && code < kNumGrpcCodes) return kCodeNames[code];
  return absl::StrCat("CODE_", code);
}

std::string FormatTable(const Options& o, const Result& r) {
  std::string out;
  absl::StrAppendFormat(&out, "workload     %s\n", Describe(o));
  absl::StrAppendFormat(&out, "endpoints    %s%s\n", absl::StrJoin(r.endpoints, ","),
                        o.target_leader ? " (leader)" : "");
  absl::StrAppendFormat(
      &out, "clients      %d on %d connection(s); key %d B, value %d B, key space %d%s\n",
      o.clients, o.conns, o.key_size, o.val_size, o.key_space,
      o.sequential_keys ? " sequential" : " random");
  if (o.rate > 0) {
    absl::StrAppendFormat(
        &out, "load         open loop, %.1f req/s offered (latency from intended send)\n", o.rate);
  } else {
    out += "load         closed loop\n";
  }
  absl::StrAppendFormat(&out, "requests     %d (%d ok) in %.3f s\n", r.requests, r.ok, r.elapsed_s);
  absl::StrAppendFormat(&out, "throughput   %.1f req/s\n", r.throughput_rps());
  if (o.workload == Workload::kTxn) {
    absl::StrAppendFormat(&out, "txn          %d succeeded, %d compare failed\n", r.txn_succeeded,
                          r.txn_failed);
  }
  absl::StrAppendFormat(&out, "latency ms   %8s %8s %8s %8s %8s %8s %8s\n", "min", "mean", "p50",
                        "p90", "p99", "p99.9", "max");
  const LatencyHistogram& h = r.latency;
  absl::StrAppendFormat(&out, "             %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n",
                        Ms(h.min_ns()), h.mean_ns() / 1e6, Ms(h.PercentileNs(50)),
                        Ms(h.PercentileNs(90)), Ms(h.PercentileNs(99)), Ms(h.PercentileNs(99.9)),
                        Ms(h.max_ns()));
  if (r.watch.watchers > 0) AppendWatchTable(o, r.watch, &out);
  if (r.server_cpu_s >= 0) {
    absl::StrAppendFormat(&out,
                          "cpu          servers %.1f us/req (%.2f cores), keel-bench %.1f us/req\n",
                          Result::PerOpUs(r.server_cpu_s, r.requests),
                          r.elapsed_s > 0 ? r.server_cpu_s / r.elapsed_s : 0.0,
                          Result::PerOpUs(r.client_cpu_s, r.requests));
  }
  bool any_error = false;
  for (int c = 1; c < kNumGrpcCodes; ++c) {
    if (r.errors_by_code[c] == 0) continue;
    absl::StrAppendFormat(&out, "errors       %-20s %d\n", GrpcCodeName(c), r.errors_by_code[c]);
    any_error = true;
  }
  if (!any_error) out += "errors       none\n";
  return out;
}

std::string FormatJson(const Options& o, const Result& r) {
  std::vector<std::string> errors;
  for (int c = 1; c < kNumGrpcCodes; ++c) {
    if (r.errors_by_code[c] != 0) {
      errors.push_back(absl::StrFormat("\"%s\":%d", GrpcCodeName(c), r.errors_by_code[c]));
    }
  }
  std::vector<std::string> endpoints;
  for (const std::string& e : r.endpoints) endpoints.push_back(absl::StrCat("\"", e, "\""));
  const LatencyHistogram& h = r.latency;
  std::string watch;
  if (r.watch.watchers > 0) {
    const WatchResult& w = r.watch;
    watch = absl::StrFormat(
        ",\"watch\":{\"watchers\":%d,\"watch_conns\":%d,\"expected_per_watcher\":%d,"
        "\"delivered\":%d,\"wrong_count\":%d,\"order_violations\":%d,"
        "\"events_per_response\":%.2f,\"drain_s\":%.3f,\"delivery_ms\":%s}",
        w.watchers, o.watch_conns, w.expected_per_watcher, w.delivered, w.wrong_count,
        w.order_violations, w.events_per_response, w.drain_s, LatencyJson(w.delivery));
  }
  return absl::StrFormat(
      "{\"workload\":\"%s\",\"serializable\":%s,\"range_keys\":%d,\"read_ratio\":%g,"
      "\"clients\":%d,\"conns\":%d,\"rate\":%g,\"key_size\":%d,\"val_size\":%d,\"key_space\":%d,"
      "\"target_leader\":%s,\"endpoints\":[%s],\"requests\":%d,\"ok\":%d,\"errors\":{%s},"
      "\"elapsed_s\":%.6f,\"throughput_rps\":%.2f,\"txn_succeeded\":%d,\"txn_failed\":%d,"
      "\"latency_ms\":{\"min\":%.4f,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
      "\"p999\":%.4f,\"max\":%.4f},\"server_cpu_us_per_op\":%.2f,"
      "\"client_cpu_us_per_op\":%.2f%s}",
      WorkloadName(o.workload), o.serializable ? "true" : "false", o.range_keys, o.read_ratio,
      o.clients, o.conns, o.rate, o.key_size, o.val_size, o.key_space,
      o.target_leader ? "true" : "false", absl::StrJoin(endpoints, ","), r.requests, r.ok,
      absl::StrJoin(errors, ","), r.elapsed_s, r.throughput_rps(), r.txn_succeeded, r.txn_failed,
      Ms(h.min_ns()), h.mean_ns() / 1e6, Ms(h.PercentileNs(50)), Ms(h.PercentileNs(90)),
      Ms(h.PercentileNs(99)), Ms(h.PercentileNs(99.9)), Ms(h.max_ns()),
      Result::PerOpUs(r.server_cpu_s, r.requests), Result::PerOpUs(r.client_cpu_s, r.requests),
      watch);
}

}  // namespace keel::bench
