#include "raft/progress.h"

#include <algorithm>

namespace keel::raft {

void Inflights::Add(uint64_t last_index, uint64_t bytes) {
  window_.emplace_back(last_index, bytes);
  bytes_ += bytes;
}

void Inflights::FreeLE(uint64_t index) {
  while (!window_.empty() && window_.front().first <= index) {
    bytes_ -= window_.front().second;
    window_.pop_front();
  }
}

void Inflights::FreeFirstOne() {
  if (window_.empty()) return;
  bytes_ -= window_.front().second;
  window_.pop_front();
}

bool Inflights::Full() const {
  return static_cast<int>(window_.size()) >= max_count_ || (max_bytes_ > 0 && bytes_ >= max_bytes_);
}

void Inflights::Reset() {
  window_.clear();
  bytes_ = 0;
}

void Progress::ResetForNewTerm(uint64_t new_next) {
  match = 0;
  next = new_next;
  state = State::kProbe;
  pending_snapshot = 0;
  recent_active = false;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  if (state == State::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = State::kProbe;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = State::kReplicate;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  state = State::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(uint64_t index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == State::kReplicate) {
    if (rejected <= match) return false;  // Stale: already matched past it.
    next = match + 1;
    return true;
  }
  if (next - 1 != rejected) return false;  // Not the probe we sent last.
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

void Progress::SentEntries(uint64_t last_index, uint64_t count, uint64_t bytes) {
  switch (state) {
    case State::kReplicate:
      if (count > 0) {
        next = last_index + 1;
        inflights.Add(last_index, bytes);
      }
      break;
    case State::kProbe:
      probe_sent = true;
      break;
    case State::kSnapshot:
      break;
  }
}

bool Progress::IsPaused() const {
  switch (state) {
    case State::kProbe:
      return probe_sent;
    case State::kReplicate:
      return inflights.Full();
    case State::kSnapshot:
      return true;
  }
  return true;
}

const char* Progress::StateName() const {
  switch (state) {
    case State::kProbe:
      return "probe";
    case State::kReplicate:
      return "replicate";
    case State::kSnapshot:
      return "snapshot";
  }
  return "?";
}

}  // namespace keel::raft
