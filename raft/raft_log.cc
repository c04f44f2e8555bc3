#include "raft/raft_log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace keel::raft {

RaftLog::RaftLog(LogStorage* storage, uint64_t max_committed_size_per_ready_bytes)
    : storage_(storage), max_committed_size_per_ready_bytes_(max_committed_size_per_ready_bytes) {}

absl::Status RaftLog::Init() {
  const uint64_t first = storage_->FirstIndex();
  const uint64_t last = storage_->LastIndex();
  if (first == 0 || last + 1 < first) {
    return absl::DataLossError(
        absl::StrCat("log storage bounds are inconsistent: first ", first, ", last ", last));
  }
  unstable_offset_ = last + 1;
  committed_ = first - 1;
  applied_ = first - 1;
  return absl::OkStatus();
}

uint64_t RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index() + 1;
  return storage_->FirstIndex();
}

uint64_t RaftLog::UnstableLastIndexOr(uint64_t fallback) const {
  if (!unstable_entries_.empty()) return unstable_offset_ + unstable_entries_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index();
  return fallback;
}

uint64_t RaftLog::LastIndex() const { return UnstableLastIndexOr(storage_->LastIndex()); }

uint64_t RaftLog::LastTerm() const { return TermOrZero(LastIndex()); }

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  const uint64_t dummy = FirstIndex() - 1;
  if (i < dummy) return CompactedError(i);
  if (i > LastIndex()) return 0;
  if (unstable_snapshot_ && i == unstable_snapshot_->metadata().index()) {
    return unstable_snapshot_->metadata().term();
  }
  if (!unstable_entries_.empty() && i >= unstable_offset_) {
    return unstable_entries_[i - unstable_offset_].term();
  }
  if (unstable_snapshot_) return CompactedError(i);  // Below the pending snapshot.
  return storage_->Term(i);
}

uint64_t RaftLog::TermOrZero(uint64_t i) const {
  auto term = Term(i);
  return term.ok() ? *term : 0;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  auto t = Term(i);
  return t.ok() && *t == term;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t last_term) const {
  const uint64_t my_term = LastTerm();
  return last_term > my_term || (last_term == my_term && last_index >= LastIndex());
}

uint64_t RaftLog::FindConflict(const std::vector<raftpb::Entry>& entries) const {
  for (const auto& e : entries) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t commit,
                                             const std::vector<raftpb::Entry>& entries) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + entries.size();
  const uint64_t conflict = FindConflict(entries);
  if (conflict != 0) {
    KEEL_CHECK_MSG(conflict > committed_, "a leader tried to overwrite a committed entry");
    const size_t skip = conflict - (index + 1);
    Append(std::vector<raftpb::Entry>(entries.begin() + skip, entries.end()));
  }
  CommitTo(std::min(commit, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<raftpb::Entry>& entries) {
  if (entries.empty()) return LastIndex();
  const uint64_t after = entries[0].index() - 1;
  KEEL_CHECK_MSG(after >= committed_, "append would overwrite committed entries");
  KEEL_CHECK(after <= LastIndex());
  const uint64_t unstable_end = unstable_offset_ + unstable_entries_.size();
  if (after + 1 == unstable_end) {
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  } else if (after + 1 <= unstable_offset_) {
    // Replaces the whole unstable tail (and, once persisted, the stored suffix).
    unstable_offset_ = after + 1;
    unstable_entries_ = entries;
  } else {
    unstable_entries_.resize(after + 1 - unstable_offset_);
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  }
  return LastIndex();
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (;;) {
    auto t = Term(index);
    if (!t.ok()) return {index, 0};  // Compacted: the snapshot sorts it out.
    if (*t <= term) return {index, *t};
    if (index == 0) return {0, 0};
    --index;
  }
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::EntriesFrom(uint64_t lo,
                                                                uint64_t max_bytes) const {
  if (lo > LastIndex()) return std::vector<raftpb::Entry>{};
  return Slice(lo, LastIndex() + 1, max_bytes);
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  std::vector<raftpb::Entry> out;
  if (lo >= hi) return out;
  if (lo < FirstIndex()) return CompactedError(lo);
  KEEL_CHECK(hi <= LastIndex() + 1);
  const uint64_t stored_hi = std::min(hi, unstable_entries_.empty() ? hi : unstable_offset_);
  if (lo < stored_hi) {
    auto stored = storage_->Entries(lo, stored_hi, max_bytes);
    if (!stored.ok()) return stored.status();
    out = std::move(*stored);
    // Storage stopped early because of the byte limit: do not add unstable entries.
    if (out.size() < stored_hi - lo) return out;
  }
  if (!unstable_entries_.empty() && hi > unstable_offset_) {
    const uint64_t from = std::max(lo, unstable_offset_);
    uint64_t total = EntriesSize(out);
    for (uint64_t i = from; i < hi; ++i) {
      const auto& e = unstable_entries_[i - unstable_offset_];
      total += e.ByteSizeLong();
      if (!out.empty() && total > max_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

void RaftLog::CommitTo(uint64_t index) {
  if (index <= committed_) return;
  KEEL_CHECK_MSG(index <= LastIndex(), "commit index beyond the last log index");
  committed_ = index;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  KEEL_CHECK(index <= committed_);
  if (index > applied_) applied_ = index;
}

uint64_t RaftLog::StableLastIndex() const {
  if (unstable_snapshot_) return 0;
  const uint64_t stored_last = storage_->LastIndex();
  if (unstable_entries_.empty()) return stored_last;
  return std::min(stored_last, unstable_offset_ - 1);
}

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_snapshot_) return false;
  const uint64_t hi = std::min(committed_, StableLastIndex());
  return hi > std::max(applied_, FirstIndex() - 1);
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) return std::vector<raftpb::Entry>{};
  const uint64_t lo = std::max(applied_ + 1, FirstIndex());
  const uint64_t hi = std::min(committed_, StableLastIndex()) + 1;
  return Slice(lo, hi, max_committed_size_per_ready_bytes_);
}

void RaftLog::Restore(const raftpb::Snapshot& snapshot) {
  const uint64_t index = snapshot.metadata().index();
  unstable_snapshot_ = snapshot;
  unstable_entries_.clear();
  unstable_offset_ = index + 1;
  committed_ = index;
}

absl::StatusOr<raftpb::Snapshot> RaftLog::Snapshot() const {
  if (unstable_snapshot_) return *unstable_snapshot_;
  return storage_->GetSnapshot();
}

void RaftLog::StableTo(uint64_t index, uint64_t term) {
  if (unstable_entries_.empty() || index < unstable_offset_) return;
  const uint64_t last = unstable_offset_ + unstable_entries_.size() - 1;
  if (index > last) return;
  // The entry may have been replaced by a newer leader's since the Ready was taken.
  if (unstable_entries_[index - unstable_offset_].term() != term) return;
  unstable_entries_.erase(unstable_entries_.begin(),
                          unstable_entries_.begin() + (index + 1 - unstable_offset_));
  unstable_offset_ = index + 1;
}

void RaftLog::StableSnapshotTo(uint64_t index) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata().index() == index) {
    unstable_snapshot_.reset();
  }
}

}  // namespace keel::raft
