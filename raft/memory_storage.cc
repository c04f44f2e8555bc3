#include "raft/memory_storage.h"

#include "absl/strings/str_cat.h"

namespace keel::raft {

MemoryStorage::MemoryStorage() { entries_.emplace_back(); }

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata().conf_state()};
}

void MemoryStorage::SetConfState(const raftpb::ConfState& conf_state) {
  *snapshot_.mutable_metadata()->mutable_conf_state() = conf_state;
}

uint64_t MemoryStorage::FirstIndex() const { return entries_[0].index() + 1; }

uint64_t MemoryStorage::LastIndex() const { return entries_[0].index() + entries_.size() - 1; }

absl::StatusOr<std::vector<raftpb::Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                                  uint64_t max_bytes) const {
  const uint64_t offset = entries_[0].index();
  if (lo <= offset) return CompactedError(lo);
  if (hi > LastIndex() + 1 || lo > hi) {
    return absl::OutOfRangeError(
        absl::StrCat("entries [", lo, ", ", hi, ") beyond last index ", LastIndex()));
  }
  std::vector<raftpb::Entry> out(entries_.begin() + (lo - offset),
                                 entries_.begin() + (hi - offset));
  LimitSize(&out, max_bytes);
  return out;
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  const uint64_t offset = entries_[0].index();
  if (i < offset) return CompactedError(i);
  if (i - offset >= entries_.size()) {
    return absl::OutOfRangeError(absl::StrCat("term of ", i, " beyond last index ", LastIndex()));
  }
  return entries_[i - offset].term();
}

absl::StatusOr<raftpb::Snapshot> MemoryStorage::GetSnapshot() const {
  if (snapshot_unavailable_) return SnapshotTemporarilyUnavailableError();
  return snapshot_;
}

absl::Status MemoryStorage::Append(const std::vector<raftpb::Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  const uint64_t first = FirstIndex();
  const uint64_t last_new = entries.back().index();
  if (last_new < first) return absl::OkStatus();  // Wholly compacted already.
  size_t skip = 0;
  if (entries[0].index() < first) skip = first - entries[0].index();
  const uint64_t start = entries[skip].index();
  if (start > LastIndex() + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("append at ", start, " leaves a gap after last index ", LastIndex()));
  }
  entries_.resize(start - entries_[0].index());  // Drop the conflicting suffix.
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
  return absl::OkStatus();
}

absl::Status MemoryStorage::ApplySnapshot(const raftpb::Snapshot& snapshot) {
  if (snapshot.metadata().index() < snapshot_.metadata().index()) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot at ", snapshot.metadata().index(),
                                                      " is older than ",
                                                      snapshot_.metadata().index()));
  }
  snapshot_ = snapshot;
  entries_.clear();
  entries_.emplace_back();
  entries_[0].set_index(snapshot.metadata().index());
  entries_[0].set_term(snapshot.metadata().term());
  return absl::OkStatus();
}

absl::StatusOr<raftpb::Snapshot> MemoryStorage::CreateSnapshot(uint64_t index,
                                                               const raftpb::ConfState& conf_state,
                                                               std::string data) {
  if (index <= snapshot_.metadata().index()) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index, " is not newer than ", snapshot_.metadata().index()));
  }
  if (index > LastIndex()) {
    return absl::OutOfRangeError(
        absl::StrCat("snapshot at ", index, " beyond last index ", LastIndex()));
  }
  snapshot_.set_data(std::move(data));
  auto* meta = snapshot_.mutable_metadata();
  meta->set_index(index);
  meta->set_term(entries_[index - entries_[0].index()].term());
  *meta->mutable_conf_state() = conf_state;
  return snapshot_;
}

absl::Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = entries_[0].index();
  if (compact_index <= offset) return CompactedError(compact_index);
  if (compact_index > LastIndex()) {
    return absl::OutOfRangeError(
        absl::StrCat("compact at ", compact_index, " beyond last index ", LastIndex()));
  }
  const size_t i = compact_index - offset;
  raftpb::Entry dummy;
  dummy.set_index(entries_[i].index());
  dummy.set_term(entries_[i].term());
  std::vector<raftpb::Entry> rest;
  rest.reserve(entries_.size() - i);
  rest.push_back(std::move(dummy));
  rest.insert(rest.end(), std::make_move_iterator(entries_.begin() + i + 1),
              std::make_move_iterator(entries_.end()));
  entries_ = std::move(rest);
  return absl::OkStatus();
}

}  // namespace keel::raft
