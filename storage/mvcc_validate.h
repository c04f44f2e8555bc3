// Request validation with etcd's rules (etcd's api/v3rpc/key.go checks): empty keys,
// ignore_value / ignore_lease misuse, sort options, txn size and duplicate keys.
// The server should call these before proposing (to fail fast); KvStore calls them
// again at apply time, so the state machine never depends on the caller.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel::storage::mvcc {

[[nodiscard]] absl::Status ValidateRange(const etcdserverpb::RangeRequest& r);
[[nodiscard]] absl::Status ValidatePut(const etcdserverpb::PutRequest& r);
[[nodiscard]] absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
// `max_txn_ops` bounds compares, success ops and failure ops, each level separately.
// Also rejects a key written twice in one txn (put/put, put/delete), nested txns
// included. Deviation from etcd: a delete with range_end "\0" counts as reaching every
// key >= key (etcd's interval check treats it as empty, which would let one txn both
// delete and put a key).
[[nodiscard]] absl::Status ValidateTxn(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops);

}  // namespace keel::storage::mvcc
