#include "bench/keel_bench_options.h"

#include <cstdio>
#include <functional>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/check.h"
#include "common/status_macros.h"

namespace keel::bench {
namespace {

absl::Status Bad(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", why));
}

template <typename T>
absl::Status ParseInt(const std::string& flag, const std::string& value, T min, T max, T* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v)) return Bad(flag, absl::StrCat("not an integer: '", value, "'"));
  if (v < static_cast<int64_t>(min) || v > static_cast<int64_t>(max)) {
    return Bad(flag, absl::StrCat(v, " is outside [", min, ", ", max, "]"));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status ParseDouble(const std::string& flag, const std::string& value, double min, double max,
                         double* out) {
  double v = 0;
  if (!absl::SimpleAtod(value, &v)) return Bad(flag, absl::StrCat("not a number: '", value, "'"));
  if (!(v >= min && v <= max))
    return Bad(flag, absl::StrCat(v, " is outside [", min, ", ", max, "]"));
  *out = v;
  return absl::OkStatus();
}

absl::Status CheckConsistent(Options& o) {
  if (o.total == 0 && o.duration_s == 0) o.duration_s = kDefaultDurationS;
  if (o.conns > o.clients) {
    return Bad("--conns", absl::StrCat(o.conns, " channels for ", o.clients,
                                       " clients would leave channels idle"));
  }
  // 10^key_size distinct keys fit in key_size decimal digits.
  int64_t limit = 1;
  for (int i = 0; i < o.key_size && limit <= o.key_space; ++i) limit *= 10;
  if (o.key_space > limit) {
    return Bad("--key-space", absl::StrCat(o.key_space, " keys do not fit in --key-size ",
                                           o.key_size, " decimal digits"));
  }
  if (o.range_keys > o.key_space) {
    return Bad("--range-keys", absl::StrCat(o.range_keys, " exceeds --key-space ", o.key_space));
  }
  if (o.rate > 0 && o.rate / o.clients > 1e6) {
    return Bad("--rate", absl::StrCat(o.rate, " req/s over ", o.clients,
                                      " clients is over 1M req/s per client"));
  }
  if (o.workload == Workload::kWatch) {
    if (o.val_size < kStampBytes) {
      return Bad("--val-size", absl::StrCat("watch needs at least ", kStampBytes,
                                            " bytes (the send time travels in the value)"));
    }
    if (o.watch_conns > o.watchers) {
      return Bad("--watch-conns", absl::StrCat(o.watch_conns, " channels for ", o.watchers,
                                               " watchers would leave channels idle"));
    }
  }
  if (o.warmup_s > 0 && o.duration_s > 0 && o.warmup_s >= o.duration_s) {
    return Bad("--warmup", "must be shorter than --duration");
  }
  return absl::OkStatus();
}

}  // namespace

const char* WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kPut:
      return "put";
    case Workload::kRange:
      return "range";
    case Workload::kTxn:
      return "txn";
    case Workload::kMixed:
      return "mixed";
    case Workload::kWatch:
      return "watch";
  }
  return "?";
}

void StampSendTime(std::string* value, std::chrono::steady_clock::time_point sent) {
  KEEL_CHECK(value->size() >= static_cast<size_t>(kStampBytes));
  auto ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch()).count());
  for (int i = kStampBytes - 1; i >= 0; --i) {
    (*value)[static_cast<size_t>(i)] = static_cast<char>('0' + ns % 10);
    ns /= 10;
  }
}

bool ReadSendTime(std::string_view value, std::chrono::steady_clock::time_point* sent) {
  uint64_t ns = 0;
  if (value.size() < static_cast<size_t>(kStampBytes) ||
      !absl::SimpleAtoi(absl::string_view(value.data(), kStampBytes), &ns)) {
    return false;
  }
  *sent = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
  return true;
}

std::string MakeKey(int64_t index, int key_size) {
  KEEL_CHECK(index >= 0 && key_size > 0);
  std::string key(static_cast<size_t>(key_size), '0');
  for (int i = key_size - 1; i >= 0 && index > 0; --i) {
    key[static_cast<size_t>(i)] = static_cast<char>('0' + index % 10);
    index /= 10;
  }
  KEEL_CHECK_MSG(index == 0, "key index does not fit in key_size digits");
  return key;
}

absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  if (args.size() < 2) {
    return absl::InvalidArgumentError("missing workload (put|range|txn|mixed|watch)");
  }
  const std::string& w = args[1];
  if (w == "put") {
    o.workload = Workload::kPut;
  } else if (w == "range") {
    o.workload = Workload::kRange;
  } else if (w == "txn") {
    o.workload = Workload::kTxn;
  } else if (w == "mixed") {
    o.workload = Workload::kMixed;
  } else if (w == "watch") {
    o.workload = Workload::kWatch;
  } else {
    return Bad("workload", absl::StrCat("unknown '", w, "' (put|range|txn|mixed|watch)"));
  }

  using Setter = std::function<absl::Status(const std::string& flag, const std::string& v)>;
  // etcdctl's spelling of the output format.
  const Setter write_out = [&](const std::string& f, const std::string& v) {
    if (v != "json" && v != "table") return Bad(f, absl::StrCat("'", v, "' is not json|table"));
    o.json = v == "json";
    return absl::OkStatus();
  };
  // Flags with a value.
  const std::map<std::string, Setter> valued = {
      {"--endpoints",
       [&](const std::string& f, const std::string& v) {
         o.endpoints = absl::StrSplit(v, ',', absl::SkipEmpty());
         if (o.endpoints.empty()) return Bad(f, "empty list");
         for (const std::string& e : o.endpoints) {
           if (e.find(':') == std::string::npos)
             return Bad(f, absl::StrCat("'", e, "' is not host:port"));
         }
         return absl::OkStatus();
       }},
      {"--server-pids",
       [&](const std::string& f, const std::string& v) {
         o.server_pids.clear();
         for (const std::string& p :
              std::vector<std::string>(absl::StrSplit(v, ',', absl::SkipEmpty()))) {
           int pid = 0;
           RETURN_IF_ERROR(ParseInt(f, p, 1, INT32_MAX, &pid));
           o.server_pids.push_back(pid);
         }
         if (o.server_pids.empty()) return Bad(f, "empty list");
         return absl::OkStatus();
       }},
      {"--conns", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 1024, &o.conns); }},
      {"--watchers", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 1000000, &o.watchers); }},
      {"--watch-conns", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 1024, &o.watch_conns); }},
      {"--clients", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 100000, &o.clients); }},
      {"--total",
       [&](auto& f, auto& v) { return ParseInt<int64_t>(f, v, 1, INT64_MAX, &o.total); }},
      {"--duration",
       [&](auto& f, auto& v) { return ParseDouble(f, v, 0.001, 86400, &o.duration_s); }},
      {"--warmup", [&](auto& f, auto& v) { return ParseDouble(f, v, 0, 3600, &o.warmup_s); }},
      {"--timeout-ms", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 3600000, &o.timeout_ms); }},
      {"--key-size", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 1 << 20, &o.key_size); }},
      {"--val-size", [&](auto& f, auto& v) { return ParseInt(f, v, 0, 64 << 20, &o.val_size); }},
      {"--key-space",
       [&](auto& f, auto& v) {
         return ParseInt<int64_t>(f, v, 1, int64_t{1} << 40, &o.key_space);
       }},
      {"--range-keys", [&](auto& f, auto& v) { return ParseInt(f, v, 1, 1 << 20, &o.range_keys); }},
      {"--rate", [&](auto& f, auto& v) { return ParseDouble(f, v, 0.001, 1e9, &o.rate); }},
      {"-w", write_out},
      {"--write-out", write_out},
      {"--read-ratio", [&](auto& f, auto& v) { return ParseDouble(f, v, 0, 1, &o.read_ratio); }},
      {"--seed", [&](auto& f, auto& v) { return ParseInt<uint64_t>(f, v, 0, INT64_MAX, &o.seed); }},
      {"--consistency",
       [&](const std::string& f, const std::string& v) {
         if (v == "l") {
           o.serializable = false;
         } else if (v == "s") {
           o.serializable = true;
         } else {
           return Bad(f,
                      absl::StrCat("'", v, "' is neither l (linearizable) nor s (serializable)"));
         }
         return absl::OkStatus();
       }},
  };
  // Boolean flags.
  const std::map<std::string, bool*> switches = {
      {"--target-leader", &o.target_leader},
      {"--sequential-keys", &o.sequential_keys},
      {"--preload", &o.preload},
      {"--json", &o.json},
  };

  for (size_t i = 2; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline_value = true;
    }
    if (flag == "--no-progress" && !has_inline_value) {
      o.progress = false;
      continue;
    }
    if (auto s = switches.find(flag); s != switches.end()) {
      if (has_inline_value) return Bad(flag, "takes no value");
      *s->second = true;
      continue;
    }
    auto it = valued.find(flag);
    if (it == valued.end()) return Bad(flag, "unknown flag");
    if (!has_inline_value) {
      if (i + 1 >= args.size()) return Bad(flag, "missing value");
      value = args[++i];
    }
    RETURN_IF_ERROR(it->second(flag, value));
  }
  RETURN_IF_ERROR(CheckConsistent(o));
  return o;
}

std::string Usage() {
  return R"(usage: keel-bench put|range|txn|mixed|watch [flags]
Drives any etcd v3 gRPC server (keeld, etcd): closed loop (each client keeps one request in
flight) or open loop (--rate); clients share --conns gRPC channels (separate TCP
connections). Errors are counted by gRPC code; exit status 3 if any request failed.
  --endpoints h:p,...     servers (default 127.0.0.1:2379); clients spread over them
  --target-leader         send only to the leader (asks Maintenance.Status on each)
  --conns N               channels (default 1, must be <= --clients)
  --clients M             concurrent requesters (default 1)
  --total N               stop after N requests
  --duration S            stop after S seconds (default 10 if neither is given)
  --warmup S              do not count requests completing in the first S seconds
  --timeout-ms MS         per-request deadline (default 5000)
  --rate R                open loop: offer R req/s in total, spread over the clients;
                          latency counts from each request's intended send time
                          (default: closed loop, each client sends when its last ends)
  --key-size B            key bytes (zero-padded decimal; default 8)
  --val-size B            value bytes (default 256)
  --key-space N           distinct keys (default 10000)
  --sequential-keys       keys 0,1,2,... per client instead of uniform random
  --consistency l|s       range/mixed reads: linearizable (default) or serializable
  --range-keys N          keys per range (default 1)
  --preload               put every key of the key space before measuring
  --read-ratio R          mixed: share of reads in [0,1] (default 0.5)
  --seed N                random seed (default 1)
  --server-pids P,...     report the CPU time these local server processes spent per
                          counted request (utime+stime from /proc/P/stat), and ours
  -w json|table           one JSON line or the table (default); --json = -w json
  --no-progress           no progress line on stderr
txn: compare the key's mod_revision with the last one this client saw (0 at first), put
on success, read the key on failure (the read refreshes the expected revision).
watch: puts as `put`, while --watchers Watch streams (one watch each: the key when
--key-space is 1, else the whole key space) spread over --watch-conns channels (default
10) to every endpoint in turn, created before the writers start. Reports the event
delivery latency (put sent -> event received, puts sent after warmup) and whether every
watcher got every acknowledged put once, in order (exit status 3 if not). The value's
first 20 bytes carry the send time.
  --watchers N            watch streams (default 100)
  --watch-conns N         their channels (default 10, must be <= --watchers)
)";
}

}  // namespace keel::bench
