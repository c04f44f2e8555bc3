// Internals shared by the kv_store*.cc files: meta keys and a read snapshot helper.
// Not part of KvStore's API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/internal.pb.h"
#include "rocksdb/db.h"
#include "storage/mvcc_view.h"

namespace keel::storage::kv_internal {

inline constexpr char kMetaApplied[] = "m/applied";
inline constexpr char kMetaRevision[] = "m/revision";
inline constexpr char kMetaCompact[] = "m/compact";
inline constexpr char kMetaCompactDone[] = "m/compact_done";
inline constexpr char kMetaMaxLease[] = "m/max_lease";
inline constexpr char kMetaEventsFrom[] = "m/events_from";
inline constexpr char kMetaFormat[] = "m/format";  // mvcc::kFormatVersion, BE64.
// The cluster membership (internalpb.MembershipRecord) after the last conf change.
inline constexpr char kMetaMembers[] = "m/members";
inline constexpr char kSessionPrefix[] = "s/";
inline constexpr char kExpiryPrefix[] = "e/";
inline constexpr char kAlarmPrefix[] = "a/";

// A RocksDB snapshot and a view on it, released on destruction.
class ReadSnapshot {
 public:
  ReadSnapshot(rocksdb::DB* db, const mvcc::CfHandles& cfs)
      : db_(db), snapshot_(db->GetSnapshot()), view_(db, cfs, snapshot_) {}
  ~ReadSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

  mvcc::SnapshotView& view() { return view_; }
  // (revision, compact revision) as of the snapshot.
  [[nodiscard]] absl::StatusOr<std::pair<int64_t, int64_t>> Revisions();

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  mvcc::SnapshotView view_;
};

// A NOSPACE alarm is among `alarms`.
[[nodiscard]] bool HasNoSpaceAlarm(const std::vector<etcdserverpb::AlarmMember>& alarms);
[[nodiscard]] bool HasCorruptAlarm(const std::vector<etcdserverpb::AlarmMember>& alarms);
// What a CORRUPT alarm refuses (etcd's corrupt applier): every request that reads or
// changes the key space or the leases; alarms (to disarm it) and checkpoints still apply.
[[nodiscard]] bool RefusedWhenCorrupt(const internalpb::Request& req);
// The request would take more space: a Put, a Txn with a put in any branch (nested
// txns included), a LeaseGrant. etcd's capped applier refuses the same set.
[[nodiscard]] bool NeedsSpace(const internalpb::Request& req);

// The applied index stored in the (closed) RocksDB at db_dir, opened read-only.
// kFailedPrecondition if it holds data of another on-disk format.
[[nodiscard]] absl::StatusOr<uint64_t> ReadAppliedIndex(const std::string& db_dir);

// OK iff the stored format record (absent: format 1) is mvcc::kFormatVersion; else a
// one-line error naming both versions and db_dir.
[[nodiscard]] absl::Status CheckFormat(const std::optional<std::string>& stored,
                                       const std::string& db_dir);

}  // namespace keel::storage::kv_internal
