#include "raft/log_storage.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace keel::raft {
namespace {
constexpr char kCompactedPrefix[] = "log compacted: requested index ";
constexpr char kSnapshotUnavailable[] = "snapshot temporarily unavailable";
}  // namespace

absl::Status CompactedError(uint64_t index) {
  return absl::OutOfRangeError(absl::StrCat(kCompactedPrefix, index));
}

bool IsCompacted(const absl::Status& status) {
  return absl::IsOutOfRange(status) && absl::StartsWith(status.message(), kCompactedPrefix);
}

absl::Status SnapshotTemporarilyUnavailableError() {
  return absl::UnavailableError(kSnapshotUnavailable);
}

bool IsSnapshotTemporarilyUnavailable(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.message() == kSnapshotUnavailable;
}

uint64_t EntriesSize(const std::vector<raftpb::Entry>& entries) {
  uint64_t total = 0;
  for (const auto& e : entries) total += e.ByteSizeLong();
  return total;
}

void LimitSize(std::vector<raftpb::Entry>* entries, uint64_t max_bytes) {
  if (entries->empty()) return;
  uint64_t total = (*entries)[0].ByteSizeLong();
  size_t keep = 1;
  for (; keep < entries->size(); ++keep) {
    total += (*entries)[keep].ByteSizeLong();
    if (total > max_bytes) break;
  }
  entries->resize(keep);
}

}  // namespace keel::raft
