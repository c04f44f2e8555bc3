// KvStore micro-benchmarks: state machine apply throughput (puts of 256-byte values in
// batches of 1, 16 and 256 entries), and point-get / 100-key range latency on a store of
// 1 million keys (KEEL_KV_BENCH_KEYS overrides the size; the store is built once, in
// batches of 1,000 entries, under $TMPDIR, and removed at exit).
// Run: build/bench/kv_bench [--benchmark_filter=...]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/check.h"
#include "storage/kv_store.h"

namespace keel::storage {
namespace {

std::string TempPath(const char* name) {
  const char* base = std::getenv("TMPDIR");
  return std::string(base != nullptr ? base : "/tmp") + "/" + name + "_" +
         std::to_string(::getpid());
}

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key%010llu", static_cast<unsigned long long>(i));
  return buf;
}

std::string PutPayload(const std::string& key, const std::string& value) {
  internalpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r.SerializeAsString();
}

std::unique_ptr<KvStore> OpenFresh(const std::string& dir) {
  std::filesystem::remove_all(dir);
  KvStoreOptions o;
  o.dir = dir;
  auto s = KvStore::Open(o);
  KEEL_CHECK(s.ok());
  return std::move(s).value();
}

void ApplyPuts(KvStore& store, uint64_t* index, uint64_t first_key, uint64_t n,
               const std::string& value) {
  std::vector<std::string> data;
  data.reserve(n);
  for (uint64_t i = 0; i < n; ++i) data.push_back(PutPayload(Key(first_key + i), value));
  std::vector<ApplyEntry> entries;
  entries.reserve(n);
  for (uint64_t i = 0; i < n; ++i) entries.push_back({++*index, data[i]});
  auto r = store.Apply(entries);
  KEEL_CHECK(r.ok());
}

// Entries/s and MB/s of Apply with `batch` puts of 256-byte values per call, into a
// store that grows as the benchmark runs (keys spread over 1M, so new keys and updates mix).
void BM_ApplyPuts(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const std::string dir = TempPath("keel_kv_bench_apply");
  auto store = OpenFresh(dir);
  const std::string value(256, 'v');
  std::mt19937_64 rng(1);
  uint64_t index = 0;
  std::vector<std::string> data(batch);
  std::vector<ApplyEntry> entries(batch);
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t i = 0; i < batch; ++i) {
      data[i] = PutPayload(Key(rng() % 1'000'000), value);
      entries[i] = {++index, data[i]};
    }
    state.ResumeTiming();
    auto r = store->Apply(entries);
    KEEL_CHECK(r.ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * 256));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ApplyPuts)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

// The shared 1M-key store for the read benchmarks.
struct BigStore {
  std::string dir = TempPath("keel_kv_bench_1m");
  std::unique_ptr<KvStore> store;
  uint64_t keys = 0;

  BigStore() {
    const char* env = std::getenv("KEEL_KV_BENCH_KEYS");
    keys = env != nullptr ? std::strtoull(env, nullptr, 10) : 1'000'000;
    store = OpenFresh(dir);
    const std::string value(100, 'x');
    uint64_t index = 0;
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t k = 0; k < keys; k += 1000) {
      ApplyPuts(*store, &index, k, std::min<uint64_t>(1000, keys - k), value);
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "loaded %llu keys in %.1f s (%.0f puts/s)\n",
                 static_cast<unsigned long long>(keys), s, static_cast<double>(keys) / s);
  }
  ~BigStore() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

BigStore& Big() {
  static BigStore big;  // Built on first use, removed at exit.
  return big;
}

void BM_PointGet(benchmark::State& state) {
  BigStore& big = Big();
  std::mt19937_64 rng(2);
  etcdserverpb::RangeRequest req;
  for (auto _ : state) {
    req.set_key(Key(rng() % big.keys));
    auto r = big.store->Range(req);
    KEEL_CHECK(r.ok() && r->kvs_size() == 1);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PointGet)->UseRealTime();

void BM_Range100(benchmark::State& state) {
  BigStore& big = Big();
  std::mt19937_64 rng(3);
  etcdserverpb::RangeRequest req;
  for (auto _ : state) {
    const uint64_t first = rng() % (big.keys - 100);
    req.set_key(Key(first));
    req.set_range_end(Key(first + 100));
    auto r = big.store->Range(req);
    KEEL_CHECK(r.ok() && r->kvs_size() == 100);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}
BENCHMARK(BM_Range100)->UseRealTime();

// The same 100-key range read at an older revision: served from the history family
// (one seek per key) instead of the current-state family.
void BM_Range100Historical(benchmark::State& state) {
  BigStore& big = Big();
  std::mt19937_64 rng(4);
  etcdserverpb::RangeRequest req;
  req.set_revision(big.store->Revision() - 1);  // Forces the history path.
  for (auto _ : state) {
    const uint64_t first = rng() % (big.keys - 100);
    req.set_key(Key(first));
    req.set_range_end(Key(first + 100));
    auto r = big.store->Range(req);
    KEEL_CHECK(r.ok() && r->kvs_size() >= 99);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}
BENCHMARK(BM_Range100Historical)->UseRealTime();

}  // namespace
}  // namespace keel::storage

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
