// Request options and result types of keel's key-value calls (etcd's data model).
// Results are etcd's own response messages (as in etcd's Go client), so every field
// the server returns (header revision, prev_kv, count, more, ...) is available.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "proto/mvccpb/kv.pb.h"

namespace keel {

using KeyValue = mvccpb::KeyValue;
using RangeResponse = etcdserverpb::RangeResponse;
using PutResponse = etcdserverpb::PutResponse;
using DeleteResponse = etcdserverpb::DeleteRangeResponse;
using TxnResponse = etcdserverpb::TxnResponse;
using CompactResponse = etcdserverpb::CompactionResponse;
using MemberListResponse = etcdserverpb::MemberListResponse;
using MemberAddResponse = etcdserverpb::MemberAddResponse;
using MemberRemoveResponse = etcdserverpb::MemberRemoveResponse;
using MemberUpdateResponse = etcdserverpb::MemberUpdateResponse;
using MemberPromoteResponse = etcdserverpb::MemberPromoteResponse;
using MoveLeaderResponse = etcdserverpb::MoveLeaderResponse;
using StatusResponse = etcdserverpb::StatusResponse;
using AlarmResponse = etcdserverpb::AlarmResponse;
using HashKVResponse = etcdserverpb::HashKVResponse;
using DefragmentResponse = etcdserverpb::DefragmentResponse;

// Completion of an asynchronous call: called exactly once, on a gRPC or client
// thread (or inline, before the *Async call returns, when the arguments are
// rejected before anything is sent), never while a client lock is held. It must not block (hand
// long work to your own thread) and must not call the client's synchronous methods.
template <typename T>
using Callback = std::function<void(absl::StatusOr<T>)>;

enum class Consistency {
  kLinearizable,  // Sees every write acknowledged before the call (one leader round).
  kSerializable,  // Served by any member from its local state: faster, may be stale.
};
enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreateRevision, kModRevision, kValue };

// Which keys a Get or Delete covers is set by range_end, prefix and from_key (at most
// one): the key alone (none set), [key, range_end), every key starting with `key`,
// or every key >= key.
struct RangeOptions {
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
  int64_t limit = 0;     // 0: no limit.
  int64_t revision = 0;  // 0: the newest revision; else read as of that revision.
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  Consistency consistency = Consistency::kLinearizable;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;  // 0: no bound (likewise below).
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
  absl::Duration timeout = absl::ZeroDuration();  // 0: ClientOptions::call_timeout.
};

struct PutOptions {
  int64_t lease = 0;          // Attach the key to this lease (0: none).
  bool prev_kv = false;       // Return the previous key-value in PutResponse::prev_kv.
  bool ignore_value = false;  // Keep the current value (the key must exist).
  bool ignore_lease = false;  // Keep the current lease (the key must exist).
  absl::Duration timeout = absl::ZeroDuration();
};

struct DeleteOptions {
  std::string range_end;  // As in RangeOptions.
  bool prefix = false;
  bool from_key = false;
  bool prev_kv = false;  // Return the deleted key-values.
  absl::Duration timeout = absl::ZeroDuration();
};

// The range_end that makes [prefix, range_end) cover every key starting with
// `prefix` (etcd's GetPrefixRangeEnd): the prefix with its last non-0xff byte
// incremented and the 0xff bytes after it dropped; "\0" (every key) if none.
[[nodiscard]] std::string PrefixEnd(std::string_view prefix);

// etcd requests from the options (kInvalidArgument for an empty key or conflicting
// range options). Used by the client and by the Txn builder; public for tools that
// print or inspect requests.
[[nodiscard]] absl::StatusOr<etcdserverpb::RangeRequest> MakeRangeRequest(
    std::string_view key, const RangeOptions& options);
[[nodiscard]] absl::StatusOr<etcdserverpb::PutRequest> MakePutRequest(std::string_view key,
                                                                      std::string_view value,
                                                                      const PutOptions& options);
[[nodiscard]] absl::StatusOr<etcdserverpb::DeleteRangeRequest> MakeDeleteRequest(
    std::string_view key, const DeleteOptions& options);

}  // namespace keel
