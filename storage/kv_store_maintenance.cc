// KvStore's maintenance side: space usage, storage compaction (etcd's Defragment),
// hashes of the replicated state (etcd's Hash / HashKV), alarms, and the reset that
// turns a restored snapshot into a new cluster's first state.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/crc32c.h"
#include "storage/kv_store.h"
#include "storage/kv_store_internal.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_errors.h"

namespace keel::storage {
namespace fs = std::filesystem;
using mvcc::Cf;
using mvcc::FromRocks;

namespace kv_internal {

bool HasNoSpaceAlarm(const std::vector<etcdserverpb::AlarmMember>& alarms) {
  for (const auto& a : alarms) {
    if (a.alarm() == etcdserverpb::NOSPACE) return true;
  }
  return false;
}

bool HasCorruptAlarm(const std::vector<etcdserverpb::AlarmMember>& alarms) {
  for (const auto& a : alarms) {
    if (a.alarm() == etcdserverpb::CORRUPT) return true;
  }
  return false;
}

bool RefusedWhenCorrupt(const internalpb::Request& req) {
  switch (req.request_case()) {
    case internalpb::Request::kPut:
    case internalpb::Request::kDeleteRange:
    case internalpb::Request::kTxn:
    case internalpb::Request::kCompaction:
    case internalpb::Request::kLeaseGrant:
    case internalpb::Request::kLeaseRevoke:
      return true;
    default:
      return false;
  }
}

namespace {
bool TxnHasPut(const etcdserverpb::TxnRequest& t) {
  for (const auto* branch : {&t.success(), &t.failure()}) {
    for (const auto& op : *branch) {
      if (op.has_request_put()) return true;
      if (op.has_request_txn() && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
}
}  // namespace

bool NeedsSpace(const internalpb::Request& req) {
  switch (req.request_case()) {
    case internalpb::Request::kPut:
    case internalpb::Request::kLeaseGrant:
      return true;
    case internalpb::Request::kTxn:
      return TxnHasPut(req.txn());
    default:
      return false;
  }
}

}  // namespace kv_internal

namespace {

std::string AlarmKey(uint64_t member_id, etcdserverpb::AlarmType type) {
  std::string key = kv_internal::kAlarmPrefix + mvcc::BigEndian64(member_id);
  const uint32_t t = static_cast<uint32_t>(type);
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(t >> shift));
  return key;
}

// A canonical byte form of what the hashes cover: fixed-width numbers and
// length-prefixed strings, so no two different contents share an encoding.
class Hasher {
 public:
  void Number(int64_t v) {
    const std::string be = mvcc::BigEndian64(static_cast<uint64_t>(v));
    crc_ = Crc32cExtend(crc_, be.data(), be.size());
  }
  void Bytes(std::string_view s) {
    Number(static_cast<int64_t>(s.size()));
    crc_ = Crc32cExtend(crc_, s.data(), s.size());
  }
  void KeyValue(const mvccpb::KeyValue& kv) {
    Bytes(kv.key());
    Number(kv.create_revision());
    Number(kv.mod_revision());
    Number(kv.version());
    Number(kv.lease());
    Bytes(kv.value());
  }
  [[nodiscard]] uint32_t value() const { return crc_; }

 private:
  uint32_t crc_ = 0;
};

// Hashes the key space of `view` as of `rev` (see KvStore::HashKv).
absl::Status HashKeySpace(mvcc::MvccView& view, int64_t rev, bool current, int64_t events_from,
                          Hasher* h) {
  constexpr int64_t kPage = 1000;
  mvcc::KeyInterval all = mvcc::KeyInterval::From(std::string(1, '\0'), std::string(1, '\0'));
  all.begin.clear();  // Every key, the empty one included.
  for (;;) {
    ASSIGN_OR_RETURN(mvcc::RangeKeysResult page,
                     mvcc::RangeKeys(view, all, rev, current, kPage, /*count_only=*/false));
    for (const auto& kv : page.kvs) h->KeyValue(kv);
    if (static_cast<int64_t>(page.kvs.size()) < kPage) break;
    all.begin = page.kvs.back().key() + std::string(1, '\0');
  }
  h->Number(-1);  // Separates the keys from the events.
  mvcc::KeyInterval every = all;
  every.begin.clear();
  int64_t from = events_from;
  while (from <= rev) {
    ASSIGN_OR_RETURN(mvcc::EventsChunk chunk,
                     mvcc::ReadEvents(view, every, from, rev, /*prev_kv=*/false, {}));
    for (const auto& e : chunk.events) {
      h->Number(e.type());
      h->KeyValue(e.kv());
    }
    if (chunk.next_rev <= from) return absl::InternalError("HashKv: event read made no progress");
    from = chunk.next_rev;
  }
  return absl::OkStatus();
}

}  // namespace

KvStore::SpaceUsage KvStore::Space() const {
  SpaceUsage usage;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::error_code ec;
  for (auto it = fs::directory_iterator(options_.dir + "/" + db_name_, ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) usage.disk_bytes += static_cast<int64_t>(it->file_size(ec));
  }
  uint64_t live = 0, memtables = 0;
  if (!db_->GetAggregatedIntProperty("rocksdb.estimate-live-data-size", &live)) live = 0;
  if (!db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables)) memtables = 0;
  usage.live_bytes = static_cast<int64_t>(live + memtables);
  return usage;
}

absl::Status KvStore::CompactStorage() {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  rocksdb::FlushOptions flush;
  flush.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles(cfs_.begin(), cfs_.end());
  RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles), "flush"));
  rocksdb::CompactRangeOptions options;
  // Rewrite the last level too: that is where deleted versions' tombstones meet the
  // data they delete.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (auto* h : handles) {
    RETURN_IF_ERROR(FromRocks(db_->CompactRange(options, h, nullptr, nullptr), "compact range"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KvStore::KvHash> KvStore::HashKv(int64_t revision) const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  KvHash out;
  out.revision = revision > 0 ? revision : revs.first;
  out.compact_revision = revs.second;
  if (out.revision > revs.first) return mvcc::ErrFutureRev();
  if (out.revision < revs.second) return mvcc::ErrCompacted();
  // Events strictly above the compaction point (the state at it is in the keys).
  const int64_t events_from = std::max(revs.second + 1, events_from_.load());
  Hasher h;
  RETURN_IF_ERROR(
      HashKeySpace(snap.view(), out.revision, out.revision == revs.first, events_from, &h));
  out.hash = h.value();
  return out;
}

absl::StatusOr<uint32_t> KvStore::HashAll() const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  Hasher h;
  h.Number(revs.first);
  h.Number(revs.second);
  const int64_t events_from = std::max(revs.second + 1, events_from_.load());
  RETURN_IF_ERROR(HashKeySpace(snap.view(), revs.first, /*current=*/true, events_from, &h));
  h.Number(-2);  // Leases: their records and attachments, as stored.
  auto leases = snap.view().NewIterator(Cf::kLease, "");
  for (leases->SeekToFirst(); leases->Valid(); leases->Next()) {
    h.Bytes(std::string_view(leases->key().data(), leases->key().size()));
    h.Bytes(std::string_view(leases->value().data(), leases->value().size()));
  }
  RETURN_IF_ERROR(FromRocks(leases->status(), "scan leases"));
  h.Number(-3);
  for (const auto& a : Alarms()) {
    h.Number(static_cast<int64_t>(a.memberid()));
    h.Number(a.alarm());
  }
  return h.value();
}

std::vector<etcdserverpb::AlarmMember> KvStore::Alarms() const {
  std::lock_guard<std::mutex> lock(alarms_mu_);
  return alarms_;
}

void KvStore::PublishAlarms(std::vector<etcdserverpb::AlarmMember> alarms) {
  const bool no_space = kv_internal::HasNoSpaceAlarm(alarms);
  const bool corrupt = kv_internal::HasCorruptAlarm(alarms);
  std::lock_guard<std::mutex> lock(alarms_mu_);
  alarms_ = std::move(alarms);
  no_space_ = no_space;
  corrupt_ = corrupt;
}

absl::Status KvStore::LoadAlarms() {
  std::vector<etcdserverpb::AlarmMember> alarms;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[0]));
  const std::string prefix = kv_internal::kAlarmPrefix;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 12) return absl::DataLossError("KvStore: bad alarm key");
    auto& a = alarms.emplace_back();
    a.set_memberid(mvcc::DecodeBigEndian64(key.substr(prefix.size(), 8)));
    uint32_t type = 0;
    for (char c : key.substr(prefix.size() + 8)) type = (type << 8) | static_cast<uint8_t>(c);
    a.set_alarm(static_cast<etcdserverpb::AlarmType>(type));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan alarms"));
  PublishAlarms(std::move(alarms));
  return absl::OkStatus();
}

absl::Status KvStore::ExecuteAlarm(const etcdserverpb::AlarmRequest& r, mvcc::BatchView* view,
                                   internalpb::Response* resp,
                                   std::vector<etcdserverpb::AlarmMember>* alarms) {
  auto* meta = view->handle(Cf::kMeta);
  auto matches = [&r](const etcdserverpb::AlarmMember& a) {
    return (r.memberid() == 0 || a.memberid() == r.memberid()) &&
           (r.alarm() == etcdserverpb::NONE || a.alarm() == r.alarm());
  };
  switch (r.action()) {
    case etcdserverpb::AlarmRequest::ACTIVATE: {
      if (r.alarm() == etcdserverpb::NONE) break;  // Nothing to raise.
      bool present = false;
      for (const auto& a : *alarms)
        present |= a.memberid() == r.memberid() && a.alarm() == r.alarm();
      if (!present) {
        RETURN_IF_ERROR(
            FromRocks(view->batch()->Put(meta, AlarmKey(r.memberid(), r.alarm()), ""), "alarm"));
        auto& a = alarms->emplace_back();
        a.set_memberid(r.memberid());
        a.set_alarm(r.alarm());
        std::sort(alarms->begin(), alarms->end(), [](const auto& x, const auto& y) {
          return std::pair(x.memberid(), static_cast<int>(x.alarm())) <
                 std::pair(y.memberid(), static_cast<int>(y.alarm()));
        });
      }
      // etcd answers an activation with the alarm it raised.
      auto* out = resp->mutable_alarm()->add_alarms();
      out->set_memberid(r.memberid());
      out->set_alarm(r.alarm());
      break;
    }
    case etcdserverpb::AlarmRequest::DEACTIVATE: {
      std::vector<etcdserverpb::AlarmMember> kept;
      for (auto& a : *alarms) {
        if (!matches(a)) {
          kept.push_back(std::move(a));
          continue;
        }
        RETURN_IF_ERROR(
            FromRocks(view->batch()->Delete(meta, AlarmKey(a.memberid(), a.alarm())), "alarm"));
        *resp->mutable_alarm()->add_alarms() = a;  // etcd answers with what it cleared.
      }
      *alarms = std::move(kept);
      break;
    }
    default:
      resp->mutable_alarm();  // GET is answered locally and never proposed.
      break;
  }
  return absl::OkStatus();
}

absl::Status KvStore::ResetForNewCluster() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocks(batch.Put(cfs_[0], kv_internal::kMetaApplied, mvcc::BigEndian64(0)),
                            "reset applied index"));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[0]));
  for (const char* prefix :
       {kv_internal::kSessionPrefix, kv_internal::kExpiryPrefix, kv_internal::kAlarmPrefix}) {
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      RETURN_IF_ERROR(FromRocks(batch.Delete(cfs_[0], it->key()), "drop old cluster state"));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan meta"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "reset for new cluster"));
  applied_index_ = 0;
  PublishAlarms({});
  return absl::OkStatus();
}

}  // namespace keel::storage
