// KvStore's apply path: one WriteBatch per batch of committed entries, the client
// dedup table, and physical compaction.
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/failpoint.h"
#include "common/status_macros.h"
#include "storage/kv_store.h"
#include "storage/kv_store_internal.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_errors.h"
#include "storage/mvcc_txn.h"
#include "storage/mvcc_validate.h"

namespace keel::storage {
using mvcc::Cf;
using mvcc::FromRocks;

struct KvStore::State {
  uint64_t applied_index = 0;
  int64_t revision = 1;
  int64_t compact_revision = 0;
  int64_t max_lease_id = 0;
  // Active alarms as of the entries applied so far in this batch.
  std::vector<etcdserverpb::AlarmMember> alarms;
  bool alarms_changed = false;
};

namespace kv_internal {

absl::StatusOr<std::pair<int64_t, int64_t>> ReadSnapshot::Revisions() {
  std::pair<int64_t, int64_t> out{1, 0};
  std::string v;
  ASSIGN_OR_RETURN(bool found, view_.Get(Cf::kMeta, kMetaRevision, &v));
  if (found && v.size() == 8) out.first = static_cast<int64_t>(mvcc::DecodeBigEndian64(v));
  ASSIGN_OR_RETURN(found, view_.Get(Cf::kMeta, kMetaCompact, &v));
  if (found && v.size() == 8) out.second = static_cast<int64_t>(mvcc::DecodeBigEndian64(v));
  return out;
}

absl::StatusOr<uint64_t> ReadAppliedIndex(const std::string& db_dir) {
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), db_dir, &raw),
                            absl::StrCat("open read-only ", db_dir)));
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string v;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kMetaApplied, &v);
  if (s.IsNotFound()) return 0;
  RETURN_IF_ERROR(FromRocks(s, "read applied index"));
  if (v.size() != 8) return absl::DataLossError("KvStore: bad applied index record");
  const uint64_t applied = mvcc::DecodeBigEndian64(v);
  std::string format;
  const rocksdb::Status fs = db->Get(rocksdb::ReadOptions(), kMetaFormat, &format);
  if (!fs.IsNotFound()) RETURN_IF_ERROR(FromRocks(fs, "read format version"));
  RETURN_IF_ERROR(CheckFormat(fs.IsNotFound() ? std::nullopt : std::optional(format), db_dir));
  return applied;
}

absl::Status CheckFormat(const std::optional<std::string>& stored, const std::string& db_dir) {
  uint64_t version = 1;  // Format 1 predates the format record.
  if (stored.has_value()) {
    if (stored->size() != 8) {
      return absl::DataLossError(absl::StrCat("KvStore: bad format version record in ", db_dir));
    }
    version = mvcc::DecodeBigEndian64(*stored);
  }
  if (version == mvcc::kFormatVersion) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "KvStore: ", db_dir, " holds state-machine data in on-disk format ", version,
      ", this keel reads format ", mvcc::kFormatVersion,
      " only (format 2 stores each current value once); there is no in-place upgrade: "
      "remove the member's data dir and let it rejoin from a snapshot, or reload the data"));
}

}  // namespace kv_internal

namespace {

std::string SessionKey(uint64_t client_id) {
  return kv_internal::kSessionPrefix + mvcc::BigEndian64(client_id);
}

std::string ExpiryKey(uint64_t index, uint64_t client_id) {
  return kv_internal::kExpiryPrefix + mvcc::BigEndian64(index) + mvcc::BigEndian64(client_id);
}

// Request errors (etcd's codes) are answers; anything else is a storage failure that
// must stop the node.
bool IsRequestError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

absl::Status StatusOf(const internalpb::Response& r) {
  if (r.error_code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(r.error_code()), r.error_message());
}

// Stores `value` into `field` or records a request error; other errors propagate.
template <typename T, typename Field>
absl::Status Answer(absl::StatusOr<T> value, Field* field, absl::Status* request_error) {
  if (value.ok()) {
    *field = std::move(value).value();
    return absl::OkStatus();
  }
  if (!IsRequestError(value.status())) return value.status();
  *request_error = value.status();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ApplyResult>> KvStore::Apply(absl::Span<const ApplyEntry> entries) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  State st{applied_index_.load(), revision_.load(), compact_revision_.load(),
           max_lease_id_,         Alarms(),         false};
  rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  mvcc::BatchView view(db_.get(), cfs_, &batch);
  std::vector<ApplyResult> results;
  for (const ApplyEntry& e : entries) {
    if (e.index <= st.applied_index) continue;  // Already applied: a no-op.
    ApplyResult& r = results.emplace_back();
    r.index = e.index;
    RETURN_IF_ERROR(ApplyOne(e, &st, &view, &r));
    if (!e.members.empty()) {
      RETURN_IF_ERROR(FromRocks(batch.Put(cfs_[0], kv_internal::kMetaMembers,
                                          rocksdb::Slice(e.members.data(), e.members.size())),
                                "members"));
    }
    st.applied_index = e.index;
  }
  if (results.empty()) return results;
  RETURN_IF_ERROR(ExpireSessions(st, &view));
  WriteState(st, &batch);
  rocksdb::WriteOptions wo;
  wo.sync = false;  // The Raft log is the durable record (kv_store.h).
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, batch.GetWriteBatch()), "apply batch"));
  max_lease_id_ = st.max_lease_id;
  compact_revision_ = st.compact_revision;
  revision_ = st.revision;
  applied_index_ = st.applied_index;
  if (st.alarms_changed) PublishAlarms(std::move(st.alarms));
  if (compact_done_ < st.compact_revision) RETURN_IF_ERROR(CompactPhysicalLocked());
  return results;
}

void KvStore::WriteState(const State& st, rocksdb::WriteBatchWithIndex* batch) {
  auto put = [&](const char* key, uint64_t v) {
    KEEL_CHECK(batch->Put(cfs_[0], key, mvcc::BigEndian64(v)).ok());
  };
  put(kv_internal::kMetaApplied, st.applied_index);
  put(kv_internal::kMetaRevision, static_cast<uint64_t>(st.revision));
  put(kv_internal::kMetaCompact, static_cast<uint64_t>(st.compact_revision));
  put(kv_internal::kMetaMaxLease, static_cast<uint64_t>(st.max_lease_id));
}

absl::Status KvStore::ApplyOne(const ApplyEntry& entry, State* st, mvcc::BatchView* view,
                               ApplyResult* result) {
  if (entry.data.empty()) return absl::OkStatus();
  internalpb::Request req;
  if (!req.ParseFromArray(entry.data.data(), static_cast<int>(entry.data.size()))) {
    result->status = absl::InvalidArgumentError(
        absl::StrCat("keel: malformed state machine request at index ", entry.index));
    return absl::OkStatus();
  }
  internalpb::ClientSession session;
  bool has_session = false;
  if (req.client_id() != 0) {
    std::string record;
    ASSIGN_OR_RETURN(has_session, view->Get(Cf::kMeta, SessionKey(req.client_id()), &record));
    if (has_session && !session.ParseFromString(record)) {
      return absl::DataLossError("KvStore: bad client session record");
    }
    if (has_session && req.sequence() == session.sequence()) {
      result->duplicate = true;
      result->status = StatusOf(session.response());
      result->response = session.response();
      return absl::OkStatus();
    }
    if (has_session && req.sequence() < session.sequence()) {
      result->status = absl::FailedPreconditionError(
          absl::StrCat("keel: request sequence ", req.sequence(),
                       " is older than the latest answered ", session.sequence()));
      return absl::OkStatus();
    }
  }
  const State saved = *st;
  view->SetSavePoint();
  RETURN_IF_ERROR(ExecuteRequest(req, st, view, result));
  if (result->status.ok()) {
    RETURN_IF_ERROR(view->PopSavePoint());
  } else {
    RETURN_IF_ERROR(view->RollbackToSavePoint());
    *st = saved;
    result->events.clear();
    result->response.Clear();
  }
  if (req.client_id() == 0) return absl::OkStatus();
  internalpb::ClientSession updated;
  updated.set_sequence(req.sequence());
  updated.set_applied_index(entry.index);
  *updated.mutable_response() = result->response;
  if (!result->status.ok()) {
    updated.mutable_response()->set_error_code(static_cast<int32_t>(result->status.code()));
    updated.mutable_response()->set_error_message(std::string(result->status.message()));
  }
  auto* b = view->batch();
  auto* meta = view->handle(Cf::kMeta);
  if (has_session) {
    RETURN_IF_ERROR(
        FromRocks(b->Delete(meta, ExpiryKey(session.applied_index(), req.client_id())), "session"));
  }
  RETURN_IF_ERROR(
      FromRocks(b->Put(meta, SessionKey(req.client_id()), updated.SerializeAsString()), "session"));
  return FromRocks(b->Put(meta, ExpiryKey(entry.index, req.client_id()), ""), "session");
}

absl::Status KvStore::ExecuteRequest(const internalpb::Request& req, State* st,
                                     mvcc::BatchView* view, ApplyResult* result) {
  mvcc::WriteTxn txn(view, st->revision, st->compact_revision);
  internalpb::Response& resp = result->response;
  absl::Status& err = result->status;
  if (kv_internal::HasCorruptAlarm(st->alarms) && kv_internal::RefusedWhenCorrupt(req)) {
    err = mvcc::ErrCorrupt();  // Replicated state: every member refuses the same entries.
    return absl::OkStatus();
  }
  if (kv_internal::HasNoSpaceAlarm(st->alarms) && kv_internal::NeedsSpace(req)) {
    // Read-and-delete-only while NOSPACE is raised; decided here, in the replicated
    // state, so every member refuses the same entries.
    err = mvcc::ErrNoSpace();
    return absl::OkStatus();
  }
  switch (req.request_case()) {
    case internalpb::Request::kPut:
      if (KEEL_UNSAFE_BUG(kDivergeState)) {  // Test builds only: see common/failpoint.h.
        etcdserverpb::PutRequest changed = req.put();
        if (!changed.value().empty()) changed.mutable_value()->front() ^= 0x20;
        RETURN_IF_ERROR(Answer(txn.Put(changed), resp.mutable_put(), &err));
        break;
      }
      RETURN_IF_ERROR(Answer(txn.Put(req.put()), resp.mutable_put(), &err));
      break;
    case internalpb::Request::kDeleteRange:
      RETURN_IF_ERROR(
          Answer(txn.DeleteRange(req.delete_range()), resp.mutable_delete_range(), &err));
      break;
    case internalpb::Request::kTxn:
      err = mvcc::ValidateTxn(req.txn(), options_.max_txn_ops);
      if (err.ok()) RETURN_IF_ERROR(Answer(txn.Txn(req.txn()), resp.mutable_txn(), &err));
      break;
    case internalpb::Request::kCompaction: {
      const int64_t rev = req.compaction().revision();
      if (rev <= st->compact_revision) {
        err = mvcc::ErrCompacted();
      } else if (rev > st->revision) {
        err = mvcc::ErrFutureRev();
      } else {
        st->compact_revision = rev;
        resp.mutable_compaction()->mutable_header()->set_revision(st->revision);
      }
      break;
    }
    case internalpb::Request::kLeaseGrant:
      RETURN_IF_ERROR(
          Answer(txn.LeaseGrant(req.lease_grant(), options_.min_lease_ttl_s, &st->max_lease_id),
                 resp.mutable_lease_grant(), &err));
      break;
    case internalpb::Request::kLeaseRevoke:
      RETURN_IF_ERROR(
          Answer(txn.LeaseRevoke(req.lease_revoke()), resp.mutable_lease_revoke(), &err));
      break;
    case internalpb::Request::kLeaseCheckpoint:
      RETURN_IF_ERROR(Answer(txn.LeaseCheckpoint(req.lease_checkpoint()),
                             resp.mutable_lease_checkpoint(), &err));
      break;
    case internalpb::Request::kAlarm:
      RETURN_IF_ERROR(ExecuteAlarm(req.alarm(), view, &resp, &st->alarms));
      st->alarms_changed = true;
      return absl::OkStatus();  // No revision, no events.
    case internalpb::Request::REQUEST_NOT_SET:
      err = absl::InvalidArgumentError("keel: empty state machine request");
      break;
  }
  if (err.ok()) {
    st->revision = txn.Rev();
    result->events = txn.TakeEvents();
  }
  return absl::OkStatus();
}

absl::Status KvStore::ExpireSessions(const State& st, mvcc::BatchView* view) {
  if (st.applied_index <= options_.session_expiry_entries) return absl::OkStatus();
  const uint64_t cutoff = st.applied_index - options_.session_expiry_entries;
  const std::string end = ExpiryKey(cutoff, 0);
  std::vector<std::string> expired;
  {
    auto it = view->NewIterator(Cf::kMeta, end);
    for (it->Seek(kv_internal::kExpiryPrefix);
         it->Valid() && it->key().starts_with(kv_internal::kExpiryPrefix) &&
         it->key().compare(end) < 0;
         it->Next()) {
      expired.push_back(it->key().ToString());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scan sessions"));
  }
  auto* meta = view->handle(Cf::kMeta);
  for (const auto& key : expired) {
    if (key.size() != 18) return absl::DataLossError("KvStore: bad session expiry key");
    const uint64_t client = mvcc::DecodeBigEndian64(std::string_view(key).substr(10));
    RETURN_IF_ERROR(FromRocks(view->batch()->Delete(meta, key), "expire"));
    RETURN_IF_ERROR(FromRocks(view->batch()->Delete(meta, SessionKey(client)), "expire"));
  }
  return absl::OkStatus();
}

absl::Status KvStore::CompactPhysical() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return CompactPhysicalLocked();
}

// Deletes every version a read at or above the compaction point can no longer see:
// for each key, the versions older than its newest version <= target, and that
// newest one too if it is a tombstone below the target (a tombstone at the target is
// the delete event of that revision, which a watch from the compaction point replays).
// Reads at or above the target see the same answers before, during and after, so this
// need not be atomic with any apply; a crash mid-way is resumed at Open
// (compact_done < compact).
absl::Status KvStore::CompactPhysicalLocked() {
  const int64_t target = compact_revision_.load();
  if (compact_done_ >= target) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  auto* hist = cfs_[static_cast<int>(Cf::kHistory)];
  auto flush = [&]() -> absl::Status {
    RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), "compact"));
    wb.Clear();
    return absl::OkStatus();
  };
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), hist));
  std::string user_key, next_key;
  int64_t rev = 0;
  it->SeekToFirst();
  while (it->Valid()) {
    RETURN_IF_ERROR(mvcc::ParseHistoryKey(it->key().ToStringView(), &user_key, &rev));
    if (rev > target) {
      it->Seek(mvcc::HistoryKey(user_key, target));
      continue;
    }
    // The newest version of user_key at or below the target.
    if (rev < target && mvcc::IsTombstone(it->value().ToStringView())) {
      RETURN_IF_ERROR(FromRocks(wb.Delete(hist, it->key()), "compact"));
    }
    for (it->Next(); it->Valid(); it->Next()) {
      RETURN_IF_ERROR(mvcc::ParseHistoryKey(it->key().ToStringView(), &next_key, &rev));
      if (next_key != user_key) break;
      RETURN_IF_ERROR(FromRocks(wb.Delete(hist, it->key()), "compact"));
    }
    if (static_cast<uint64_t>(wb.Count()) >= options_.compaction_batch_keys) {
      RETURN_IF_ERROR(flush());
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "compact scan"));
  // The event log below the compaction point: one range tombstone.
  RETURN_IF_ERROR(FromRocks(wb.DeleteRange(cfs_[static_cast<int>(Cf::kEvents)],
                                           mvcc::EventLogKey(0, 0), mvcc::EventLogKey(target, 0)),
                            "compact event log"));
  RETURN_IF_ERROR(FromRocks(
      wb.Put(cfs_[0], kv_internal::kMetaCompactDone, mvcc::BigEndian64(target)), "compact"));
  RETURN_IF_ERROR(flush());
  compact_done_ = target;
  return absl::OkStatus();
}

}  // namespace keel::storage
