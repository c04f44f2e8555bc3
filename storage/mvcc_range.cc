#include "storage/mvcc_range.h"

#include <algorithm>

#include "common/status_macros.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_errors.h"
#include "storage/mvcc_validate.h"

namespace keel::storage::mvcc {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;

std::string ToString(const rocksdb::Slice& s) { return std::string(s.data(), s.size()); }

bool Wanted(const RangeKeysResult& out, int64_t limit, bool count_only) {
  return !count_only && (limit <= 0 || static_cast<int64_t>(out.kvs.size()) < limit);
}

absl::Status ScanCurrent(MvccView& view, const KeyInterval& iv, int64_t limit, bool count_only,
                         RangeKeysResult* out) {
  auto it = view.NewIterator(Cf::kKv, iv.to_end ? std::string() : iv.end);
  for (it->Seek(iv.begin); it->Valid(); it->Next()) {
    std::string key = ToString(it->key());
    if (!iv.Contains(key)) break;
    ++out->count;
    if (!Wanted(*out, limit, count_only)) continue;
    mvccpb::KeyValue kv;
    RecordType type = RecordType::kPut;
    RETURN_IF_ERROR(DecodeRecord(ToString(it->value()), &kv, &type));
    if (type != RecordType::kPut) return absl::DataLossError("mvcc: a non-put record in kv");
    kv.set_key(std::move(key));
    out->kvs.push_back(std::move(kv));
  }
  return FromRocks(it->status(), "scan kv");
}

absl::Status ScanHistory(MvccView& view, const KeyInterval& iv, int64_t rev, int64_t limit,
                         bool count_only, RangeKeysResult* out) {
  std::string upper;
  if (iv.single) {
    upper = HistoryKeyAfterAllVersions(iv.begin);
  } else if (!iv.to_end) {
    AppendEscaped(&upper, iv.end);
  }
  auto it = view.NewIterator(Cf::kHistory, upper);
  std::string begin;
  AppendEscaped(&begin, iv.begin);
  it->Seek(iv.single ? HistoryKey(iv.begin, rev) : begin);
  std::string user_key;
  int64_t version_rev = 0;
  HistoryDecoder decoder(view);
  while (it->Valid()) {
    RETURN_IF_ERROR(ParseHistoryKey(ToString(it->key()), &user_key, &version_rev));
    if (!iv.Contains(user_key)) break;
    if (version_rev > rev) {
      // Invariant: we stand on user_key's newest version; jump to its newest <= rev.
      it->Seek(HistoryKey(user_key, rev));
      continue;
    }
    const std::string_view record(it->value().data(), it->value().size());
    if (!IsTombstone(record)) {
      ++out->count;
      if (Wanted(*out, limit, count_only)) {
        // Only a wanted key pays for its value (a marker's is a read of "kv").
        mvccpb::KeyValue kv;
        bool live = false;
        RETURN_IF_ERROR(decoder.Decode(user_key, version_rev, record, &kv, &live));
        kv.set_key(user_key);
        out->kvs.push_back(std::move(kv));
      }
    }
    if (iv.single) break;
    it->Seek(HistoryKeyAfterAllVersions(user_key));
  }
  return FromRocks(it->status(), "scan history");
}

int CompareInt(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

bool CompareKv(const Compare& c, const mvccpb::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string& v = c.value();  // "" when the union holds something else.
      result = kv.value().compare(v);
      result = result < 0 ? -1 : (result > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result = CompareInt(kv.create_revision(), c.create_revision());
      break;
    case Compare::MOD:
      result = CompareInt(kv.mod_revision(), c.mod_revision());
      break;
    case Compare::VERSION:
      result = CompareInt(kv.version(), c.version());
      break;
    case Compare::LEASE:
      result = CompareInt(kv.lease(), c.lease());
      break;
    default:
      return false;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return false;
  }
}

void SortKvs(std::vector<mvccpb::KeyValue>* kvs, RangeRequest::SortTarget target, bool descend) {
  auto key_of = [target](const mvccpb::KeyValue& kv) -> int64_t {
    switch (target) {
      case RangeRequest::VERSION:
        return kv.version();
      case RangeRequest::CREATE:
        return kv.create_revision();
      case RangeRequest::MOD:
        return kv.mod_revision();
      default:
        return 0;
    }
  };
  auto less = [&](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) {
    if (target == RangeRequest::KEY) return a.key() < b.key();
    if (target == RangeRequest::VALUE) return a.value() < b.value();
    return key_of(a) < key_of(b);
  };
  if (descend) {
    std::stable_sort(
        kvs->begin(), kvs->end(),
        [&](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) { return less(b, a); });
  } else {
    std::stable_sort(kvs->begin(), kvs->end(), less);
  }
}

}  // namespace

KeyInterval KeyInterval::From(const std::string& key, const std::string& range_end) {
  KeyInterval iv;
  iv.begin = key;
  if (range_end.empty()) {
    iv.single = true;
  } else if (range_end.size() == 1 && range_end[0] == '\0') {
    iv.to_end = true;
  } else {
    iv.end = range_end;
  }
  return iv;
}

absl::StatusOr<bool> GetCurrent(MvccView& view, const std::string& key, mvccpb::KeyValue* kv) {
  std::string record;
  ASSIGN_OR_RETURN(bool found, view.Get(Cf::kKv, key, &record));
  if (!found) return false;
  RecordType type = RecordType::kPut;
  RETURN_IF_ERROR(DecodeRecord(record, kv, &type));
  if (type != RecordType::kPut) return absl::DataLossError("mvcc: a non-put record in kv");
  kv->set_key(key);
  return true;
}

absl::Status HistoryDecoder::Decode(std::string_view user_key, int64_t rev, std::string_view record,
                                    mvccpb::KeyValue* kv, bool* live) {
  RecordType type = RecordType::kPut;
  RETURN_IF_ERROR(DecodeRecord(record, kv, &type));
  *live = type != RecordType::kTombstone;
  if (type != RecordType::kCurrent) return absl::OkStatus();
  if (kv->mod_revision() != rev) {
    return absl::DataLossError("mvcc: a history marker whose revision is not its key's");
  }
  return ResolveCurrent(user_key, rev, kv);
}

absl::Status HistoryDecoder::ResolveCurrent(std::string_view user_key, int64_t rev,
                                            mvccpb::KeyValue* kv) {
  constexpr int kMaxSteps = 4;  // Beyond this a Seek is cheaper than stepping.
  const rocksdb::Slice target(user_key.data(), user_key.size());
  if (kv_it_ == nullptr) {
    kv_it_ = view_.NewIterator(Cf::kKv, "");
    kv_it_->Seek(target);
  } else {
    int steps = 0;
    while (kv_it_->Valid() && kv_it_->key().compare(target) < 0 && steps < kMaxSteps) {
      kv_it_->Next();
      ++steps;
    }
    if (!kv_it_->Valid() || kv_it_->key().compare(target) != 0) kv_it_->Seek(target);
  }
  RETURN_IF_ERROR(FromRocks(kv_it_->status(), "read kv"));
  if (!kv_it_->Valid() || kv_it_->key().compare(target) != 0) {
    return absl::DataLossError("mvcc: history marks a version as current but the key is not in kv");
  }
  mvccpb::KeyValue current;
  RecordType type = RecordType::kPut;
  RETURN_IF_ERROR(DecodeRecord(std::string_view(kv_it_->value().data(), kv_it_->value().size()),
                               &current, &type));
  if (type != RecordType::kPut || current.mod_revision() != rev) {
    return absl::DataLossError(
        "mvcc: history marks a version as current but kv holds another version");
  }
  kv->set_value(std::move(*current.mutable_value()));
  return absl::OkStatus();
}

absl::StatusOr<RangeKeysResult> RangeKeys(MvccView& view, const KeyInterval& iv, int64_t rev,
                                          bool current, int64_t limit, bool count_only) {
  RangeKeysResult out;
  if (iv.Empty()) return out;
  if (current && iv.single) {
    mvccpb::KeyValue kv;
    ASSIGN_OR_RETURN(bool found, GetCurrent(view, iv.begin, &kv));
    if (found) {
      out.count = 1;
      if (!count_only) out.kvs.push_back(std::move(kv));
    }
    return out;
  }
  if (current) {
    RETURN_IF_ERROR(ScanCurrent(view, iv, limit, count_only, &out));
  } else {
    RETURN_IF_ERROR(ScanHistory(view, iv, rev, limit, count_only, &out));
  }
  return out;
}

absl::StatusOr<etcdserverpb::RangeResponse> ExecuteRange(MvccView& view, const RangeRequest& r,
                                                         int64_t view_rev, int64_t compact_rev) {
  RETURN_IF_ERROR(ValidateRange(r));
  int64_t rev = r.revision();
  if (rev > view_rev) return ErrFutureRev();
  if (rev <= 0) rev = view_rev;
  if (rev < compact_rev) return ErrCompacted();

  // As etcd: with a sort or a filter, fetch everything, then sort and truncate;
  // otherwise fetch one more than the limit to learn `more`.
  int64_t limit = r.limit();
  if (r.sort_order() != RangeRequest::NONE || r.min_mod_revision() != 0 ||
      r.max_mod_revision() != 0 || r.min_create_revision() != 0 || r.max_create_revision() != 0) {
    limit = 0;
  }
  if (limit > 0) ++limit;
  ASSIGN_OR_RETURN(RangeKeysResult rr, RangeKeys(view, KeyInterval::From(r.key(), r.range_end()),
                                                 rev, rev == view_rev, limit, r.count_only()));
  auto prune = [&rr](auto drop) {
    rr.kvs.erase(std::remove_if(rr.kvs.begin(), rr.kvs.end(), drop), rr.kvs.end());
  };
  if (r.max_mod_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) { return kv.mod_revision() > r.max_mod_revision(); });
  }
  if (r.min_mod_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) { return kv.mod_revision() < r.min_mod_revision(); });
  }
  if (r.min_create_revision() != 0) {
    prune(
        [&](const mvccpb::KeyValue& kv) { return kv.create_revision() < r.min_create_revision(); });
  }
  if (r.max_create_revision() != 0) {
    prune(
        [&](const mvccpb::KeyValue& kv) { return kv.create_revision() > r.max_create_revision(); });
  }
  RangeRequest::SortOrder order = r.sort_order();
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;  // etcd: a non-key target sorts ascending by default.
  } else if (r.sort_target() == RangeRequest::KEY && order == RangeRequest::ASCEND) {
    order = RangeRequest::NONE;  // Already in key order.
  }
  if (order != RangeRequest::NONE) {
    SortKvs(&rr.kvs, r.sort_target(), order == RangeRequest::DESCEND);
  }
  etcdserverpb::RangeResponse resp;
  if (r.limit() > 0 && static_cast<int64_t>(rr.kvs.size()) > r.limit()) {
    rr.kvs.resize(r.limit());
    resp.set_more(true);
  }
  resp.mutable_header()->set_revision(view_rev);
  resp.set_count(rr.count);
  for (auto& kv : rr.kvs) {
    if (r.keys_only()) kv.clear_value();
    *resp.add_kvs() = std::move(kv);
  }
  return resp;
}

absl::StatusOr<bool> EvaluateCompare(MvccView& view, const Compare& c, int64_t view_rev) {
  ASSIGN_OR_RETURN(RangeKeysResult rr, RangeKeys(view, KeyInterval::From(c.key(), c.range_end()),
                                                 view_rev, /*current=*/true, 0, false));
  if (rr.kvs.empty()) {
    // etcd: comparing the value of a missing key always fails; every other target
    // compares against a zero key-value.
    if (c.target() == Compare::VALUE) return false;
    return CompareKv(c, mvccpb::KeyValue());
  }
  for (const auto& kv : rr.kvs) {
    if (!CompareKv(c, kv)) return false;
  }
  return true;
}

}  // namespace keel::storage::mvcc
