// KvStore: open/close, the directory layout and the state it keeps in memory.
// The apply path is in kv_store_apply.cc; see kv_store.h for the key encoding.
#include "storage/kv_store.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "rocksdb/convenience.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "storage/kv_store_internal.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_errors.h"
#include "storage/mvcc_fs.h"
#include "storage/mvcc_range.h"
#include "storage/mvcc_txn.h"

namespace keel::storage {
namespace fs = std::filesystem;
using mvcc::Cf;
using mvcc::FromRocks;

namespace {

constexpr char kCurrentFile[] = "CURRENT";
constexpr const char* kCfNames[mvcc::kNumCfs] = {"default", "kv", "history", "lease", "events"};

rocksdb::CompressionType Pick(rocksdb::CompressionType wanted) {
  for (auto t : rocksdb::GetSupportedCompressions()) {
    if (t == wanted) return t;
  }
  return rocksdb::kNoCompression;
}

rocksdb::ColumnFamilyOptions CfOptions(const KvStoreOptions& o,
                                       const std::shared_ptr<rocksdb::Cache>& cache, Cf cf) {
  rocksdb::ColumnFamilyOptions opts;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  if (cf != Cf::kHistory && cf != Cf::kEvents) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = true;
  }
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  opts.write_buffer_size = o.write_buffer_bytes;
  opts.compression = Pick(rocksdb::kLZ4Compression);
  opts.bottommost_compression = Pick(rocksdb::kZSTD);
  opts.level_compaction_dynamic_level_bytes = true;
  return opts;
}

}  // namespace

KvStore::KvStore(KvStoreOptions options) : options_(std::move(options)) {
  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
}

KvStore::~KvStore() { CloseDb(); }

absl::StatusOr<std::unique_ptr<KvStore>> KvStore::Open(KvStoreOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("KvStore: empty dir");
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("mkdir ", options.dir, ": ", ec.message()));
  std::unique_ptr<KvStore> store(new KvStore(std::move(options)));
  const std::string& dir = store->options_.dir;
  const std::string current = dir + "/" + kCurrentFile;
  if (fs::exists(current)) {
    ASSIGN_OR_RETURN(store->db_name_, mvcc::ReadFileToString(current));
  } else {
    store->db_name_ = "db-1";
    RETURN_IF_ERROR(mvcc::WriteFileDurably(current, store->db_name_));
  }
  if (!absl::StartsWith(store->db_name_, "db-")) {
    return absl::DataLossError(absl::StrCat("KvStore: bad CURRENT in ", dir));
  }
  // Leftovers of an interrupted snapshot install: staged or superseded databases.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == store->db_name_) continue;
    if (absl::StartsWith(name, "db-") || absl::EndsWith(name, ".tmp")) {
      fs::remove_all(entry.path(), ec);
    }
  }
  RETURN_IF_ERROR(store->OpenDb(dir + "/" + store->db_name_));
  RETURN_IF_ERROR(store->LoadState());
  RETURN_IF_ERROR(store->CompactPhysical());
  return store;
}

absl::Status KvStore::OpenDb(const std::string& db_dir) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  // A crash may lose a suffix of unsynced batches but never half of one (kv_store.h).
  db_opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < mvcc::kNumCfs; ++i) {
    descs.emplace_back(kCfNames[i], CfOptions(options_, block_cache_, static_cast<Cf>(i)));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(db_opts, db_dir, descs, &handles, &raw),
                            absl::StrCat("open ", db_dir)));
  db_.reset(raw);
  KEEL_CHECK(handles.size() == mvcc::kNumCfs);
  for (int i = 0; i < mvcc::kNumCfs; ++i) cfs_[i] = handles[i];
  return absl::OkStatus();
}

void KvStore::CloseDb() {
  if (db_ == nullptr) return;
  for (auto*& h : cfs_) {
    if (h != nullptr) (void)db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  (void)db_->Close();
  db_.reset();
}

absl::Status KvStore::LoadState() {
  auto read = [this](const char* key, int64_t fallback) -> absl::StatusOr<int64_t> {
    std::string v;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[0], key, &v);
    if (s.IsNotFound()) return fallback;
    RETURN_IF_ERROR(FromRocks(s, "read meta"));
    if (v.size() != 8) return absl::DataLossError(absl::StrCat("KvStore: bad meta ", key));
    return static_cast<int64_t>(mvcc::DecodeBigEndian64(v));
  };
  {
    // A fresh db (nothing ever applied) is stamped with this format; any other db must
    // carry it already (a format 1 db has data but no record: refused, never misread).
    std::string format;
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cfs_[0], kv_internal::kMetaFormat, &format);
    if (!s.IsNotFound()) RETURN_IF_ERROR(FromRocks(s, "read meta"));
    std::string applied_record;
    const rocksdb::Status a =
        db_->Get(rocksdb::ReadOptions(), cfs_[0], kv_internal::kMetaApplied, &applied_record);
    if (!a.IsNotFound()) RETURN_IF_ERROR(FromRocks(a, "read meta"));
    if (s.IsNotFound() && a.IsNotFound()) {
      format = mvcc::BigEndian64(mvcc::kFormatVersion);
      rocksdb::WriteOptions wo;
      wo.sync = true;
      RETURN_IF_ERROR(
          FromRocks(db_->Put(wo, cfs_[0], kv_internal::kMetaFormat, format), "write meta"));
    }
    RETURN_IF_ERROR(kv_internal::CheckFormat(
        s.IsNotFound() && !a.IsNotFound() ? std::nullopt : std::optional(format),
        options_.dir + "/" + db_name_));
  }
  ASSIGN_OR_RETURN(int64_t applied, read(kv_internal::kMetaApplied, 0));
  ASSIGN_OR_RETURN(int64_t revision, read(kv_internal::kMetaRevision, 1));
  ASSIGN_OR_RETURN(int64_t compact, read(kv_internal::kMetaCompact, 0));
  ASSIGN_OR_RETURN(compact_done_, read(kv_internal::kMetaCompactDone, 0));
  ASSIGN_OR_RETURN(max_lease_id_, read(kv_internal::kMetaMaxLease, 0));
  // A data dir written before the event log existed: its log starts now.
  ASSIGN_OR_RETURN(int64_t events_from, read(kv_internal::kMetaEventsFrom, 0));
  if (events_from == 0) {
    events_from = revision == 1 ? 1 : revision + 1;
    RETURN_IF_ERROR(
        FromRocks(db_->Put(rocksdb::WriteOptions(), cfs_[0], kv_internal::kMetaEventsFrom,
                           mvcc::BigEndian64(static_cast<uint64_t>(events_from))),
                  "write meta"));
  }
  applied_index_ = static_cast<uint64_t>(applied);
  revision_ = revision;
  compact_revision_ = compact;
  events_from_ = events_from;
  return LoadAlarms();  // kv_store_maintenance.cc
}

absl::StatusOr<std::string> KvStore::Members() const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::string v;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cfs_[0], kv_internal::kMetaMembers, &v);
  if (s.IsNotFound()) return std::string();
  RETURN_IF_ERROR(FromRocks(s, "read members"));
  return v;
}

absl::Status KvStore::Sync() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return FromRocks(db_->FlushWAL(/*sync=*/true), "sync wal");
}

absl::StatusOr<etcdserverpb::RangeResponse> KvStore::Range(
    const etcdserverpb::RangeRequest& r) const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  return mvcc::ExecuteRange(snap.view(), r, revs.first, revs.second);
}

absl::StatusOr<mvcc::EventsChunk> KvStore::ReadEvents(const mvcc::KeyInterval& iv, int64_t from_rev,
                                                      bool prev_kv,
                                                      const mvcc::EventReadLimits& limits) const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  // The floor as of the snapshot: physical compaction only deletes below a compaction
  // point that is already recorded, so everything at or above it is still there.
  if (from_rev < std::max(revs.second, events_from_.load())) return mvcc::ErrCompacted();
  return mvcc::ReadEvents(snap.view(), iv, from_rev, revs.first, prev_kv, limits);
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> KvStore::LeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& r) const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  std::string record;
  ASSIGN_OR_RETURN(bool found, snap.view().Get(Cf::kLease, mvcc::LeaseRecordKey(r.id()), &record));
  if (!found) return mvcc::ErrLeaseNotFound();
  internalpb::StoredLease lease;
  if (!lease.ParseFromString(record)) return absl::DataLossError("KvStore: bad lease record");
  etcdserverpb::LeaseTimeToLiveResponse resp;
  resp.mutable_header()->set_revision(revs.first);
  resp.set_id(r.id());
  resp.set_grantedttl(lease.granted_ttl_s());
  resp.set_ttl(lease.remaining_ttl_s() > 0 ? lease.remaining_ttl_s() : lease.granted_ttl_s());
  if (r.keys()) {
    const std::string prefix = mvcc::LeaseAttachPrefix(r.id());
    auto it = snap.view().NewIterator(Cf::kLease, "");
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      resp.add_keys(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scan lease keys"));
  }
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseLeasesResponse> KvStore::LeaseLeases() const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  ASSIGN_OR_RETURN(auto revs, snap.Revisions());
  etcdserverpb::LeaseLeasesResponse resp;
  resp.mutable_header()->set_revision(revs.first);
  auto it = snap.view().NewIterator(Cf::kLease, "M");
  for (it->Seek("L"); it->Valid() && it->key().starts_with("L"); it->Next()) {
    if (it->key().size() != 9) return absl::DataLossError("KvStore: bad lease key");
    resp.add_leases()->set_id(
        static_cast<int64_t>(mvcc::DecodeBigEndian64(std::string_view(it->key().data() + 1, 8))));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan leases"));
  return resp;
}

absl::StatusOr<std::vector<internalpb::StoredLease>> KvStore::ListLeases() const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  kv_internal::ReadSnapshot snap(db_.get(), cfs_);
  std::vector<internalpb::StoredLease> leases;
  auto it = snap.view().NewIterator(Cf::kLease, "M");
  for (it->Seek("L"); it->Valid() && it->key().starts_with("L"); it->Next()) {
    if (!leases.emplace_back().ParseFromArray(it->value().data(),
                                              static_cast<int>(it->value().size()))) {
      return absl::DataLossError("KvStore: bad lease record");
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan leases"));
  return leases;
}

std::optional<uint64_t> KvStore::RocksIntProperty(const std::string& name) const {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  uint64_t total = 0;
  for (auto* cf : cfs_) {
    uint64_t v = 0;
    if (!db_->GetIntProperty(cf, name, &v)) return std::nullopt;
    total += v;
  }
  return total;
}

absl::Status KvStore::CreateCheckpoint(const raftpb::SnapshotMetadata& metadata,
                                       const std::string& checkpoint_dir) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  if (metadata.index() != applied_index_.load()) {
    return absl::FailedPreconditionError(absl::StrCat("KvStore: snapshot index ", metadata.index(),
                                                      " != applied index ", applied_index_.load()));
  }
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  // log_size_for_flush = 0: flush the memtables first, so the checkpoint is SST files
  // only (no WAL to replay on the receiving side).
  RETURN_IF_ERROR(FromRocks(cp->CreateCheckpoint(checkpoint_dir, /*log_size_for_flush=*/0),
                            "create checkpoint"));
  return mvcc::FsyncPath(checkpoint_dir);
}

absl::Status KvStore::InstallStaged(const std::string& staged_dir, uint64_t expected_index) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  {
    // Verify the staged state before touching the live one.
    ASSIGN_OR_RETURN(uint64_t staged_index, kv_internal::ReadAppliedIndex(staged_dir));
    if (staged_index != expected_index) {
      return absl::FailedPreconditionError(absl::StrCat(
          "KvStore: staged snapshot at index ", staged_index, ", expected ", expected_index));
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(db_name_.substr(3), &n)) {
    return absl::DataLossError("KvStore: bad db name " + db_name_);
  }
  const std::string new_name = absl::StrCat("db-", n + 1);
  const std::string new_path = options_.dir + "/" + new_name;
  std::error_code ec;
  fs::remove_all(new_path, ec);
  fs::rename(staged_dir, new_path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("rename ", staged_dir, ": ", ec.message()));
  RETURN_IF_ERROR(mvcc::FsyncPath(options_.dir));
  std::unique_lock<std::shared_mutex> db_lock(db_mu_);
  CloseDb();
  // The commit point: before it a crash reopens the old db, after it the new one.
  RETURN_IF_ERROR(mvcc::WriteFileDurably(options_.dir + "/" + kCurrentFile, new_name));
  const std::string old_path = options_.dir + "/" + db_name_;
  db_name_ = new_name;
  RETURN_IF_ERROR(OpenDb(new_path));
  RETURN_IF_ERROR(LoadState());
  fs::remove_all(old_path, ec);
  return absl::OkStatus();
}

}  // namespace keel::storage
