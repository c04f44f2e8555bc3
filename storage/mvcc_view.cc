#include "storage/mvcc_view.h"

#include "absl/strings/str_cat.h"

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

absl::StatusOr<bool> BatchView::Get(Cf cf, std::string_view key, std::string* value) {
  const rocksdb::Status s =
      batch_->GetFromBatchAndDB(db_, rocksdb::ReadOptions(), cfs_[static_cast<int>(cf)],
                                rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "get");
  return true;
}

std::unique_ptr<rocksdb::Iterator> BatchView::NewIterator(Cf cf, std::string upper_bound) {
  rocksdb::ReadOptions ro;
  BoundState* state = SetBound(&ro, std::move(upper_bound));
  rocksdb::ColumnFamilyHandle* h = cfs_[static_cast<int>(cf)];
  rocksdb::Iterator* base = db_->NewIterator(ro, h);
  // The base iterator holds its own copy of `ro`, whose bound lives in `state`; the
  // merged iterator owns the base, so freeing `state` with it is safe.
  return Attach(batch_->NewIteratorWithBase(h, base), state);
}

}  // namespace keel::storage::mvcc
