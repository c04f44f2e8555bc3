// KvModel: a deliberately simple in-memory reference of etcd's MVCC semantics (every
// version of every key in a std::map, no encoding, no RocksDB), used by the model-based
// test and the crash test to check KvStore's answers and contents.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/internal.pb.h"
#include "storage/mvcc_errors.h"
#include "storage/mvcc_validate.h"

namespace keel::storage::testing {

class KvModel {
 public:
  struct Result {
    absl::Status status;
    internalpb::Response response;
    std::vector<mvccpb::Event> events;
  };

  int64_t revision() const { return rev_; }

  Result Apply(const internalpb::Request& req) {
    Result res;
    Saved saved = Save();
    begin_ = rev_;
    changed_ = false;
    events_.clear();
    absl::Status st = Dispatch(req, &res.response);
    if (!st.ok()) {
      Restore(saved);
      res.status = st;
      res.response.Clear();
      return res;
    }
    if (changed_) rev_ = begin_ + 1;
    res.events = events_;
    return res;
  }

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& r) const {
    return DoRange(r, rev_);
  }

  // Every live key at the newest revision.
  std::map<std::string, mvccpb::KeyValue> Live() const {
    std::map<std::string, mvccpb::KeyValue> out;
    for (const auto& [k, vs] : hist_) {
      const Version* v = At(vs, rev_);
      if (v != nullptr && v->live) out[k] = v->kv;
    }
    return out;
  }

 private:
  struct Version {
    int64_t rev;
    bool live;
    mvccpb::KeyValue kv;
  };
  // What a failed request must undo: its appended versions (an undo log, so that a
  // request costs O(its writes), not O(history)) and the small scalar state.
  struct Saved {
    std::map<int64_t, int64_t> leases;
    int64_t rev, compact, max_lease;
  };
  Saved Save() {
    written_.clear();
    return {leases_, rev_, compact_, max_lease_};
  }
  void Restore(const Saved& s) {
    for (auto it = written_.rbegin(); it != written_.rend(); ++it) hist_[*it].pop_back();
    written_.clear();
    leases_ = s.leases;
    rev_ = s.rev;
    compact_ = s.compact;
    max_lease_ = s.max_lease;
  }

  static const Version* At(const std::vector<Version>& vs, int64_t rev) {
    const Version* out = nullptr;
    for (const auto& v : vs) {
      if (v.rev <= rev) out = &v;
    }
    return out;
  }
  int64_t Cur() const { return changed_ ? begin_ + 1 : begin_; }

  static bool InRange(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string(1, '\0')) return k >= key;
    return k >= key && k < end;
  }

  std::vector<mvccpb::KeyValue> KeysAt(const std::string& key, const std::string& end,
                                       int64_t rev) const {
    std::vector<mvccpb::KeyValue> out;
    for (const auto& [k, vs] : hist_) {
      if (!InRange(k, key, end)) continue;
      const Version* v = At(vs, rev);
      if (v != nullptr && v->live) out.push_back(v->kv);
    }
    return out;
  }

  absl::StatusOr<etcdserverpb::RangeResponse> DoRange(const etcdserverpb::RangeRequest& r,
                                                      int64_t cur) const {
    if (auto s = mvcc::ValidateRange(r); !s.ok()) return s;
    int64_t rev = r.revision();
    if (rev > cur) return mvcc::ErrFutureRev();
    if (rev <= 0) rev = cur;
    if (rev < compact_) return mvcc::ErrCompacted();
    auto kvs = KeysAt(r.key(), r.range_end(), rev);
    const int64_t count = static_cast<int64_t>(kvs.size());
    if (r.count_only()) kvs.clear();
    const bool fetch_all = r.sort_order() != 0 || r.min_mod_revision() != 0 ||
                           r.max_mod_revision() != 0 || r.min_create_revision() != 0 ||
                           r.max_create_revision() != 0;
    if (!fetch_all && r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit() + 1) {
      kvs.resize(r.limit() + 1);
    }
    std::vector<mvccpb::KeyValue> kept;
    for (auto& kv : kvs) {
      if (r.max_mod_revision() != 0 && kv.mod_revision() > r.max_mod_revision()) continue;
      if (r.min_mod_revision() != 0 && kv.mod_revision() < r.min_mod_revision()) continue;
      if (r.min_create_revision() != 0 && kv.create_revision() < r.min_create_revision()) continue;
      if (r.max_create_revision() != 0 && kv.create_revision() > r.max_create_revision()) continue;
      kept.push_back(kv);
    }
    int order = r.sort_order();
    if (r.sort_target() != 0 && order == 0) order = 1;
    if (order != 0) {
      auto field = [&](const mvccpb::KeyValue& kv) -> std::string {
        auto num = [](int64_t n) {  // Order-preserving for non-negative numbers.
          char buf[32];
          snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(n));
          return std::string(buf);
        };
        switch (r.sort_target()) {
          case 0:
            return kv.key();
          case 1:
            return num(kv.version());
          case 2:
            return num(kv.create_revision());
          case 3:
            return num(kv.mod_revision());
          default:
            return kv.value();
        }
      };
      std::stable_sort(kept.begin(), kept.end(), [&](const auto& a, const auto& b) {
        return order == 2 ? field(b) < field(a) : field(a) < field(b);
      });
    }
    etcdserverpb::RangeResponse resp;
    if (r.limit() > 0 && static_cast<int64_t>(kept.size()) > r.limit()) {
      kept.resize(r.limit());
      resp.set_more(true);
    }
    resp.mutable_header()->set_revision(cur);
    resp.set_count(count);
    for (auto& kv : kept) {
      if (r.keys_only()) kv.clear_value();
      *resp.add_kvs() = kv;
    }
    return resp;
  }

  const mvccpb::KeyValue* Current(const std::string& k) const {
    auto it = hist_.find(k);
    if (it == hist_.end() || it->second.empty() || !it->second.back().live) return nullptr;
    return &it->second.back().kv;
  }

  void WritePut(const std::string& k, const std::string& value, int64_t lease) {
    const mvccpb::KeyValue* prev = Current(k);
    changed_ = true;
    mvccpb::KeyValue kv;
    kv.set_key(k);
    kv.set_value(value);
    kv.set_lease(lease);
    kv.set_mod_revision(Cur());
    kv.set_create_revision(prev ? prev->create_revision() : Cur());
    kv.set_version(prev ? prev->version() + 1 : 1);
    mvccpb::Event ev;
    ev.set_type(mvccpb::Event::PUT);
    *ev.mutable_kv() = kv;
    if (prev) *ev.mutable_prev_kv() = *prev;
    events_.push_back(ev);
    hist_[k].push_back({Cur(), true, kv});
    written_.push_back(k);
  }

  void WriteDelete(const std::string& k) {
    const mvccpb::KeyValue prev = *Current(k);
    changed_ = true;
    mvccpb::Event ev;
    ev.set_type(mvccpb::Event::DELETE);
    ev.mutable_kv()->set_key(k);
    ev.mutable_kv()->set_mod_revision(Cur());
    *ev.mutable_prev_kv() = prev;
    events_.push_back(ev);
    hist_[k].push_back({Cur(), false, {}});
    written_.push_back(k);
  }

  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& p) {
    if (p.lease() != 0 && leases_.count(p.lease()) == 0) return mvcc::ErrLeaseNotFound();
    const mvccpb::KeyValue* prev = Current(p.key());
    if ((p.ignore_value() || p.ignore_lease()) && prev == nullptr) return mvcc::ErrKeyNotFound();
    etcdserverpb::PutResponse resp;
    if (p.prev_kv() && prev) *resp.mutable_prev_kv() = *prev;
    WritePut(p.key(), p.ignore_value() ? prev->value() : p.value(),
             p.ignore_lease() ? prev->lease() : p.lease());
    resp.mutable_header()->set_revision(Cur());
    return resp;
  }

  etcdserverpb::DeleteRangeResponse Delete(const etcdserverpb::DeleteRangeRequest& d) {
    etcdserverpb::DeleteRangeResponse resp;
    auto kvs = KeysAt(d.key(), d.range_end(), Cur());
    for (const auto& kv : kvs) {
      WriteDelete(kv.key());
      if (d.prev_kv()) *resp.add_prev_kvs() = kv;
    }
    resp.set_deleted(static_cast<int64_t>(kvs.size()));
    resp.mutable_header()->set_revision(Cur());
    return resp;
  }

  bool Holds(const etcdserverpb::Compare& c) const {
    auto kvs = KeysAt(c.key(), c.range_end(), begin_);
    if (kvs.empty()) {
      if (c.target() == etcdserverpb::Compare::VALUE) return false;
      kvs.emplace_back();
    }
    for (const auto& kv : kvs) {
      int cmp = 0;
      auto c3 = [](auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); };
      switch (c.target()) {
        case etcdserverpb::Compare::VALUE:
          cmp = c3(kv.value(), c.value());
          break;
        case etcdserverpb::Compare::VERSION:
          cmp = c3(kv.version(), c.version());
          break;
        case etcdserverpb::Compare::CREATE:
          cmp = c3(kv.create_revision(), c.create_revision());
          break;
        case etcdserverpb::Compare::MOD:
          cmp = c3(kv.mod_revision(), c.mod_revision());
          break;
        default:
          cmp = c3(kv.lease(), c.lease());
      }
      bool ok = false;
      switch (c.result()) {
        case etcdserverpb::Compare::EQUAL:
          ok = cmp == 0;
          break;
        case etcdserverpb::Compare::NOT_EQUAL:
          ok = cmp != 0;
          break;
        case etcdserverpb::Compare::GREATER:
          ok = cmp > 0;
          break;
        default:
          ok = cmp < 0;
      }
      if (!ok) return false;
    }
    return true;
  }

  // Decides every branch first (compares see the state before the txn), checks the
  // chosen ops, then executes.
  absl::Status Check(const etcdserverpb::TxnRequest& t, bool ranges) const {
    bool ok = true;
    for (const auto& c : t.compare()) ok = ok && Holds(c);
    for (const auto& op : ok ? t.success() : t.failure()) {
      if (op.has_request_txn()) {
        if (auto s = Check(op.request_txn(), ranges); !s.ok()) return s;
      } else if (!ranges && op.has_request_put()) {
        const auto& p = op.request_put();
        if ((p.ignore_value() || p.ignore_lease()) && Current(p.key()) == nullptr) {
          return mvcc::ErrKeyNotFound();
        }
        if (p.lease() != 0 && leases_.count(p.lease()) == 0) return mvcc::ErrLeaseNotFound();
      } else if (ranges && op.has_request_range() && op.request_range().revision() > 0) {
        if (op.request_range().revision() > begin_) return mvcc::ErrFutureRev();
        if (op.request_range().revision() < compact_) return mvcc::ErrCompacted();
      }
    }
    return absl::OkStatus();
  }

  void Decide(const etcdserverpb::TxnRequest& t, std::vector<bool>* path) const {
    bool ok = true;
    for (const auto& c : t.compare()) ok = ok && Holds(c);
    path->push_back(ok);
    for (const auto& op : ok ? t.success() : t.failure()) {
      if (op.has_request_txn()) Decide(op.request_txn(), path);
    }
  }

  absl::Status Exec(const etcdserverpb::TxnRequest& t, const std::vector<bool>& path, size_t* pos,
                    etcdserverpb::TxnResponse* resp) {
    const bool ok = path[(*pos)++];
    resp->set_succeeded(ok);
    resp->mutable_header();
    for (const auto& op : ok ? t.success() : t.failure()) {
      auto* out = resp->add_responses();
      if (op.has_request_range()) {
        auto r = DoRange(op.request_range(), Cur());
        if (!r.ok()) return r.status();
        *out->mutable_response_range() = *r;
      } else if (op.has_request_put()) {
        auto r = Put(op.request_put());
        if (!r.ok()) return r.status();
        *out->mutable_response_put() = *r;
      } else if (op.has_request_delete_range()) {
        *out->mutable_response_delete_range() = Delete(op.request_delete_range());
      } else if (op.has_request_txn()) {
        if (auto s = Exec(op.request_txn(), path, pos, out->mutable_response_txn()); !s.ok()) {
          return s;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status Dispatch(const internalpb::Request& req, internalpb::Response* resp) {
    switch (req.request_case()) {
      case internalpb::Request::kPut: {
        if (auto s = mvcc::ValidatePut(req.put()); !s.ok()) return s;
        auto r = Put(req.put());
        if (!r.ok()) return r.status();
        *resp->mutable_put() = *r;
        return absl::OkStatus();
      }
      case internalpb::Request::kDeleteRange:
        if (auto s = mvcc::ValidateDeleteRange(req.delete_range()); !s.ok()) return s;
        *resp->mutable_delete_range() = Delete(req.delete_range());
        return absl::OkStatus();
      case internalpb::Request::kTxn: {
        if (auto s = mvcc::ValidateTxn(req.txn(), 128); !s.ok()) return s;
        if (auto s = Check(req.txn(), false); !s.ok()) return s;
        if (auto s = Check(req.txn(), true); !s.ok()) return s;
        std::vector<bool> path;
        Decide(req.txn(), &path);
        size_t pos = 0;
        if (auto s = Exec(req.txn(), path, &pos, resp->mutable_txn()); !s.ok()) return s;
        resp->mutable_txn()->mutable_header()->set_revision(Cur());
        return absl::OkStatus();
      }
      case internalpb::Request::kCompaction: {
        const int64_t rev = req.compaction().revision();
        if (rev <= compact_) return mvcc::ErrCompacted();
        if (rev > rev_) return mvcc::ErrFutureRev();
        compact_ = rev;
        resp->mutable_compaction()->mutable_header()->set_revision(rev_);
        return absl::OkStatus();
      }
      case internalpb::Request::kLeaseGrant: {
        int64_t id = req.lease_grant().id();
        if (id == 0) {
          id = max_lease_ + 1;
          while (leases_.count(id) != 0 || id == 0) ++id;
        }
        if (leases_.count(id) != 0) return mvcc::ErrLeaseExists();
        const int64_t ttl = std::max<int64_t>(req.lease_grant().ttl(), 2);
        leases_[id] = ttl;
        max_lease_ = std::max(max_lease_, id);
        auto* g = resp->mutable_lease_grant();
        g->mutable_header()->set_revision(rev_);
        g->set_id(id);
        g->set_ttl(ttl);
        return absl::OkStatus();
      }
      case internalpb::Request::kLeaseRevoke: {
        const int64_t id = req.lease_revoke().id();
        if (leases_.count(id) == 0) return mvcc::ErrLeaseNotFound();
        for (const auto& [k, kv] : Live()) {
          if (kv.lease() == id) WriteDelete(k);
        }
        leases_.erase(id);
        resp->mutable_lease_revoke()->mutable_header()->set_revision(Cur());
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError("keel: empty state machine request");
    }
  }

  std::map<std::string, std::vector<Version>> hist_;
  std::map<int64_t, int64_t> leases_;  // id -> granted TTL.
  int64_t rev_ = 1;
  int64_t compact_ = 0;
  int64_t max_lease_ = 0;
  int64_t begin_ = 1;
  bool changed_ = false;
  std::vector<mvccpb::Event> events_;
  std::vector<std::string> written_;  // Keys given a version by the current request.
};

}  // namespace keel::storage::testing
