// RaftLogStore on RocksDB.
//
// Key layout (full description in raft_log_keys.h): one byte of record kind, the group id
// (8 bytes big-endian), and for entries the index (8 bytes big-endian), so one group's
// entries are contiguous and in index order:
//   0x01|group|index -> crc32c|Entry     0x02|group -> crc32c|HardState
//   0x03|group -> crc32c|truncated index,term      0x04|group -> crc32c|Snapshot
//
// RocksDB options, chosen for a write-once, read-rarely, deleted-soon log:
//  - WAL on, WriteOptions.sync per Save (one fdatasync per Ready; use_fsync off because
//    fdatasync covers the data and the WAL's size), manual_wal_flush off (every Write
//    reaches the file before it returns).
//  - wal_recovery_mode = kTolerateCorruptedTailRecords: a torn last record (a write that
//    never returned) is dropped, but corruption anywhere else refuses to open. The default,
//    kPointInTimeRecovery, would silently stop replay at a damaged record in the middle of
//    the WAL and lose every acknowledged write after it.
//  - No bloom filter: reads are iterator scans and point reads of keys that exist; the hot
//    tail is served from memory, so filters would cost memory and CPU for nothing.
//  - No compression in L0/L1 (entries usually die there, removed by the range delete after
//    a snapshot; compressing them would burn CPU on the write path's flushes), LZ4 below
//    for a log that stays long (a follower far behind, snapshots turned off).
//  - 32 MiB write buffers (x3), a small 8 MiB block cache, 16 KiB blocks (a lagging
//    follower reads runs of consecutive entries), dynamic level sizes.
//  - paranoid_checks on, info log at WARN and at most 4 files.
#include "storage/raft_log_store.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/failpoint.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/crc32c.h"
#include "storage/raft_log_keys.h"

namespace keel::storage {
namespace keys = raft_log_keys;
namespace {

// Memory an entry costs in the tail cache beyond its payload (deque slot, proto object).
constexpr uint64_t kCacheEntryOverheadBytes = 64;

uint64_t CacheCost(const raftpb::Entry& e) { return e.ByteSizeLong() + kCacheEntryOverheadBytes; }

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(context, ": rocksdb: ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsShutdownInProgress()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

void PutFixed32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetFixed32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
void AppendFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetFixed64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// crc32c(payload) | payload.
std::string SealRecord(std::string record_with_room) {
  PutFixed32(record_with_room.data(), Crc32c(std::string_view(record_with_room).substr(4)));
  return record_with_room;
}
std::string EncodeProto(const google::protobuf::MessageLite& msg) {
  std::string out(4, '\0');
  msg.AppendToString(&out);
  return SealRecord(std::move(out));
}
std::string EncodeTruncated(uint64_t index, uint64_t term) {
  std::string out(4, '\0');
  AppendFixed64(&out, index);
  AppendFixed64(&out, term);
  return SealRecord(std::move(out));
}

// The payload of a record whose checksum holds; kDataLoss naming `what` otherwise.
absl::StatusOr<std::string_view> OpenRecord(std::string_view value, absl::string_view what) {
  if (value.size() < 4) {
    return absl::DataLossError(
        absl::StrCat(what, ": record of ", value.size(), " bytes has no room for its checksum"));
  }
  const uint32_t stored = GetFixed32(value.data());
  std::string_view payload = value.substr(4);
  const uint32_t computed = Crc32c(payload);
  if (stored != computed) {
    return absl::DataLossError(absl::StrCat(what, ": checksum mismatch (stored 0x",
                                            absl::Hex(stored), ", computed 0x", absl::Hex(computed),
                                            ")"));
  }
  return payload;
}

absl::Status DecodeProto(std::string_view value, absl::string_view what,
                         google::protobuf::MessageLite* msg) {
  ASSIGN_OR_RETURN(std::string_view payload, OpenRecord(value, what));
  if (!msg->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(absl::StrCat(what, ": checksum holds but payload does not parse"));
  }
  return absl::OkStatus();
}

absl::StatusOr<raftpb::Entry> DecodeEntry(std::string_view value, uint64_t index) {
  const std::string what = absl::StrCat("raft log entry ", index);
  raftpb::Entry e;
  RETURN_IF_ERROR(DecodeProto(value, what, &e));
  if (e.index() != index) {
    return absl::DataLossError(absl::StrCat(what, ": record holds index ", e.index()));
  }
  return e;
}

rocksdb::Options LogDbOptions(bool create_if_missing) {
  rocksdb::Options o;
  o.create_if_missing = create_if_missing;
  o.paranoid_checks = true;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.manual_wal_flush = false;
  o.use_fsync = false;
  o.write_buffer_size = 32 << 20;
  o.max_write_buffer_number = 3;
  o.level_compaction_dynamic_level_bytes = true;
  o.max_background_jobs = 2;
  o.compression_per_level = {rocksdb::kNoCompression,  rocksdb::kNoCompression,
                             rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                             rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                             rocksdb::kLZ4Compression};
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.keep_log_file_num = 4;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy = nullptr;
  table.block_cache = rocksdb::NewLRUCache(8 << 20);
  table.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RaftLogStore>> RaftLogStore::Open(
    const std::string& dir, const RaftLogStoreOptions& options) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(LogDbOptions(options.create_if_missing), dir, &raw);
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("opening raft log in ", dir)));
  std::unique_ptr<RaftLogStore> store(new RaftLogStore(dir, options, raw));
  absl::Status loaded = store->Load();
  if (!loaded.ok()) {
    return absl::Status(
        loaded.code(),
        absl::StrCat("raft log in ", dir, " (group ", options.group_id, ")",
                     absl::IsDataLoss(loaded) ? " is corrupt: " : ": ", loaded.message()));
  }
  return store;
}

RaftLogStore::RaftLogStore(std::string dir, const RaftLogStoreOptions& options, rocksdb::DB* db)
    : dir_(std::move(dir)), options_(options), db_(db) {}

RaftLogStore::~RaftLogStore() {
  KEEL_CHECK(pre_write_view_ == nullptr);
  // A failed Close (e.g. after an I/O error) has nothing left to lose: every write that
  // returned OK is in the WAL.
  (void)db_->Close();
}

absl::Status RaftLogStore::LoadRecords() {
  const uint64_t g = options_.group_id;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string value;

  rocksdb::Status s = db_->Get(ro, keys::kFormatKeyView, &value);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(FromRocks(db_->Put(wo, keys::kFormatKeyView, keys::kFormatValue),
                              "writing the format marker"));
  } else {
    RETURN_IF_ERROR(FromRocks(s, "reading the format marker"));
    if (value != keys::kFormatValue) {
      return absl::FailedPreconditionError(absl::StrCat("unknown format '", value, "', expected '",
                                                        std::string(keys::kFormatValue), "'"));
    }
  }

  s = db_->Get(ro, keys::GroupKey(keys::kHardStateKind, g), &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "reading the hard state"));
    RETURN_IF_ERROR(DecodeProto(value, "hard state", &hard_state_));
  }
  s = db_->Get(ro, keys::GroupKey(keys::kSnapshotKind, g), &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "reading the snapshot record"));
    RETURN_IF_ERROR(DecodeProto(value, "snapshot record", &snapshot_));
  }
  s = db_->Get(ro, keys::GroupKey(keys::kTruncatedStateKind, g), &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "reading the truncated state"));
    ASSIGN_OR_RETURN(std::string_view payload, OpenRecord(value, "truncated state"));
    if (payload.size() != 16) {
      return absl::DataLossError(
          absl::StrCat("truncated state: payload of ", payload.size(), " bytes, expected 16"));
    }
    truncated_index_ = GetFixed64(payload.data());
    truncated_term_ = GetFixed64(payload.data() + 8);
  }
  return absl::OkStatus();
}

absl::Status RaftLogStore::Load() {
  RETURN_IF_ERROR(LoadRecords());
  const uint64_t g = options_.group_id;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  // The last index is the highest entry key of this group, if any lies above the
  // compaction point.
  last_index_ = truncated_index_;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    it->SeekForPrev(keys::EntryKey(g, std::numeric_limits<uint64_t>::max()));
    uint64_t index = 0;
    if (it->Valid() && keys::ParseEntryKey(it->key().ToStringView(), g, &index)) {
      if (index <= truncated_index_) {
        return absl::DataLossError(absl::StrCat("raft log entry ", index,
                                                " survives at or below the compaction point ",
                                                truncated_index_));
      }
      last_index_ = index;
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "seeking the last entry"));
  }
  if (snapshot_.metadata().index() < truncated_index_) {
    return absl::DataLossError(absl::StrCat("snapshot record at ", snapshot_.metadata().index(),
                                            " is below the compaction point ", truncated_index_));
  }
  if (hard_state_.commit() > last_index_) {
    return absl::DataLossError(absl::StrCat("hard state commit ", hard_state_.commit(),
                                            " is beyond the last index ", last_index_,
                                            ": committed entries are missing"));
  }
  RETURN_IF_ERROR(LoadTail());
  const uint64_t first = truncated_index_ + 1;
  const uint64_t cache_first = CacheFirstIndex();
  if (first < cache_first) {
    RETURN_IF_ERROR(
        VerifyRange(first, options_.verify_whole_log_on_open ? cache_first : first + 1));
  }
  return absl::OkStatus();
}

// Reads the newest entries backwards into the cache, checking each one.
absl::Status RaftLogStore::LoadTail() {
  if (last_index_ == truncated_index_) return absl::OkStatus();
  const uint64_t g = options_.group_id;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  const std::string lower = keys::EntryKey(g, truncated_index_ + 1);
  rocksdb::Slice lower_bound(lower);
  ro.iterate_lower_bound = &lower_bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  uint64_t expect = last_index_;
  std::deque<raftpb::Entry> tail;
  uint64_t bytes = 0;
  bool complete = false;  // Stopped by the byte budget or reached the first entry.
  for (it->SeekForPrev(keys::EntryKey(g, last_index_)); it->Valid(); it->Prev()) {
    uint64_t index = 0;
    if (!keys::ParseEntryKey(it->key().ToStringView(), g, &index)) break;
    if (index != expect) {
      return absl::DataLossError(absl::StrCat("raft log entry ", expect,
                                              " is missing (next stored below is ", index, ")"));
    }
    ASSIGN_OR_RETURN(raftpb::Entry e, DecodeEntry(it->value().ToStringView(), index));
    if (!tail.empty() && e.term() > tail.front().term()) {
      return absl::DataLossError(absl::StrCat("raft log entry ", index, " has term ", e.term(),
                                              ", above the term ", tail.front().term(),
                                              " of the entry after it"));
    }
    const uint64_t cost = CacheCost(e);
    if (!tail.empty() && bytes + cost > options_.tail_cache_bytes_max) {
      complete = true;
      break;
    }
    bytes += cost;
    tail.push_front(std::move(e));
    if (expect == truncated_index_ + 1) {
      complete = true;
      break;
    }
    --expect;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading raft log entry ", expect)));
  if (!complete) return absl::DataLossError(absl::StrCat("raft log entry ", expect, " is missing"));
  if (tail.front().index() == truncated_index_ + 1 && tail.front().term() < truncated_term_) {
    return absl::DataLossError(
        absl::StrCat("raft log entry ", tail.front().index(), " has term ", tail.front().term(),
                     ", below the compaction point's term ", truncated_term_));
  }
  tail_ = std::move(tail);
  tail_bytes_ = bytes;
  return absl::OkStatus();
}

absl::Status RaftLogStore::VerifyRange(uint64_t lo, uint64_t hi) const {
  std::vector<raftpb::Entry> chunk;
  uint64_t prev_term = lo == truncated_index_ + 1 ? truncated_term_ : 0;
  // In chunks, so a whole-log check holds a bounded amount of memory.
  constexpr uint64_t kChunkBytes = 4 << 20;
  while (lo < hi) {
    chunk.clear();
    uint64_t total = 0;
    RETURN_IF_ERROR(ReadEntries(nullptr, lo, hi, kChunkBytes, &total, &chunk));
    for (const raftpb::Entry& e : chunk) {
      if (e.term() < prev_term) {
        return absl::DataLossError(absl::StrCat("raft log entry ", e.index(), " has term ",
                                                e.term(), ", below the term ", prev_term,
                                                " of the entry before it"));
      }
      prev_term = e.term();
    }
    lo += chunk.size();
  }
  return absl::OkStatus();
}

absl::Status RaftLogStore::ReadEntries(const rocksdb::Snapshot* view, uint64_t lo, uint64_t hi,
                                       uint64_t max_bytes, uint64_t* total_bytes,
                                       std::vector<raftpb::Entry>* out) const {
  const uint64_t g = options_.group_id;
  rocksdb::ReadOptions ro;
  ro.snapshot = view;
  ro.verify_checksums = true;
  const std::string upper = keys::EntryKey(g, hi);
  rocksdb::Slice upper_bound(upper);
  ro.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  uint64_t expect = lo;
  for (it->Seek(keys::EntryKey(g, lo)); it->Valid() && expect < hi; it->Next()) {
    uint64_t index = 0;
    if (!keys::ParseEntryKey(it->key().ToStringView(), g, &index)) break;
    if (index != expect) {
      return absl::DataLossError(
          absl::StrCat("raft log entry ", expect, " is missing (next stored is ", index, ")"));
    }
    ASSIGN_OR_RETURN(raftpb::Entry e, DecodeEntry(it->value().ToStringView(), index));
    const uint64_t size = e.ByteSizeLong();
    if (!out->empty() && *total_bytes + size > max_bytes) return absl::OkStatus();
    *total_bytes += size;
    out->push_back(std::move(e));
    ++expect;
  }
  RETURN_IF_ERROR(
      FromRocks(it->status(), absl::StrCat("reading raft log entries from index ", expect)));
  if (expect < hi) {
    return absl::DataLossError(absl::StrCat("raft log entry ", expect, " is missing"));
  }
  return absl::OkStatus();
}

absl::StatusOr<raftpb::Entry> RaftLogStore::ReadEntry(const rocksdb::Snapshot* view,
                                                      uint64_t index) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = view;
  ro.verify_checksums = true;
  std::string value;
  rocksdb::Status s = db_->Get(ro, keys::EntryKey(options_.group_id, index), &value);
  if (s.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("raft log entry ", index, " is missing"));
  }
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("reading raft log entry ", index)));
  return DecodeEntry(value, index);
}

absl::StatusOr<raft::InitialState> RaftLogStore::GetInitialState() const {
  std::lock_guard<std::mutex> l(mu_);
  return raft::InitialState{hard_state_, snapshot_.metadata().conf_state()};
}

uint64_t RaftLogStore::FirstIndex() const {
  std::lock_guard<std::mutex> l(mu_);
  return truncated_index_ + 1;
}

uint64_t RaftLogStore::LastIndex() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_index_;
}

absl::StatusOr<raftpb::Snapshot> RaftLogStore::GetSnapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return snapshot_;
}

RaftLogStoreStats RaftLogStore::stats() const {
  return RaftLogStoreStats{tail_cache_hits_.load(), db_reads_.load(), saves_.load()};
}

uint64_t RaftLogStore::CacheFirstIndex() const {
  return tail_.empty() ? last_index_ + 1 : tail_.front().index();
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLogStore::Entries(uint64_t lo, uint64_t hi,
                                                                 uint64_t max_bytes) const {
  // Held across the RocksDB read too: the state and pre_write_view_ must stay as they are
  // while we read. Writers do not hold mu_ during their fsync, so this never waits on one.
  std::lock_guard<std::mutex> l(mu_);
  if (lo <= truncated_index_) return raft::CompactedError(lo);
  if (hi > last_index_ + 1 || lo > hi) {
    return absl::OutOfRangeError(
        absl::StrCat("entries [", lo, ", ", hi, ") beyond last index ", last_index_));
  }
  std::vector<raftpb::Entry> out;
  if (lo == hi) return out;
  uint64_t total = 0;
  const uint64_t cache_first = CacheFirstIndex();
  if (lo < cache_first) {
    db_reads_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t cold_hi = std::min(hi, cache_first);
    RETURN_IF_ERROR(ReadEntries(pre_write_view_, lo, cold_hi, max_bytes, &total, &out));
    if (out.size() < cold_hi - lo) return out;  // The byte limit stopped it.
  } else {
    tail_cache_hits_.fetch_add(1, std::memory_order_relaxed);
  }
  for (uint64_t i = std::max(lo, cache_first); i < hi; ++i) {
    const raftpb::Entry& e = tail_[i - cache_first];
    const uint64_t size = e.ByteSizeLong();
    if (!out.empty() && total + size > max_bytes) break;
    total += size;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> RaftLogStore::Term(uint64_t i) const {
  std::lock_guard<std::mutex> l(mu_);
  return TermLocked(i);
}

absl::StatusOr<uint64_t> RaftLogStore::TermLocked(uint64_t i) const {
  if (i < truncated_index_) return raft::CompactedError(i);
  if (i == truncated_index_) return truncated_term_;
  if (i > last_index_) {
    return absl::OutOfRangeError(absl::StrCat("term of ", i, " beyond last index ", last_index_));
  }
  const uint64_t cache_first = CacheFirstIndex();
  if (i >= cache_first) {
    tail_cache_hits_.fetch_add(1, std::memory_order_relaxed);
    return tail_[i - cache_first].term();
  }
  db_reads_.fetch_add(1, std::memory_order_relaxed);
  ASSIGN_OR_RETURN(raftpb::Entry e, ReadEntry(pre_write_view_, i));
  return e.term();
}

absl::Status RaftLogStore::Write(rocksdb::WriteBatch* batch, bool overwrites, bool sync) {
  if (overwrites) {
    std::lock_guard<std::mutex> l(mu_);
    pre_write_view_ = db_->GetSnapshot();
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  if (sync) KEEL_FAILPOINT(failpoint::DelayFsync());  // A slow disk, in chaos tests.
  absl::Status status = FromRocks(db_->Write(wo, batch), "writing the raft log");
  if (!status.ok()) ReleasePreWriteView();
  return status;
}

void RaftLogStore::ReleasePreWriteView() {
  if (pre_write_view_ == nullptr) return;
  std::lock_guard<std::mutex> l(mu_);
  db_->ReleaseSnapshot(pre_write_view_);
  pre_write_view_ = nullptr;
}

// Adds `entries` to `batch` for a log [first, *last]: skips those below `first`, replaces
// those at or above their start, deletes the stored suffix beyond them. *skip is how many
// were skipped (entries.size() if none is left).
absl::Status RaftLogStore::PlanAppend(const std::vector<raftpb::Entry>& entries, uint64_t first,
                                      rocksdb::WriteBatch* batch, uint64_t* last, bool* overwrites,
                                      size_t* skip) const {
  const uint64_t g = options_.group_id;
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index() != entries[i - 1].index() + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entries not contiguous: ", entries[i - 1].index(), " then ", entries[i].index()));
    }
  }
  *skip = entries.size();  // Entries wholly compacted already are skipped.
  if (entries.empty() || entries.back().index() < first) return absl::OkStatus();
  const size_t n = entries[0].index() < first ? first - entries[0].index() : 0;
  const uint64_t start = entries[n].index();
  if (start > *last + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("append at ", start, " leaves a gap after last index ", *last));
  }
  if (start <= *last) *overwrites = true;
  for (size_t i = n; i < entries.size(); ++i) {
    batch->Put(keys::EntryKey(g, entries[i].index()), EncodeProto(entries[i]));
  }
  const uint64_t end = entries.back().index();
  if (*last > end) {
    // The conflicting suffix beyond the new entries goes in the same batch.
    batch->DeleteRange(keys::EntryKey(g, end + 1), keys::EntryKey(g, *last + 1));
  }
  *last = end;
  *skip = n;
  return absl::OkStatus();
}

absl::Status RaftLogStore::Save(const raftpb::HardState* hard_state,
                                const std::vector<raftpb::Entry>& entries,
                                const raftpb::SnapshotMetadata* snapshot, bool sync,
                                std::string_view snapshot_data) {
  std::lock_guard<std::mutex> w(write_mu_);
  const uint64_t g = options_.group_id;
  rocksdb::WriteBatch batch;
  uint64_t new_truncated_index = truncated_index_;
  uint64_t new_truncated_term = truncated_term_;
  uint64_t new_last = last_index_;
  bool overwrites = false;
  raftpb::Snapshot new_snapshot;

  if (snapshot != nullptr) {
    if (snapshot->index() < snapshot_.metadata().index()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot at ", snapshot->index(), " is older than ", snapshot_.metadata().index()));
    }
    new_snapshot.set_data(std::string(snapshot_data));
    *new_snapshot.mutable_metadata() = *snapshot;
    if (last_index_ > truncated_index_) {
      batch.DeleteRange(keys::EntryKey(g, truncated_index_ + 1),
                        keys::EntryKey(g, last_index_ + 1));
      overwrites = true;
    }
    batch.Put(keys::GroupKey(keys::kSnapshotKind, g), EncodeProto(new_snapshot));
    new_truncated_index = snapshot->index();
    new_truncated_term = snapshot->term();
    batch.Put(keys::GroupKey(keys::kTruncatedStateKind, g),
              EncodeTruncated(new_truncated_index, new_truncated_term));
    new_last = new_truncated_index;
  }

  size_t skip = 0;
  RETURN_IF_ERROR(
      PlanAppend(entries, new_truncated_index + 1, &batch, &new_last, &overwrites, &skip));
  if (hard_state != nullptr) {
    batch.Put(keys::GroupKey(keys::kHardStateKind, g), EncodeProto(*hard_state));
  }
  if (batch.Count() == 0) return absl::OkStatus();

  RETURN_IF_ERROR(Write(&batch, overwrites, sync));
  saves_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (snapshot != nullptr) {
      snapshot_ = std::move(new_snapshot);
      tail_.clear();
      tail_bytes_ = 0;
    }
    truncated_index_ = new_truncated_index;
    truncated_term_ = new_truncated_term;
    last_index_ = new_last;
    if (skip < entries.size()) CacheAppend(entries, skip);
    if (hard_state != nullptr) hard_state_ = *hard_state;
  }
  ReleasePreWriteView();
  return absl::OkStatus();
}

void RaftLogStore::CacheAppend(const std::vector<raftpb::Entry>& entries, size_t skip) {
  const uint64_t start = entries[skip].index();
  while (!tail_.empty() && tail_.back().index() >= start) {
    tail_bytes_ -= CacheCost(tail_.back());
    tail_.pop_back();
  }
  KEEL_CHECK(tail_.empty() || tail_.back().index() + 1 == start);
  for (size_t i = skip; i < entries.size(); ++i) {
    tail_bytes_ += CacheCost(entries[i]);
    tail_.push_back(entries[i]);
  }
  while (tail_.size() > 1 && tail_bytes_ > options_.tail_cache_bytes_max) {
    tail_bytes_ -= CacheCost(tail_.front());
    tail_.pop_front();
  }
}

void RaftLogStore::CacheDropThrough(uint64_t index) {
  while (!tail_.empty() && tail_.front().index() <= index) {
    tail_bytes_ -= CacheCost(tail_.front());
    tail_.pop_front();
  }
}

absl::StatusOr<raftpb::Snapshot> RaftLogStore::CreateSnapshot(uint64_t index,
                                                              const raftpb::ConfState& conf_state,
                                                              std::string_view data) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (index <= snapshot_.metadata().index()) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index, " is not newer than ", snapshot_.metadata().index()));
  }
  if (index > last_index_) {
    return absl::OutOfRangeError(
        absl::StrCat("snapshot at ", index, " beyond last index ", last_index_));
  }
  ASSIGN_OR_RETURN(const uint64_t term, TermLocked(index));
  raftpb::Snapshot snap;
  snap.set_data(std::string(data));
  snap.mutable_metadata()->set_index(index);
  snap.mutable_metadata()->set_term(term);
  *snap.mutable_metadata()->mutable_conf_state() = conf_state;
  rocksdb::WriteBatch batch;
  batch.Put(keys::GroupKey(keys::kSnapshotKind, options_.group_id), EncodeProto(snap));
  RETURN_IF_ERROR(Write(&batch, /*overwrites=*/false, /*sync=*/true));
  std::lock_guard<std::mutex> l(mu_);
  snapshot_ = snap;
  return snap;
}

absl::Status RaftLogStore::Compact(uint64_t compact_index) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (compact_index <= truncated_index_) return raft::CompactedError(compact_index);
  if (compact_index > last_index_) {
    return absl::OutOfRangeError(
        absl::StrCat("compact at ", compact_index, " beyond last index ", last_index_));
  }
  if (compact_index > snapshot_.metadata().index()) {
    return absl::FailedPreconditionError(
        absl::StrCat("compact at ", compact_index, " beyond the snapshot at ",
                     snapshot_.metadata().index(), ": those entries would be lost"));
  }
  ASSIGN_OR_RETURN(const uint64_t term, TermLocked(compact_index));
  const uint64_t g = options_.group_id;
  rocksdb::WriteBatch batch;
  batch.Put(keys::GroupKey(keys::kTruncatedStateKind, g), EncodeTruncated(compact_index, term));
  batch.DeleteRange(keys::EntryKey(g, truncated_index_ + 1), keys::EntryKey(g, compact_index + 1));
  RETURN_IF_ERROR(Write(&batch, /*overwrites=*/true, /*sync=*/true));
  {
    std::lock_guard<std::mutex> l(mu_);
    truncated_index_ = compact_index;
    truncated_term_ = term;
    CacheDropThrough(compact_index);
  }
  ReleasePreWriteView();
  return absl::OkStatus();
}

absl::Status RaftLogStore::SetConfState(const raftpb::ConfState& conf_state) {
  std::lock_guard<std::mutex> w(write_mu_);
  raftpb::Snapshot snap = snapshot_;
  *snap.mutable_metadata()->mutable_conf_state() = conf_state;
  rocksdb::WriteBatch batch;
  batch.Put(keys::GroupKey(keys::kSnapshotKind, options_.group_id), EncodeProto(snap));
  RETURN_IF_ERROR(Write(&batch, /*overwrites=*/false, /*sync=*/true));
  std::lock_guard<std::mutex> l(mu_);
  snapshot_ = std::move(snap);
  return absl::OkStatus();
}

}  // namespace keel::storage
