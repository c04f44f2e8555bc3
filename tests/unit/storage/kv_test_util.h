// Helpers for the state machine tests: temp directories and request builders.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/check.h"
#include "gtest/gtest.h"
#include "proto/internal.pb.h"
#include "storage/kv_store.h"

namespace keel::storage::testing {

// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/keel_kv_XXXXXX";
    KEEL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline internalpb::Request PutReq(const std::string& key, const std::string& value,
                                  int64_t lease = 0, bool prev_kv = false) {
  internalpb::Request r;
  auto* p = r.mutable_put();
  p->set_key(key);
  p->set_value(value);
  p->set_lease(lease);
  p->set_prev_kv(prev_kv);
  return r;
}

inline internalpb::Request DelReq(const std::string& key, const std::string& end = "",
                                  bool prev_kv = false) {
  internalpb::Request r;
  auto* d = r.mutable_delete_range();
  d->set_key(key);
  d->set_range_end(end);
  d->set_prev_kv(prev_kv);
  return r;
}

inline internalpb::Request CompactReq(int64_t rev) {
  internalpb::Request r;
  r.mutable_compaction()->set_revision(rev);
  return r;
}

inline internalpb::Request GrantReq(int64_t id, int64_t ttl_s) {
  internalpb::Request r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl_s);
  return r;
}

inline internalpb::Request RevokeReq(int64_t id) {
  internalpb::Request r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}

inline etcdserverpb::RangeRequest RangeReq(const std::string& key, const std::string& end = "",
                                           int64_t rev = 0) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  r.set_revision(rev);
  return r;
}

// A store plus the next log index to apply at.
class KvHarness {
 public:
  explicit KvHarness(const std::string& dir, KvStoreOptions options = {}) : dir_(dir) {
    options.dir = dir;
    options_ = options;
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = KvStore::Open(options_);
    KEEL_CHECK_MSG(s.ok(), std::string(s.status().message()).c_str());
    store_ = std::move(s).value();
    next_index_ = store_->AppliedIndex() + 1;
  }
  ApplyResult Apply(const internalpb::Request& req) {
    const std::string data = req.SerializeAsString();
    ApplyEntry e{next_index_++, data};
    auto results = store_->Apply({&e, 1});
    KEEL_CHECK_MSG(results.ok(), std::string(results.status().message()).c_str());
    KEEL_CHECK(results->size() == 1);
    return std::move((*results)[0]);
  }
  KvStore& store() { return *store_; }
  uint64_t next_index() const { return next_index_; }
  void set_next_index(uint64_t i) { next_index_ = i; }

 private:
  std::string dir_;
  KvStoreOptions options_;
  std::unique_ptr<KvStore> store_;
  uint64_t next_index_ = 1;
};

}  // namespace keel::storage::testing
