// Child process of the KvStore crash test: applies the deterministic workload in
// batches, forever, and after every Apply writes the store's applied index (8 bytes,
// native order) to stdout. The parent SIGKILLs it at random moments.
// Usage: kv_crash_child <store dir> <seed>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "storage/kv_store.h"
#include "tests/unit/storage/kv_crash_workload.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <dir> <seed>\n", argv[0]);
    return 2;
  }
  const uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  keel::storage::KvStoreOptions options;
  options.dir = argv[1];
  options.session_expiry_entries = 200;  // Expire sessions within the test's horizon.
  auto store = keel::storage::KvStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  std::mt19937_64 rng(seed ^ static_cast<uint64_t>(getpid()));
  // Start a little below the applied index: re-applied entries must be no-ops.
  uint64_t next = (*store)->AppliedIndex() + 1;
  next = next > 3 ? next - 3 : 1;
  for (;;) {
    const auto n = static_cast<uint64_t>(std::uniform_int_distribution<int>(1, 24)(rng));
    std::vector<std::string> data;
    std::vector<keel::storage::ApplyEntry> entries;
    for (uint64_t i = 0; i < n; ++i) {
      data.push_back(
          keel::storage::testing::CrashWorkloadEntry(seed, next + i).SerializeAsString());
    }
    for (uint64_t i = 0; i < n; ++i) entries.push_back({next + i, data[i]});
    auto r = (*store)->Apply(entries);
    if (!r.ok()) {
      std::fprintf(stderr, "apply: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    next += n;
    const uint64_t applied = (*store)->AppliedIndex();
    if (write(1, &applied, sizeof(applied)) != sizeof(applied)) return 1;
  }
}
