// Reading the MVCC keyspace: key intervals, the raw range scan at a revision, etcd's
// Range semantics on top of it (revision checks, min/max filters, sort, limit,
// keys_only, more, count) and txn compares.
//
// Thread-safety: functions; they use the given view from the calling thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "storage/mvcc_view.h"

namespace keel::storage::mvcc {

// A key interval as etcd's requests spell it: range_end empty is the single key `key`;
// range_end "\0" is every key >= key; otherwise [key, range_end), empty when
// range_end <= key.
struct KeyInterval {
  std::string begin;
  std::string end;  // Exclusive; used when !single && !to_end.
  bool single = false;
  bool to_end = false;

  [[nodiscard]] static KeyInterval From(const std::string& key, const std::string& range_end);
  [[nodiscard]] bool Empty() const { return !single && !to_end && end <= begin; }
  [[nodiscard]] bool Contains(const std::string& key) const {
    if (single) return key == begin;
    return key >= begin && (to_end || key < end);
  }
};

struct RangeKeysResult {
  std::vector<mvccpb::KeyValue> kvs;  // In key order; at most `limit` when limit > 0.
  int64_t count = 0;                  // Every live key in the interval.
};

// The live keys of `iv` at revision `rev`. `current` says `rev` is the newest revision
// the view holds, so the "kv" family answers directly; otherwise the history is read.
[[nodiscard]] absl::StatusOr<RangeKeysResult> RangeKeys(MvccView& view, const KeyInterval& iv,
                                                        int64_t rev, bool current, int64_t limit,
                                                        bool count_only);

// etcd's Range: `view_rev` is the newest revision in the view, `compact_rev` the
// compaction point. Errors: ErrFutureRev, ErrCompacted (and validation errors).
// Deviation: ties in a non-key sort keep key order (etcd's sort is not stable).
[[nodiscard]] absl::StatusOr<etcdserverpb::RangeResponse> ExecuteRange(
    MvccView& view, const etcdserverpb::RangeRequest& r, int64_t view_rev, int64_t compact_rev);

// etcd's applyCompare against the newest state of the view.
[[nodiscard]] absl::StatusOr<bool> EvaluateCompare(MvccView& view, const etcdserverpb::Compare& c,
                                                   int64_t view_rev);

// The current key-value of `key` ("kv" family); false when absent.
[[nodiscard]] absl::StatusOr<bool> GetCurrent(MvccView& view, const std::string& key,
                                              mvccpb::KeyValue* kv);

// Decodes history records into key-values, reading the value of a 'C' marker (the
// key's current version, mvcc_encoding.h) from the "kv" family of the SAME view, so
// both come from one snapshot (or one apply batch). Keeps one "kv" iterator: history
// readers visit keys in increasing order, so the next marker's key is usually a step
// or two ahead (Next) rather than a fresh Seek.
class HistoryDecoder {
 public:
  explicit HistoryDecoder(MvccView& view) : view_(view) {}

  // Decodes the record of `user_key` at revision `rev`; *live is false for a tombstone
  // (kv untouched). kDataLoss if a marker does not match the key's current version.
  // kv->key is left as is.
  [[nodiscard]] absl::Status Decode(std::string_view user_key, int64_t rev, std::string_view record,
                                    mvccpb::KeyValue* kv, bool* live);

 private:
  [[nodiscard]] absl::Status ResolveCurrent(std::string_view user_key, int64_t rev,
                                            mvccpb::KeyValue* kv);

  MvccView& view_;
  std::unique_ptr<rocksdb::Iterator> kv_it_;
};

}  // namespace keel::storage::mvcc
