// The deterministic workload of the KvStore crash test: entry i's request depends only
// on (seed, i), so the child that applies it and the parent that checks it agree.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "proto/internal.pb.h"

namespace keel::storage::testing {

inline internalpb::Request CrashWorkloadEntry(uint64_t seed, uint64_t index) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull ^ index);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto key = [&] { return "key" + std::to_string(pick(0, 40)); };
  internalpb::Request r;
  const int64_t kind = pick(0, 99);
  if (kind < 55) {
    auto* p = r.mutable_put();
    p->set_key(key());
    p->set_value(
        std::string(static_cast<size_t>(pick(0, 200)), static_cast<char>('a' + index % 26)));
    if (pick(0, 9) == 0) p->set_lease(pick(1, 3));
  } else if (kind < 70) {
    auto* d = r.mutable_delete_range();
    d->set_key(key());
    if (pick(0, 3) == 0) d->set_range_end(key());
  } else if (kind < 90) {
    auto* t = r.mutable_txn();
    auto* c = t->add_compare();
    c->set_key(key());
    c->set_target(etcdserverpb::Compare::VERSION);
    c->set_result(etcdserverpb::Compare::GREATER);
    c->set_version(pick(0, 3));
    for (int i = 0; i < 3; ++i) {
      auto* p = t->add_success()->mutable_request_put();
      p->set_key("txn" + std::to_string(i) + "/" + std::to_string(pick(0, 5)));
      p->set_value(std::to_string(index));
    }
    t->add_failure()->mutable_request_delete_range()->set_key("txn0/");
    t->mutable_failure(0)->mutable_request_delete_range()->set_range_end("txn1/");
  } else if (kind < 95) {
    r.mutable_lease_grant()->set_id(pick(1, 3));
    r.mutable_lease_grant()->set_ttl(30);
  } else if (kind < 98) {
    r.mutable_lease_revoke()->set_id(pick(1, 3));
  } else {
    r.mutable_compaction()->set_revision(static_cast<int64_t>(index / 2) + 1);
  }
  if (pick(0, 4) == 0) {  // Some writes carry a client id (dedup table churn).
    r.set_client_id(static_cast<uint64_t>(pick(1, 5)));
    r.set_sequence(index);
  }
  return r;
}

}  // namespace keel::storage::testing
