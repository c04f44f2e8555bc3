// kv_scale: the storage scale benchmark (issue 3, section 5; not in CI). Loads a KvStore
// with incompressible values in large batched Apply calls and, each time the loaded
// USER data (keys + values, --checkpoints-gb; or the on-disk size with --by-disk)
// passes a checkpoint, pauses loading and measures
//   - point-get latency: KvStore::Range of one random existing key (--gets samples);
//   - put latency: single-entry Apply of a new key (--puts samples), with a Sync()
//     (WAL fsync) every 100 puts, timed separately so the fsync cost is its own column.
// With --settle, it first waits (up to --settle-max-minutes) until RocksDB has no
// flush or compaction pending or running, so the figures are the store's, not those of
// the background compaction of what was just loaded; the wait is its own column.
// One table row per checkpoint, flushed at once so a partial run still gives figures.
// Keys are 16 hex characters of splitmix64(seed + i): random-looking (spread over the
// whole key space like hashed ids) yet reproducible from i, so a random existing key is
// Key(uniform(0, loaded)) without keeping a key list.
//
// Safety bounds: loading stops after --max-minutes, or when the file system's free
// space falls below --min-free-gb; the tool then measures the size it reached and says
// why it stopped. The data directory is removed at exit unless --keep.
//
// Run: build/bench/kv_scale --dir /work/kvscale --checkpoints-gb 1,5,10,20 --settle
#include <stdlib.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/check.h"
#include "storage/kv_store.h"

namespace keel::storage {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string dir = "/work/kvscale";
  std::vector<double> checkpoints_gb = {1, 5, 10, 20};
  uint64_t value_bytes = 1024;
  uint64_t batch = 1000;
  uint64_t gets = 20'000;
  uint64_t puts = 5'000;
  double max_minutes = 40;
  double min_free_gb = 25;
  uint64_t seed = 1;
  bool keep = false;
  bool by_disk = false;  // Checkpoints on on-disk size instead of user data.
  bool settle = false;
  double settle_max_minutes = 10;
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(
      stderr,
      "kv_scale: %s\nflags: --dir D --checkpoints-gb 1,5,10,20 --value-bytes N "
      "--batch N --gets N --puts N --max-minutes M --min-free-gb G --seed S --keep --by-disk "
      "--settle --settle-max-minutes M\n",
      msg);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--keep" || a == "--by-disk" || a == "--settle") {
      (a == "--keep" ? f.keep : a == "--by-disk" ? f.by_disk : f.settle) = true;
      continue;
    }
    if (i + 1 >= argc) Usage("missing flag value");
    const absl::string_view v = argv[++i];
    bool ok = true;
    if (a == "--dir") {
      f.dir = std::string(v);
    } else if (a == "--checkpoints-gb") {
      f.checkpoints_gb.clear();
      for (absl::string_view p : absl::StrSplit(v, ',')) {
        double g = 0;
        ok = ok && absl::SimpleAtod(p, &g) && g > 0;
        f.checkpoints_gb.push_back(g);
      }
      std::sort(f.checkpoints_gb.begin(), f.checkpoints_gb.end());
    } else if (a == "--value-bytes") {
      ok = absl::SimpleAtoi(v, &f.value_bytes);
    } else if (a == "--batch") {
      ok = absl::SimpleAtoi(v, &f.batch) && f.batch > 0;
    } else if (a == "--gets") {
      ok = absl::SimpleAtoi(v, &f.gets) && f.gets > 0;
    } else if (a == "--puts") {
      ok = absl::SimpleAtoi(v, &f.puts) && f.puts > 0;
    } else if (a == "--max-minutes") {
      ok = absl::SimpleAtod(v, &f.max_minutes);
    } else if (a == "--min-free-gb") {
      ok = absl::SimpleAtod(v, &f.min_free_gb);
    } else if (a == "--settle-max-minutes") {
      ok = absl::SimpleAtod(v, &f.settle_max_minutes);
    } else if (a == "--seed") {
      ok = absl::SimpleAtoi(v, &f.seed);
    } else {
      Usage("unknown flag");
    }
    if (!ok) Usage("bad flag value");
  }
  return f;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// SplitMix64 is a bijection, so distinct i give distinct keys.
std::string Key(uint64_t seed, uint64_t i) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(SplitMix64(seed * 0x100000000ULL + i)));
  return std::string(buf, 16);
}

void FillRandom(std::mt19937_64& rng, std::string* out) {
  for (size_t i = 0; i < out->size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(out->data() + i, &r, std::min<size_t>(8, out->size() - i));
  }
}

std::string PutPayload(const std::string& key, const std::string& value) {
  internalpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r.SerializeAsString();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      const auto n = it->file_size(fec);
      if (!fec) total += n;  // A file compaction deleted meanwhile: skip it.
    }
  }
  return total;
}

double FreeGb(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize) / 1e9;
}

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double Percentile(std::vector<double>* v, double p) {
  KEEL_CHECK(!v->empty());
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(p * static_cast<double>(v->size())));
  std::nth_element(v->begin(), v->begin() + static_cast<std::ptrdiff_t>(k), v->end());
  return (*v)[k];
}

class Scale {
 public:
  explicit Scale(Flags f) : f_(std::move(f)), value_rng_(f_.seed), pick_rng_(f_.seed + 1) {}

  int Run() {
    fs::remove_all(f_.dir);
    KvStoreOptions o;
    o.dir = f_.dir;
    auto s = KvStore::Open(o);
    if (!s.ok()) {
      std::fprintf(stderr, "open %s: %s\n", f_.dir.c_str(), s.status().ToString().c_str());
      return 1;
    }
    store_ = std::move(s).value();
    std::printf(
        "kv_scale: dir=%s value_bytes=%llu batch=%llu gets=%llu puts=%llu "
        "checkpoints on %s, settle=%s, free=%.1f GB\n",
        f_.dir.c_str(), static_cast<unsigned long long>(f_.value_bytes),
        static_cast<unsigned long long>(f_.batch), static_cast<unsigned long long>(f_.gets),
        static_cast<unsigned long long>(f_.puts), f_.by_disk ? "on-disk size" : "user data",
        f_.settle ? "yes" : "no", FreeGb(f_.dir));
    std::printf(
        "| user GB | on-disk GB | keys | load MB/s | settle s | get p50 us | get p99 us | "
        "put p50 us | put p99 us | sync p50 us | sync p99 us | elapsed min | load avg |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    std::fflush(stdout);

    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(f_.max_minutes * 60));
    std::string stop_reason;
    size_t next = 0;
    Clock::duration load_time{};
    uint64_t loaded_bytes = 0;  // User bytes (key + value) since the last row.
    while (next < f_.checkpoints_gb.size()) {
      // Load ~20 batches between size checks (~20 MB at the defaults).
      for (int b = 0; b < 20; ++b) {
        const auto t0 = Clock::now();
        LoadBatch();
        load_time += Clock::now() - t0;
        loaded_bytes += f_.batch * (16 + f_.value_bytes);
      }
      const double size_gb = f_.by_disk ? static_cast<double>(DirBytes(f_.dir)) / 1e9
                                        : static_cast<double>(UserBytes()) / 1e9;
      if (size_gb >= f_.checkpoints_gb[next]) {
        Measure(loaded_bytes, load_time, start);
        loaded_bytes = 0;
        load_time = {};
        while (next < f_.checkpoints_gb.size() && size_gb >= f_.checkpoints_gb[next]) ++next;
        continue;
      }
      if (Clock::now() >= deadline) {
        stop_reason = "--max-minutes reached";
      } else if (FreeGb(f_.dir) < f_.min_free_gb) {
        stop_reason = "free disk space under --min-free-gb";
      }
      if (!stop_reason.empty()) {
        Measure(loaded_bytes, load_time, start);
        std::printf("stopped before %.0f GB: %s (free %.1f GB)\n", f_.checkpoints_gb[next],
                    stop_reason.c_str(), FreeGb(f_.dir));
        break;
      }
    }
    std::printf("done: %llu keys, revision %lld, %.1f min\n",
                static_cast<unsigned long long>(keys_), static_cast<long long>(store_->Revision()),
                std::chrono::duration<double>(Clock::now() - start).count() / 60);
    std::fflush(stdout);
    store_.reset();
    if (!f_.keep) fs::remove_all(f_.dir);
    return stop_reason.empty() ? 0 : 3;
  }

 private:
  void LoadBatch() {
    data_.resize(f_.batch);
    entries_.resize(f_.batch);
    std::string value(f_.value_bytes, '\0');
    for (uint64_t i = 0; i < f_.batch; ++i) {
      FillRandom(value_rng_, &value);
      data_[i] = PutPayload(Key(f_.seed, keys_ + i), value);
      entries_[i] = {++index_, data_[i]};
    }
    auto r = store_->Apply(entries_);
    KEEL_CHECK(r.ok());
    for (const ApplyResult& res : *r) KEEL_CHECK(res.status.ok());
    keys_ += f_.batch;
  }

  uint64_t UserBytes() const { return keys_ * (16 + f_.value_bytes); }

  // Waits until RocksDB has no flush or compaction pending or running (or the time
  // limit passes); returns the seconds waited.
  double Settle() {
    const auto t0 = Clock::now();
    const auto limit = std::chrono::duration<double>(f_.settle_max_minutes * 60);
    while (Clock::now() - t0 < limit) {
      const auto pending = store_->RocksIntProperty("rocksdb.compaction-pending");
      const auto compactions = store_->RocksIntProperty("rocksdb.num-running-compactions");
      const auto flushes = store_->RocksIntProperty("rocksdb.num-running-flushes");
      const auto memtable_flush = store_->RocksIntProperty("rocksdb.mem-table-flush-pending");
      KEEL_CHECK(pending && compactions && flushes && memtable_flush);
      if (*pending == 0 && *compactions == 0 && *flushes == 0 && *memtable_flush == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  void Measure(uint64_t loaded_bytes, Clock::duration load_time, Clock::time_point start) {
    const double settle_s = f_.settle ? Settle() : 0.0;
    const double user_gb = static_cast<double>(UserBytes()) / 1e9;
    const double disk_gb = static_cast<double>(DirBytes(f_.dir)) / 1e9;
    std::vector<double> gets;
    gets.reserve(f_.gets);
    etcdserverpb::RangeRequest req;
    for (uint64_t i = 0; i < f_.gets; ++i) {
      req.set_key(Key(f_.seed, pick_rng_() % keys_));
      const auto t0 = Clock::now();
      auto r = store_->Range(req);
      gets.push_back(Micros(Clock::now() - t0));
      KEEL_CHECK(r.ok() && r->kvs_size() == 1 && r->kvs(0).value().size() == f_.value_bytes);
    }
    std::vector<double> puts;
    std::vector<double> syncs;
    puts.reserve(f_.puts);
    std::string value(f_.value_bytes, '\0');
    for (uint64_t i = 0; i < f_.puts; ++i) {
      FillRandom(value_rng_, &value);
      const std::string data = PutPayload(Key(f_.seed, keys_), value);
      const ApplyEntry e{++index_, data};
      const auto t0 = Clock::now();
      auto r = store_->Apply({&e, 1});
      puts.push_back(Micros(Clock::now() - t0));
      KEEL_CHECK(r.ok() && r->size() == 1 && (*r)[0].status.ok());
      ++keys_;
      if ((i + 1) % 100 == 0) {
        const auto t1 = Clock::now();
        KEEL_CHECK(store_->Sync().ok());
        syncs.push_back(Micros(Clock::now() - t1));
      }
    }
    const double load_s = std::chrono::duration<double>(load_time).count();
    double load_avg[1] = {0};
    if (::getloadavg(load_avg, 1) != 1) load_avg[0] = -1;
    std::printf(
        "| %.2f | %.2f | %llu | %.1f | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | "
        "%.1f |\n",
        user_gb, disk_gb, static_cast<unsigned long long>(keys_),
        load_s > 0 ? static_cast<double>(loaded_bytes) / 1e6 / load_s : 0.0, settle_s,
        Percentile(&gets, 0.5), Percentile(&gets, 0.99), Percentile(&puts, 0.5),
        Percentile(&puts, 0.99), syncs.empty() ? 0.0 : Percentile(&syncs, 0.5),
        syncs.empty() ? 0.0 : Percentile(&syncs, 0.99),
        std::chrono::duration<double>(Clock::now() - start).count() / 60, load_avg[0]);
    std::fflush(stdout);
  }

  const Flags f_;
  std::unique_ptr<KvStore> store_;
  std::mt19937_64 value_rng_;  // Value bytes.
  std::mt19937_64 pick_rng_;   // Which existing key to read.
  uint64_t keys_ = 0;          // Keys 0..keys_-1 exist.
  uint64_t index_ = 0;         // Last applied log index.
  std::vector<std::string> data_;
  std::vector<ApplyEntry> entries_;
};

}  // namespace
}  // namespace keel::storage

int main(int argc, char** argv) {
  keel::storage::Flags f = keel::storage::ParseFlags(argc, argv);
  return keel::storage::Scale(std::move(f)).Run();
}
