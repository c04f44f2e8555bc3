#include "storage/mvcc_txn.h"

#include <algorithm>

#include "common/status_macros.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_errors.h"
#include "storage/mvcc_range.h"
#include "storage/mvcc_validate.h"

namespace keel::storage::mvcc {
namespace {

using etcdserverpb::RequestOp;

// etcd's MaxLeaseTTL (about 285 years).
constexpr int64_t kMaxLeaseTtlS = 9000000000;

const google::protobuf::RepeatedPtrField<RequestOp>& Branch(const etcdserverpb::TxnRequest& r,
                                                            bool succeeded) {
  return succeeded ? r.success() : r.failure();
}

}  // namespace

std::string LeaseRecordKey(int64_t id) {
  std::string key(1, 'L');
  AppendBigEndian64(&key, static_cast<uint64_t>(id));
  return key;
}

std::string LeaseAttachPrefix(int64_t id) {
  std::string key(1, 'K');
  AppendBigEndian64(&key, static_cast<uint64_t>(id));
  return key;
}

absl::Status WriteTxn::BatchPut(Cf cf, const std::string& key, const std::string& value) {
  return view_->Put(cf, key, value);
}

absl::Status WriteTxn::BatchDelete(Cf cf, const std::string& key) {
  return FromRocks(view_->batch()->Delete(view_->handle(cf), key), "batch delete");
}

// Called before the event is added to events_, whose size is then its position.
absl::Status WriteTxn::LogEvent(mvccpb::Event::EventType type, const std::string& key) {
  return BatchPut(Cf::kEvents, EventLogKey(Rev(), static_cast<uint32_t>(events_.size())),
                  EventLogRecord(type, key));
}

absl::StatusOr<bool> WriteTxn::LeaseExists(int64_t id) {
  std::string unused;
  return view_->Get(Cf::kLease, LeaseRecordKey(id), &unused);
}

// `prev` (the key's current version, just read from "kv") stops being current: its
// history record becomes the full record, replacing the 'C' marker, in this batch
// (mvcc_encoding.h). The marker is always there: compaction keeps a key's newest version.
// A version put earlier in this same revision (a txn's put, then its delete in a later
// sibling nested txn) shares its history key with what replaces it, so its full record
// goes into its event log entry instead ('S').
absl::Status WriteTxn::Supersede(const mvccpb::KeyValue& prev) {
  std::string record;
  EncodePutRecord(prev, &record);
  if (prev.mod_revision() != Rev()) {
    return BatchPut(Cf::kHistory, HistoryKey(prev.key(), prev.mod_revision()), record);
  }
  for (size_t pos = events_.size(); pos-- > 0;) {
    const mvccpb::Event& ev = events_[pos];
    if (ev.type() == mvccpb::Event::PUT && ev.kv().key() == prev.key()) {
      return BatchPut(Cf::kEvents, EventLogKey(Rev(), static_cast<uint32_t>(pos)),
                      SupersededPutEventRecord(prev.key(), record));
    }
  }
  return absl::InternalError("mvcc: a version of this revision without its put event");
}

absl::Status WriteTxn::WritePut(const std::string& key, const std::string& value, int64_t lease,
                                const mvccpb::KeyValue* prev) {
  changed_ = true;
  const int64_t rev = Rev();
  mvccpb::KeyValue kv;
  kv.set_key(key);
  kv.set_value(value);
  kv.set_create_revision(prev != nullptr ? prev->create_revision() : rev);
  kv.set_mod_revision(rev);
  kv.set_version(prev != nullptr ? prev->version() + 1 : 1);
  kv.set_lease(lease);
  std::string record;
  if (prev != nullptr) RETURN_IF_ERROR(Supersede(*prev));
  EncodePutRecord(kv, &record);
  RETURN_IF_ERROR(BatchPut(Cf::kKv, key, record));
  EncodeCurrentMarker(kv, &record);
  RETURN_IF_ERROR(BatchPut(Cf::kHistory, HistoryKey(key, rev), record));
  RETURN_IF_ERROR(LogEvent(mvccpb::Event::PUT, key));
  const int64_t prev_lease = prev != nullptr ? prev->lease() : 0;
  if (prev_lease != 0 && prev_lease != lease) {
    RETURN_IF_ERROR(BatchDelete(Cf::kLease, LeaseAttachPrefix(prev_lease) + key));
  }
  if (lease != 0 && lease != prev_lease) {
    RETURN_IF_ERROR(BatchPut(Cf::kLease, LeaseAttachPrefix(lease) + key, ""));
  }
  mvccpb::Event& ev = events_.emplace_back();
  ev.set_type(mvccpb::Event::PUT);
  *ev.mutable_kv() = std::move(kv);
  if (prev != nullptr) *ev.mutable_prev_kv() = *prev;
  return absl::OkStatus();
}

absl::Status WriteTxn::WriteDelete(const mvccpb::KeyValue& prev) {
  changed_ = true;
  const int64_t rev = Rev();
  RETURN_IF_ERROR(Supersede(prev));
  RETURN_IF_ERROR(BatchDelete(Cf::kKv, prev.key()));
  RETURN_IF_ERROR(BatchPut(Cf::kHistory, HistoryKey(prev.key(), rev), TombstoneRecord()));
  RETURN_IF_ERROR(LogEvent(mvccpb::Event::DELETE, prev.key()));
  if (prev.lease() != 0) {
    RETURN_IF_ERROR(BatchDelete(Cf::kLease, LeaseAttachPrefix(prev.lease()) + prev.key()));
  }
  mvccpb::Event& ev = events_.emplace_back();
  ev.set_type(mvccpb::Event::DELETE);
  ev.mutable_kv()->set_key(prev.key());
  ev.mutable_kv()->set_mod_revision(rev);
  *ev.mutable_prev_kv() = prev;
  return absl::OkStatus();
}

absl::StatusOr<etcdserverpb::RangeResponse> WriteTxn::Range(const etcdserverpb::RangeRequest& r) {
  return ExecuteRange(*view_, r, Rev(), compact_rev_);
}

absl::StatusOr<etcdserverpb::PutResponse> WriteTxn::Put(const etcdserverpb::PutRequest& r) {
  RETURN_IF_ERROR(ValidatePut(r));
  return PutChecked(r);
}

absl::StatusOr<etcdserverpb::PutResponse> WriteTxn::PutChecked(const etcdserverpb::PutRequest& r) {
  // etcd's order: the lease first, then the previous key-value.
  if (r.lease() != 0) {
    ASSIGN_OR_RETURN(bool exists, LeaseExists(r.lease()));
    if (!exists) return ErrLeaseNotFound();
  }
  mvccpb::KeyValue prev;
  ASSIGN_OR_RETURN(bool found, GetCurrent(*view_, r.key(), &prev));
  if ((r.ignore_value() || r.ignore_lease()) && !found) return ErrKeyNotFound();
  const std::string& value = r.ignore_value() ? prev.value() : r.value();
  const int64_t lease = r.ignore_lease() ? prev.lease() : r.lease();
  etcdserverpb::PutResponse resp;
  if (r.prev_kv() && found) *resp.mutable_prev_kv() = prev;
  RETURN_IF_ERROR(WritePut(r.key(), value, lease, found ? &prev : nullptr));
  resp.mutable_header()->set_revision(Rev());
  return resp;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> WriteTxn::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& r) {
  RETURN_IF_ERROR(ValidateDeleteRange(r));
  return DeleteRangeNoCheck(r);
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> WriteTxn::DeleteRangeNoCheck(
    const etcdserverpb::DeleteRangeRequest& r) {
  ASSIGN_OR_RETURN(RangeKeysResult rr, RangeKeys(*view_, KeyInterval::From(r.key(), r.range_end()),
                                                 Rev(), /*current=*/true, 0, false));
  etcdserverpb::DeleteRangeResponse resp;
  for (auto& kv : rr.kvs) {
    RETURN_IF_ERROR(WriteDelete(kv));
    if (r.prev_kv()) *resp.add_prev_kvs() = std::move(kv);
  }
  resp.set_deleted(static_cast<int64_t>(rr.kvs.size()));
  resp.mutable_header()->set_revision(Rev());
  return resp;
}

// etcd's compareToPath: the outcome of this txn's compares, then those of the nested
// txns in the chosen branch (pre-order), all against the state before the txn.
absl::Status WriteTxn::ComputePath(const etcdserverpb::TxnRequest& r, std::vector<bool>* path) {
  bool ok = true;
  for (const auto& c : r.compare()) {
    ASSIGN_OR_RETURN(bool holds, EvaluateCompare(*view_, c, Rev()));
    if (!holds) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const auto& op : Branch(r, ok)) {
    if (op.has_request_txn()) RETURN_IF_ERROR(ComputePath(op.request_txn(), path));
  }
  return absl::OkStatus();
}

absl::Status WriteTxn::CheckPuts(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                                 size_t* pos) {
  const bool ok = path[(*pos)++];
  for (const auto& op : Branch(r, ok)) {
    if (op.has_request_txn()) {
      RETURN_IF_ERROR(CheckPuts(op.request_txn(), path, pos));
      continue;
    }
    if (!op.has_request_put()) continue;
    const auto& put = op.request_put();
    if (put.ignore_value() || put.ignore_lease()) {
      mvccpb::KeyValue prev;
      ASSIGN_OR_RETURN(bool found, GetCurrent(*view_, put.key(), &prev));
      if (!found) return ErrKeyNotFound();
    }
    if (put.lease() != 0) {
      ASSIGN_OR_RETURN(bool exists, LeaseExists(put.lease()));
      if (!exists) return ErrLeaseNotFound();
    }
  }
  return absl::OkStatus();
}

absl::Status WriteTxn::CheckRanges(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                                   size_t* pos) {
  const bool ok = path[(*pos)++];
  for (const auto& op : Branch(r, ok)) {
    if (op.has_request_txn()) {
      RETURN_IF_ERROR(CheckRanges(op.request_txn(), path, pos));
      continue;
    }
    if (!op.has_request_range()) continue;
    const int64_t rev = op.request_range().revision();
    if (rev <= 0) continue;
    if (rev > begin_rev_) return ErrFutureRev();
    if (rev < compact_rev_) return ErrCompacted();
  }
  return absl::OkStatus();
}

absl::Status WriteTxn::ExecuteTxn(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                                  size_t* pos, etcdserverpb::TxnResponse* resp) {
  const bool ok = path[(*pos)++];
  resp->set_succeeded(ok);
  resp->mutable_header();  // etcd: nested txns answer with an empty header.
  for (const auto& op : Branch(r, ok)) {
    etcdserverpb::ResponseOp* out = resp->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange: {
        ASSIGN_OR_RETURN(*out->mutable_response_range(), Range(op.request_range()));
        break;
      }
      case RequestOp::kRequestPut: {
        ASSIGN_OR_RETURN(*out->mutable_response_put(), PutChecked(op.request_put()));
        break;
      }
      case RequestOp::kRequestDeleteRange: {
        ASSIGN_OR_RETURN(*out->mutable_response_delete_range(),
                         DeleteRangeNoCheck(op.request_delete_range()));
        break;
      }
      case RequestOp::kRequestTxn:
        RETURN_IF_ERROR(ExecuteTxn(op.request_txn(), path, pos, out->mutable_response_txn()));
        break;
      case RequestOp::REQUEST_NOT_SET:
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<etcdserverpb::TxnResponse> WriteTxn::Txn(const etcdserverpb::TxnRequest& r) {
  std::vector<bool> path;
  RETURN_IF_ERROR(ComputePath(r, &path));
  size_t pos = 0;
  RETURN_IF_ERROR(CheckPuts(r, path, &pos));
  pos = 0;
  RETURN_IF_ERROR(CheckRanges(r, path, &pos));
  pos = 0;
  etcdserverpb::TxnResponse resp;
  RETURN_IF_ERROR(ExecuteTxn(r, path, &pos, &resp));
  resp.mutable_header()->set_revision(Rev());
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> WriteTxn::LeaseGrant(
    const etcdserverpb::LeaseGrantRequest& r, int64_t min_ttl_s, int64_t* max_lease_id) {
  int64_t id = r.id();
  if (id == 0) {
    // The server normally picks the id before proposing; if it did not, pick one
    // deterministically so that every replica agrees.
    id = *max_lease_id + 1;
    for (;;) {
      ASSIGN_OR_RETURN(bool taken, LeaseExists(id));
      if (!taken && id != 0) break;
      ++id;
    }
  }
  if (r.ttl() > kMaxLeaseTtlS) return ErrLeaseTTLTooLarge();
  ASSIGN_OR_RETURN(bool exists, LeaseExists(id));
  if (exists) return ErrLeaseExists();
  internalpb::StoredLease lease;
  lease.set_id(id);
  lease.set_granted_ttl_s(std::max(r.ttl(), min_ttl_s));
  RETURN_IF_ERROR(BatchPut(Cf::kLease, LeaseRecordKey(id), lease.SerializeAsString()));
  *max_lease_id = std::max(*max_lease_id, id);
  etcdserverpb::LeaseGrantResponse resp;
  resp.mutable_header()->set_revision(Rev());
  resp.set_id(id);
  resp.set_ttl(lease.granted_ttl_s());
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseRevokeResponse> WriteTxn::LeaseRevoke(
    const etcdserverpb::LeaseRevokeRequest& r) {
  ASSIGN_OR_RETURN(bool exists, LeaseExists(r.id()));
  if (!exists) return ErrLeaseNotFound();
  const std::string prefix = LeaseAttachPrefix(r.id());
  std::vector<std::string> keys;
  {
    auto it = view_->NewIterator(Cf::kLease, "");
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      keys.emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scan lease keys"));
  }
  for (const auto& key : keys) {  // In key order, as etcd's lessor sorts them.
    mvccpb::KeyValue kv;
    ASSIGN_OR_RETURN(bool found, GetCurrent(*view_, key, &kv));
    if (found && kv.lease() == r.id()) {
      RETURN_IF_ERROR(WriteDelete(kv));
    } else {
      return absl::DataLossError("mvcc: lease attachment without a matching key");
    }
  }
  RETURN_IF_ERROR(BatchDelete(Cf::kLease, LeaseRecordKey(r.id())));
  etcdserverpb::LeaseRevokeResponse resp;
  resp.mutable_header()->set_revision(Rev());
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseCheckpointResponse> WriteTxn::LeaseCheckpoint(
    const etcdserverpb::LeaseCheckpointRequest& r) {
  for (const auto& cp : r.checkpoints()) {
    std::string record;
    ASSIGN_OR_RETURN(bool found, view_->Get(Cf::kLease, LeaseRecordKey(cp.id()), &record));
    if (!found) continue;  // Revoked since the leader took the checkpoint.
    internalpb::StoredLease lease;
    if (!lease.ParseFromString(record)) return absl::DataLossError("mvcc: bad lease record");
    lease.set_remaining_ttl_s(cp.remaining_ttl());
    RETURN_IF_ERROR(BatchPut(Cf::kLease, LeaseRecordKey(cp.id()), lease.SerializeAsString()));
  }
  etcdserverpb::LeaseCheckpointResponse resp;
  resp.mutable_header()->set_revision(Rev());
  return resp;
}

}  // namespace keel::storage::mvcc
