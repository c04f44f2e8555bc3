#include "storage/mvcc_view.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace keel::storage::mvcc {
namespace {

// Heap state an iterator keeps alive: ReadOptions hold a pointer to the bound.
struct BoundState {
  std::string bound;
  rocksdb::Slice slice;
};

void DeleteBoundState(void* arg1, void* /*arg2*/) { delete static_cast<BoundState*>(arg1); }

// Fills `ro` with the upper bound and returns the state to free with the iterator.
BoundState* SetBound(rocksdb::ReadOptions* ro, std::string upper_bound) {
  if (upper_bound.empty()) return nullptr;
  auto* state = new BoundState{std::move(upper_bound), {}};
  state->slice = rocksdb::Slice(state->bound);
  ro->iterate_upper_bound = &state->slice;
  return state;
}

std::unique_ptr<rocksdb::Iterator> Attach(rocksdb::Iterator* it, BoundState* state) {
  if (state != nullptr) it->RegisterCleanup(&DeleteBoundState, state, nullptr);
  return std::unique_ptr<rocksdb::Iterator>(it);
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat("rocksdb ", std::string(what), ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsIOError()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

absl::StatusOr<bool> SnapshotView::Get(Cf cf, std::string_view key, std::string* value) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  const rocksdb::Status s =
      db_->Get(ro, cfs_[static_cast<int>(cf)], rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "get");
  return true;
}

std::unique_ptr<rocksdb::Iterator> SnapshotView::NewIterator(Cf cf, std::string upper_bound) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  BoundState* state = SetBound(&ro, std::move(upper_bound));
  return Attach(db_->NewIterator(ro, cfs_[static_cast<int>(cf)]), state);
}

absl::Status BatchView::Put(Cf cf, std::string_view key, std::string_view value) {
  const rocksdb::Slice k(key.data(), key.size());
  const rocksdb::Slice v(value.data(), value.size());
  if (cf != Cf::kHistory && cf != Cf::kEvents) {
    return FromRocks(batch_->Put(handle(cf), k, v), "batch put");
  }
  if (cf == Cf::kHistory) history_pending_ = true;
  return FromRocks(batch_->GetWriteBatch()->Put(handle(cf), k, v), "batch put");
}

absl::Status BatchView::PopSavePoint() {
  return FromRocks(batch_->PopSavePoint(), "pop save point");
}

absl::Status BatchView::RollbackToSavePoint() {
  RETURN_IF_ERROR(FromRocks(batch_->RollbackToSavePoint(), "rollback"));
  // WriteBatchWithIndex rebuilds its index from the whole remaining batch.
  history_pending_ = false;
  history_scanned_ = batch_->GetWriteBatch()->Count();
  return absl::OkStatus();
}

absl::Status BatchView::IndexPendingHistory() {
  if (!history_pending_) return absl::OkStatus();
  // Collects the history records at or after `from` (counted in batch order). Apply
  // batches hold Put and Delete records only; any other kind fails the scan, so a
  // miscount cannot go unnoticed.
  struct Collector : rocksdb::WriteBatch::Handler {
    uint32_t history_id = 0;
    uint32_t from = 0;
    uint32_t seen = 0;
    std::vector<std::pair<std::string, std::optional<std::string>>> records;
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                          const rocksdb::Slice& value) override {
      if (seen++ >= from && cf == history_id)
        records.emplace_back(key.ToString(), value.ToString());
      return rocksdb::Status::OK();
    }
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      if (seen++ >= from && cf == history_id) records.emplace_back(key.ToString(), std::nullopt);
      return rocksdb::Status::OK();
    }
    rocksdb::Status SingleDeleteCF(uint32_t, const rocksdb::Slice&) override { return Other(); }
    rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
      return Other();
    }
    rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
      return Other();
    }
    static rocksdb::Status Other() {
      return rocksdb::Status::NotSupported("an apply batch record other than put or delete");
    }
  } collector;
  collector.history_id = handle(Cf::kHistory)->GetID();
  collector.from = history_scanned_;
  RETURN_IF_ERROR(FromRocks(batch_->GetWriteBatch()->Iterate(&collector), "scan batch"));
  for (const auto& [key, value] : collector.records) {
    const rocksdb::Status s = value.has_value() ? batch_->Put(handle(Cf::kHistory), key, *value)
                                                : batch_->Delete(handle(Cf::kHistory), key);
    RETURN_IF_ERROR(FromRocks(s, "index history"));
  }
  history_pending_ = false;
  history_scanned_ = batch_->GetWriteBatch()->Count();
  return absl::OkStatus();
}

absl::StatusOr<bool> BatchView::Get(Cf cf, std::string_view key, std::string* value) {
  if (cf == Cf::kHistory) RETURN_IF_ERROR(IndexPendingHistory());
  const rocksdb::Status s =
      batch_->GetFromBatchAndDB(db_, rocksdb::ReadOptions(), cfs_[static_cast<int>(cf)],
                                rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "get");
  return true;
}

std::unique_ptr<rocksdb::Iterator> BatchView::NewIterator(Cf cf, std::string upper_bound) {
  if (cf == Cf::kHistory) {
    const absl::Status indexed = IndexPendingHistory();
    if (!indexed.ok()) {
      return std::unique_ptr<rocksdb::Iterator>(rocksdb::NewErrorIterator(
          rocksdb::Status::Corruption("batch history index", std::string(indexed.message()))));
    }
  }
  rocksdb::ReadOptions ro;
  BoundState* state = SetBound(&ro, std::move(upper_bound));
  rocksdb::ColumnFamilyHandle* h = cfs_[static_cast<int>(cf)];
  rocksdb::Iterator* base = db_->NewIterator(ro, h);
  // The base iterator holds its own copy of `ro`, whose bound lives in `state`; the
  // merged iterator owns the base, so freeing `state` with it is safe.
  return Attach(batch_->NewIteratorWithBase(h, base), state);
}

}  // namespace keel::storage::mvcc
