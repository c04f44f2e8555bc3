// WriteTxn: one mutating request of the MVCC state machine, executed into the apply
// batch (a WriteBatchWithIndex read through a BatchView). All changes of one WriteTxn
// share one revision: begin_rev + 1, used only if something changed (etcd's rule: a
// txn that only reads, or a delete that deletes nothing, does not bump the revision).
//
// Invariant: a key changes at most once per revision (ValidateTxn rejects a txn that
// writes a key twice; a delete of an already deleted key changes nothing), so the
// history key (key, revision) is unique.
//
// Thread-safety: single-threaded (the apply thread). Ownership: borrows the view.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "proto/internal.pb.h"
#include "storage/mvcc_view.h"

namespace keel::storage::mvcc {

// Keys of the "lease" family: 'L' + BE64(id) -> StoredLease; 'K' + BE64(id) + key -> "".
[[nodiscard]] std::string LeaseRecordKey(int64_t id);
[[nodiscard]] std::string LeaseAttachPrefix(int64_t id);

class WriteTxn {
 public:
  WriteTxn(BatchView* view, int64_t begin_rev, int64_t compact_rev)
      : view_(view), begin_rev_(begin_rev), compact_rev_(compact_rev) {}

  // The revision the txn's reads see and its writes carry.
  [[nodiscard]] int64_t Rev() const { return begin_rev_ + (changed_ ? 1 : 0); }

  // Each runs etcd's apply-time checks, then writes. On error nothing may be kept:
  // the caller rolls the batch back to its save point.
  [[nodiscard]] absl::StatusOr<etcdserverpb::RangeResponse> Range(
      const etcdserverpb::RangeRequest& r);
  [[nodiscard]] absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& r);
  [[nodiscard]] absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& r);
  [[nodiscard]] absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& r);

  // Lease table. Grant with id 0 picks max_lease_id + 1; *max_lease_id is raised.
  [[nodiscard]] absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(
      const etcdserverpb::LeaseGrantRequest& r, int64_t min_ttl_s, int64_t* max_lease_id);
  // Deletes every key attached to the lease (one revision), then the lease.
  [[nodiscard]] absl::StatusOr<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(
      const etcdserverpb::LeaseRevokeRequest& r);
  [[nodiscard]] absl::StatusOr<etcdserverpb::LeaseCheckpointResponse> LeaseCheckpoint(
      const etcdserverpb::LeaseCheckpointRequest& r);

  // The events of the writes so far, in order.
  [[nodiscard]] std::vector<mvccpb::Event> TakeEvents() { return std::move(events_); }

 private:
  [[nodiscard]] absl::StatusOr<bool> LeaseExists(int64_t id);
  [[nodiscard]] absl::Status WritePut(const std::string& key, const std::string& value,
                                      int64_t lease, const mvccpb::KeyValue* prev);
  [[nodiscard]] absl::Status WriteDelete(const mvccpb::KeyValue& prev);
  [[nodiscard]] absl::Status Supersede(const mvccpb::KeyValue& prev);
  [[nodiscard]] absl::Status LogEvent(mvccpb::Event::EventType type, const std::string& key);
  [[nodiscard]] absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRangeNoCheck(
      const etcdserverpb::DeleteRangeRequest& r);
  [[nodiscard]] absl::StatusOr<etcdserverpb::PutResponse> PutChecked(
      const etcdserverpb::PutRequest& r);
  [[nodiscard]] absl::Status ComputePath(const etcdserverpb::TxnRequest& r,
                                         std::vector<bool>* path);
  [[nodiscard]] absl::Status CheckPuts(const etcdserverpb::TxnRequest& r,
                                       const std::vector<bool>& path, size_t* pos);
  [[nodiscard]] absl::Status CheckRanges(const etcdserverpb::TxnRequest& r,
                                         const std::vector<bool>& path, size_t* pos);
  [[nodiscard]] absl::Status ExecuteTxn(const etcdserverpb::TxnRequest& r,
                                        const std::vector<bool>& path, size_t* pos,
                                        etcdserverpb::TxnResponse* resp);
  [[nodiscard]] absl::Status BatchPut(Cf cf, const std::string& key, const std::string& value);
  [[nodiscard]] absl::Status BatchDelete(Cf cf, const std::string& key);

  BatchView* view_;
  const int64_t begin_rev_;
  const int64_t compact_rev_;
  bool changed_ = false;
  std::vector<mvccpb::Event> events_;
};

}  // namespace keel::storage::mvcc
