// cas_counter: a shared counter incremented by several threads with compare-and-swap
// transactions on one keel::Client — the classic optimistic-concurrency loop:
//
//   read the counter (value and mod_revision)
//   Txn: If(mod_revision unchanged) Then(Put value+1) Else(Get the new value)
//   if the compare failed, someone else won: start again from the value returned.
//
// Usage: cas_counter --endpoints=127.0.0.1:2379,... [--key=cas-counter] [--threads=4]
//                    [--increments=100]
// Prints the final value and exits 0 iff it equals the start value plus
// threads * increments (no increment lost, none applied twice), 1 otherwise, 2 on a
// usage error.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "keel/client.h"

namespace {

struct Args {
  std::vector<std::string> endpoints;
  std::string key = "cas-counter";
  int threads = 4;
  int increments = 100;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string(name) + "=";
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("--endpoints")) {
      std::string list = v;
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) args->endpoints.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (const char* v = value("--key")) {
      args->key = v;
    } else if (const char* v = value("--threads")) {
      args->threads = std::atoi(v);
    } else if (const char* v = value("--increments")) {
      args->increments = std::atoi(v);
    } else {
      std::fprintf(stderr, "cas_counter: unknown argument %s\n", argv[i]);
      return false;
    }
  }
  if (args->endpoints.empty() || args->threads < 1 || args->increments < 1) {
    std::fprintf(stderr,
                 "usage: cas_counter --endpoints=host:port[,host:port...] [--key=K] "
                 "[--threads=N>=1] [--increments=N>=1]\n");
    return false;
  }
  return true;
}

// The counter's value and mod_revision (0, 0 if the key does not exist yet).
struct Seen {
  long long value = 0;
  int64_t mod_revision = 0;
};

Seen SeenIn(const keel::RangeResponse& r) {
  if (r.kvs_size() == 0) return {};
  return Seen{std::atoll(r.kvs(0).value().c_str()), r.kvs(0).mod_revision()};
}

// One increment; returns the number of compare failures (contention) it took.
absl::StatusOr<int> Increment(keel::Client& client, const std::string& key) {
  absl::StatusOr<keel::RangeResponse> read = client.Get(key);
  if (!read.ok()) return read.status();
  Seen seen = SeenIn(*read);
  for (int conflicts = 0;; ++conflicts) {
    keel::Txn cas;
    cas.If(keel::Compare::ModRevision(key, keel::CompareOp::kEqual, seen.mod_revision))
        .Then(keel::Op::Put(key, std::to_string(seen.value + 1)))
        .Else(keel::Op::Get(key));
    absl::StatusOr<keel::TxnResponse> result = client.Txn(cas);
    if (!result.ok()) return result.status();
    if (result->succeeded()) return conflicts;
    seen = SeenIn(result->responses(0).response_range());  // Lost the race: retry from here.
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;
  keel::ClientOptions options;
  options.endpoints = args.endpoints;
  absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "cas_counter: %s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<keel::RangeResponse> start = (*client)->Get(args.key);
  if (!start.ok()) {
    std::fprintf(stderr, "cas_counter: read %s: %s\n", args.key.c_str(),
                 std::string(start.status().message()).c_str());
    return 1;
  }
  const long long initial = SeenIn(*start).value;

  std::atomic<long long> conflicts{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < args.increments && !failed.load(); ++i) {
        absl::StatusOr<int> c = Increment(**client, args.key);
        if (!c.ok()) {
          std::fprintf(stderr, "cas_counter: %s\n", std::string(c.status().message()).c_str());
          failed = true;
          return;
        }
        conflicts += *c;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed.load()) return 1;

  absl::StatusOr<keel::RangeResponse> end = (*client)->Get(args.key);
  if (!end.ok()) {
    std::fprintf(stderr, "cas_counter: read %s: %s\n", args.key.c_str(),
                 std::string(end.status().message()).c_str());
    return 1;
  }
  const long long expected = initial + static_cast<long long>(args.threads) * args.increments;
  const long long final_value = SeenIn(*end).value;
  std::printf("%s = %lld (expected %lld; %lld compare conflicts retried)\n", args.key.c_str(),
              final_value, expected, conflicts.load());
  return final_value == expected ? 0 : 1;
}
