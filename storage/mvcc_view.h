// MvccView: the read interface the MVCC logic (mvcc_range, mvcc_txn) runs on, so the
// same code serves both readers and the apply path:
//   - SnapshotView reads a RocksDB snapshot (client reads; never blocks writers);
//   - BatchView reads a WriteBatchWithIndex layered over the DB (the apply path, which
//     must see the writes of earlier entries of the same batch and of its own txn).
//
// Thread-safety: a view is used by one thread at a time. Ownership: a view borrows the
// DB, the column family handles, the snapshot and the batch; they must outlive it.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/write_batch_with_index.h"

namespace keel::storage::mvcc {

// Column families of the state machine (see kv_store.h for their contents).
enum class Cf : int { kMeta = 0, kKv = 1, kHistory = 2, kLease = 3, kEvents = 4 };
inline constexpr int kNumCfs = 5;
using CfHandles = std::array<rocksdb::ColumnFamilyHandle*, kNumCfs>;

class MvccView {
 public:
  virtual ~MvccView() = default;
  // Reads `key`; false when absent.
  [[nodiscard]] virtual absl::StatusOr<bool> Get(Cf cf, std::string_view key,
                                                 std::string* value) = 0;
  // An iterator over `cf`. upper_bound (exclusive; empty: none) is a hint for speed:
  // callers still check their bounds, since a batch's own writes may lie beyond it.
  [[nodiscard]] virtual std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf,
                                                                       std::string upper_bound) = 0;
};

class SnapshotView final : public MvccView {
 public:
  SnapshotView(rocksdb::DB* db, const CfHandles& cfs, const rocksdb::Snapshot* snapshot)
      : db_(db), cfs_(cfs), snapshot_(snapshot) {}
  absl::StatusOr<bool> Get(Cf cf, std::string_view key, std::string* value) override;
  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf, std::string upper_bound) override;

 private:
  rocksdb::DB* db_;
  CfHandles cfs_;
  const rocksdb::Snapshot* snapshot_;
};

// Writes go through Put() (or batch() for deletes and meta records). The batch's
// index is a skip list that costs about as much per record as the memtable insert
// itself, so Put() indexes only what the apply path reads back: "events" records are
// never read through a BatchView and are appended unindexed; "history" records are
// appended unindexed too and indexed only when a read of "history" comes (a txn's
// range at an older revision, rare), before that read (IndexPendingHistory).
class BatchView final : public MvccView {
 public:
  BatchView(rocksdb::DB* db, const CfHandles& cfs, rocksdb::WriteBatchWithIndex* batch)
      : db_(db), cfs_(cfs), batch_(batch) {}
  absl::StatusOr<bool> Get(Cf cf, std::string_view key, std::string* value) override;
  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf, std::string upper_bound) override;

  [[nodiscard]] absl::Status Put(Cf cf, std::string_view key, std::string_view value);
  // The batch's save points, through the view: a rollback re-indexes the whole batch.
  void SetSavePoint() { batch_->SetSavePoint(); }
  [[nodiscard]] absl::Status PopSavePoint();
  [[nodiscard]] absl::Status RollbackToSavePoint();

  rocksdb::WriteBatchWithIndex* batch() { return batch_; }
  rocksdb::ColumnFamilyHandle* handle(Cf cf) const { return cfs_[static_cast<int>(cf)]; }

 private:
  // Re-puts, indexed, the "history" records appended unindexed since the last call
  // (the duplicates carry the same values, later in the batch: the result is equal).
  [[nodiscard]] absl::Status IndexPendingHistory();

  rocksdb::DB* db_;
  CfHandles cfs_;
  rocksdb::WriteBatchWithIndex* batch_;
  bool history_pending_ = false;  // Unindexed "history" records in the batch.
  uint32_t history_scanned_ = 0;  // Batch records before this one hold none of them.
};

// RocksDB status -> absl::Status (corruption -> kDataLoss).
[[nodiscard]] absl::Status FromRocks(const rocksdb::Status& s, std::string_view what);

}  // namespace keel::storage::mvcc
