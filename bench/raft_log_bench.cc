// Raft log micro-benchmarks: appends in synced batches (one Save = one Ready = one fsync)
// of 1, 16 and 256 entries of 256 bytes, and reads from the tail cache and from RocksDB.
//
// The log lives under $KEEL_BENCH_DIR (default $TMPDIR or /tmp): put it on the disk you
// want to measure. Counters: entries/s and bytes/s (payload bytes), per wall-clock second.
//
//   build/bench/raft_log_bench --benchmark_min_time=3
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "storage/raft_log_store.h"

namespace keel::storage {
namespace {

constexpr size_t kPayloadBytes = 256;

class BenchDir {
 public:
  BenchDir() {
    const char* base = getenv("KEEL_BENCH_DIR");
    if (base == nullptr || *base == '\0') base = getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/keel-raft-log-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string RandomPayload() {
  std::mt19937_64 rng(42);
  std::string out(kPayloadBytes, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::vector<raftpb::Entry> Batch(size_t n) {
  std::vector<raftpb::Entry> entries(n);
  const std::string payload = RandomPayload();
  for (auto& e : entries) {
    e.set_term(1);
    e.set_data(payload);
  }
  return entries;
}

std::unique_ptr<RaftLogStore> OpenOrDie(const std::string& dir) {
  auto store = RaftLogStore::Open(dir, {});
  if (!store.ok()) {
    fprintf(stderr, "%s\n", store.status().ToString().c_str());
    abort();
  }
  return std::move(*store);
}

void Append(benchmark::State& state, bool sync) {
  const size_t batch = static_cast<size_t>(state.range(0));
  BenchDir dir;
  auto store = OpenOrDie(dir.path());
  std::vector<raftpb::Entry> entries = Batch(batch);
  raftpb::HardState hs;
  hs.set_term(1);
  uint64_t next = 1;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) entries[i].set_index(next + i);
    hs.set_commit(next - 1);
    absl::Status s = store->Save(&hs, entries, nullptr, sync);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    next += batch;
    // Keep the log bounded as snapshots would (rarely: once per 256k entries).
    if (next - store->FirstIndex() > (256u << 10)) {
      const uint64_t upto = next - 1 - 1024;
      if (!store->CreateSnapshot(upto, {}, "").ok() || !store->Compact(upto).ok()) {
        state.SkipWithError("compaction failed");
        break;
      }
    }
  }
  const double entries_total = static_cast<double>(state.iterations() * batch);
  state.counters["entries/s"] = benchmark::Counter(entries_total, benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(
      entries_total * kPayloadBytes, benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
}

void BM_RaftLogAppendSynced(benchmark::State& state) { Append(state, /*sync=*/true); }
BENCHMARK(BM_RaftLogAppendSynced)
    ->ArgName("entries")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The same without fsync: what the fsync costs.
void BM_RaftLogAppendUnsynced(benchmark::State& state) { Append(state, /*sync=*/false); }
BENCHMARK(BM_RaftLogAppendUnsynced)
    ->ArgName("entries")
    ->Arg(16)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Reading 64 entries: arg 1 = from the tail cache (the leader's hot path), 0 = from RocksDB
// (a follower far behind).
void BM_RaftLogRead64(benchmark::State& state) {
  const bool hot = state.range(0) == 1;
  BenchDir dir;
  auto store = OpenOrDie(dir.path());
  constexpr uint64_t kEntries = 100000;
  std::vector<raftpb::Entry> entries = Batch(1000);
  for (uint64_t next = 1; next <= kEntries; next += entries.size()) {
    for (size_t i = 0; i < entries.size(); ++i) entries[i].set_index(next + i);
    if (!store->Save(nullptr, entries, nullptr, false).ok()) abort();
  }
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    const uint64_t lo = hot ? kEntries - 63 : 1 + rng() % (kEntries / 2);
    auto got = store->Entries(lo, lo + 64, 1 << 20);
    if (!got.ok() || got->size() != 64) {
      state.SkipWithError("read failed");
      break;
    }
    benchmark::DoNotOptimize(got);
  }
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * 64), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RaftLogRead64)->ArgName("hot")->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace keel::storage

BENCHMARK_MAIN();
