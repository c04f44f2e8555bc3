// KvStore: keel's state machine — an MVCC key-value store with etcd's data model, in
// its own RocksDB instance (the Raft log lives in a separate RocksDB).
//
// Data model (etcd's): flat ordered byte keys; a global revision that starts at 1 and
// rises by one per mutating request; per key create_revision, mod_revision, version and
// lease. Old revisions stay readable until compacted.
//
// Layout on disk: <dir>/CURRENT names the live RocksDB directory <dir>/db-<n>; a
// snapshot install writes db-<n+1>, then swaps CURRENT atomically (snapshot.h). In the
// RocksDB, four column families:
//   default ("meta"): "m/applied", "m/revision", "m/compact", "m/compact_done",
//                     "m/max_lease", "m/format" -> BE64 numbers;
//                     "m/members" -> the cluster membership (MembershipRecord) as of
//                     the applied index (written by conf-change entries);
//                     "s/" + BE64(client_id) -> ClientSession (dedup table);
//                     "e/" + BE64(applied_index) + BE64(client_id) -> "" (its expiry
//                     index, oldest first);
//                     "a/" + BE64(member_id) + BE32(alarm type) -> "": active alarms.
//   "kv":      user key -> record of the live key-value (mvcc_encoding.h). Reads at the
//              newest revision (the common case) scan only this family.
//   "history": Escape(user key) + BE64(~revision) -> record, current-version marker or
//              tombstone: every version of every key until compacted, newest first per
//              key. Reads at an older revision seek per key to its newest version <=
//              that revision. A live key's current version is a marker without the
//              value (the value is in "kv"; each value is stored once — on-disk format
//              2, "m/format"; mvcc_encoding.h says how the apply path and the readers
//              keep it consistent). A data dir of another format is refused at Open.
//   "lease":   'L' + BE64(id) -> StoredLease; 'K' + BE64(id) + key -> "" (attachments).
//   "events":  BE64(revision) + BE32(position) -> 'P'/'D' + user key: the event log, in
//              revision order, so a watcher can replay a whole interval from an old
//              revision without scanning every key's history, in the order etcd sends
//              events (mvcc_events.h); a put superseded within its own revision
//              keeps its record here ('S', mvcc_encoding.h). One small extra record
//              per event; compaction drops the log below the compaction point with
//              one range delete.
//              "m/events_from" is the first revision the log covers (a data dir made
//              before the log existed covers only what was written after).
//
// Apply: Apply() runs a batch of committed entries in ONE RocksDB WriteBatch together
// with the applied index, so a crash leaves either all or none of the batch. Entries at
// or below the applied index are skipped. Durability: the batch is written to the WAL
// WITHOUT fsync. That is safe because the Raft log (fsynced) is the durable record:
// after a crash, the node re-applies committed entries above the recovered applied
// index. A process crash loses nothing (the WAL is in the OS page cache); a power loss
// loses a suffix of whole batches (point-in-time WAL recovery), never half of one.
// Sync() makes everything applied so far durable (used before a snapshot is taken).
//
// Dedup: a request with a client_id is applied once per (client_id, sequence): the
// latest answered sequence and its response are stored in the same batch; a retry of
// it returns the stored answer; an older sequence is rejected; a client's record
// expires `session_expiry_entries` entries after its latest write (expiry by log index
// keeps replicas deterministic; no clocks).
//
// RocksDB knobs, chosen deliberately:
//   - one shared LRU block cache (block_cache_bytes) with index and filter blocks in it,
//     so memory is bounded by the cache, not by the data size;
//   - whole-key bloom filters (10 bits/key) on "kv" and "lease": every Put does a point
//     read of its key, and most new keys are absent; none on "history", whose reads are
//     all seeks that a whole-key filter cannot help;
//   - LZ4 on the upper levels, ZSTD on the bottommost level (most of the bytes: old
//     versions), level_compaction_dynamic_level_bytes for bounded space amplification;
//   - no prefix extractor: range scans need total order, and per-key history seeks are
//     served by the block cache and the index.
//
// Thread-safety: Apply, Sync, CreateCheckpoint and InstallSnapshot must be called from
// one thread (the apply loop) — they also serialize on an internal mutex. Reads (Range,
// lease queries, getters) may run on any thread concurrently with Apply; each read sees
// one consistent revision (a RocksDB snapshot) and never blocks writes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "proto/internal.pb.h"
#include "proto/raft.pb.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "storage/mvcc_events.h"
#include "storage/mvcc_range.h"
#include "storage/mvcc_view.h"

namespace keel::storage {

struct KvStoreOptions {
  std::string dir;                              // Created if missing.
  uint64_t block_cache_bytes = 256ull << 20;    // Shared by all column families.
  uint64_t write_buffer_bytes = 64ull << 20;    // Per column family memtable.
  int64_t max_txn_ops = 128;                    // etcd's --max-txn-ops default.
  uint64_t session_expiry_entries = 1'000'000;  // Dedup record lifetime, in log entries.
  int64_t min_lease_ttl_s = 2;                  // Granted TTLs are raised to this.
  uint64_t compaction_batch_keys = 10'000;      // Deletes per batch in physical compaction.
};

// One committed Raft entry for the state machine: its index and the payload (a
// serialized keel.internalpb.Request; empty: a no-op, e.g. a new leader's entry).
struct ApplyEntry {
  uint64_t index = 0;
  std::string_view data;
  // Non-empty: a conf change's resulting membership (a serialized MembershipRecord),
  // stored in the same batch as the applied index.
  std::string_view members = {};
};

struct ApplyResult {
  uint64_t index = 0;
  // The request's own outcome: OK, or etcd's error code and text (nothing changed).
  absl::Status status;
  // The etcd response (when status is OK and the entry was not a no-op).
  internalpb::Response response;
  // The events of the write, in order (empty for a duplicate or a failure).
  std::vector<mvccpb::Event> events;
  bool duplicate = false;  // A retry answered from the dedup table.
};

class KvStore {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KvStore>> Open(KvStoreOptions options);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Applies committed entries, in increasing index order (gaps allowed: conf changes
  // are not passed here). Returns one result per entry above AppliedIndex(), in order.
  // An error return (storage failure) means nothing of the batch was applied; the node
  // must stop. Physical compaction requested by the batch runs before returning.
  [[nodiscard]] absl::StatusOr<std::vector<ApplyResult>> Apply(
      absl::Span<const ApplyEntry> entries);

  // etcd's Range on a consistent snapshot of the newest applied state.
  [[nodiscard]] absl::StatusOr<etcdserverpb::RangeResponse> Range(
      const etcdserverpb::RangeRequest& r) const;
  // Lease state as the state machine knows it. TTL is the last checkpointed remaining
  // TTL, or the granted TTL if none (the live countdown is the lessor's, in server/).
  [[nodiscard]] absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& r) const;
  [[nodiscard]] absl::StatusOr<etcdserverpb::LeaseLeasesResponse> LeaseLeases() const;
  // Every lease record (id order), for a new leader's lessor to resume from.
  [[nodiscard]] absl::StatusOr<std::vector<internalpb::StoredLease>> ListLeases() const;

  // Past events of `iv` from `from_rev` up to the newest applied revision, in pieces
  // bounded by `limits` (mvcc_events.h). ErrCompacted when from_rev is below
  // OldestWatchableRevision().
  [[nodiscard]] absl::StatusOr<mvcc::EventsChunk> ReadEvents(
      const mvcc::KeyInterval& iv, int64_t from_rev, bool prev_kv,
      const mvcc::EventReadLimits& limits) const;
  // The oldest revision whose events can still be replayed: the compaction point, or
  // the start of the event log if that is later.
  [[nodiscard]] int64_t OldestWatchableRevision() const {
    return std::max(compact_revision_.load(), events_from_.load());
  }

  // The membership stored by the last conf-change entry (serialized MembershipRecord);
  // empty if none was applied yet (the initial membership comes from the config).
  [[nodiscard]] absl::StatusOr<std::string> Members() const;

  [[nodiscard]] uint64_t AppliedIndex() const { return applied_index_.load(); }
  [[nodiscard]] int64_t Revision() const { return revision_.load(); }
  [[nodiscard]] int64_t CompactRevision() const { return compact_revision_.load(); }
  [[nodiscard]] const std::string& dir() const { return options_.dir; }

  // Makes everything applied so far durable (fsyncs the WAL).
  [[nodiscard]] absl::Status Sync();

  // Creates a RocksDB checkpoint of the applied state in `checkpoint_dir` (must not
  // exist). kFailedPrecondition unless metadata.index() == AppliedIndex().
  [[nodiscard]] absl::Status CreateCheckpoint(const raftpb::SnapshotMetadata& metadata,
                                              const std::string& checkpoint_dir);

  // Replaces the whole state with a staged, verified snapshot directory (from
  // SnapshotInstaller::Finish), atomically: a crash leaves the old or the new state.
  // Blocks readers for the swap. kFailedPrecondition if the staged state's applied
  // index is not `expected_index`.
  [[nodiscard]] absl::Status InstallStaged(const std::string& staged_dir, uint64_t expected_index);

  // Runs physical compaction up to the logical compaction point (also done by Apply).
  [[nodiscard]] absl::Status CompactPhysical();

  // A RocksDB integer property summed over the column families, e.g.
  // "rocksdb.compaction-pending" (benchmarks wait on such properties for background
  // work to settle; a DB-wide one like "rocksdb.num-running-compactions" is counted
  // once per family, so compare it with 0); nullopt if RocksDB does not know it.
  [[nodiscard]] std::optional<uint64_t> RocksIntProperty(const std::string& name) const;

  // --- Maintenance (kv_store_maintenance.cc) ---

  // Space the state machine takes. disk_bytes: every file of the live RocksDB (SSTs,
  // WAL, manifest): what the disk holds. live_bytes: RocksDB's estimate of the live data
  // ("rocksdb.estimate-live-data-size" over all column families) plus the memtables: it
  // drops once deleted and compacted data is compacted away by RocksDB (CompactStorage
  // forces that), while disk_bytes may lag behind obsolete files. The space quota is
  // checked against live_bytes.
  struct SpaceUsage {
    int64_t disk_bytes = 0;
    int64_t live_bytes = 0;
  };
  [[nodiscard]] SpaceUsage Space() const;

  // Flushes the memtables and compacts every column family down to the last level, so
  // deleted and compacted versions leave the disk now rather than whenever RocksDB's
  // own compactions get to them (etcd's Defragment). Runs beside applies and reads.
  [[nodiscard]] absl::Status CompactStorage();

  // CRC32C hash of the MVCC key space as of `revision` (0: the newest): every live key
  // at `revision` (key, create/mod revision, version, lease, value) and every event in
  // (oldest watchable revision, revision]. Independent of the record encoding, so equal
  // on every replica that applied the same log. ErrCompacted below the compaction
  // point, ErrFutureRev above the newest revision.
  struct KvHash {
    uint32_t hash = 0;
    int64_t revision = 0;          // What the hash covers up to.
    int64_t compact_revision = 0;  // The compaction point it was taken at.
  };
  [[nodiscard]] absl::StatusOr<KvHash> HashKv(int64_t revision) const;
  // HashKv of the newest revision extended over the lease table and the alarms: the
  // whole replicated state (etcd's Hash).
  [[nodiscard]] absl::StatusOr<uint32_t> HashAll() const;

  // Alarms raised through raft (Request.alarm), in (member, type) order.
  [[nodiscard]] std::vector<etcdserverpb::AlarmMember> Alarms() const;
  // A NOSPACE alarm is active: Put, Txn with a put and LeaseGrant are refused with
  // etcd's "database space exceeded" until it is disarmed.
  [[nodiscard]] bool NoSpace() const { return no_space_.load(); }
  // A CORRUPT alarm is active: reads and writes of keys and leases are refused with
  // etcd's "corrupt cluster" until it is disarmed.
  [[nodiscard]] bool Corrupt() const { return corrupt_.load(); }

  // Turns a store restored from a snapshot into the first state of a new cluster: the
  // applied index goes back to 0 (the new cluster's raft log starts afresh), and the
  // client sessions and alarms of the old cluster are dropped. Content, revision,
  // compaction point and leases stay. Apply thread; nothing may be applied before.
  [[nodiscard]] absl::Status ResetForNewCluster();

 private:
  struct State;
  explicit KvStore(KvStoreOptions options);
  [[nodiscard]] absl::Status OpenDb(const std::string& db_dir);
  void CloseDb();
  [[nodiscard]] absl::Status LoadState();
  [[nodiscard]] absl::Status ApplyOne(const ApplyEntry& entry, State* st, mvcc::BatchView* view,
                                      ApplyResult* result);
  [[nodiscard]] absl::Status ExecuteRequest(const internalpb::Request& req, State* st,
                                            mvcc::BatchView* view, ApplyResult* result);
  [[nodiscard]] absl::Status ExpireSessions(const State& st, mvcc::BatchView* view);
  [[nodiscard]] absl::Status CompactPhysicalLocked();
  [[nodiscard]] absl::Status ExecuteAlarm(const etcdserverpb::AlarmRequest& r,
                                          mvcc::BatchView* view, internalpb::Response* resp,
                                          std::vector<etcdserverpb::AlarmMember>* alarms);
  [[nodiscard]] absl::Status LoadAlarms();
  void PublishAlarms(std::vector<etcdserverpb::AlarmMember> alarms);
  void WriteState(const State& st, rocksdb::WriteBatchWithIndex* batch);

  const KvStoreOptions options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  // Readers hold it shared; InstallStaged holds it exclusive while it swaps the DB.
  mutable std::shared_mutex db_mu_;
  std::mutex apply_mu_;  // Serializes the apply-side methods.
  std::unique_ptr<rocksdb::DB> db_;
  mvcc::CfHandles cfs_{};
  std::string db_name_;  // Live db-<n> directory name inside options_.dir.

  std::atomic<uint64_t> applied_index_{0};
  std::atomic<int64_t> revision_{1};
  std::atomic<int64_t> compact_revision_{0};
  std::atomic<int64_t> events_from_{1};
  int64_t compact_done_ = 0;  // Physical compaction done up to here (apply thread).
  int64_t max_lease_id_ = 0;  // Apply thread only.
  mutable std::mutex alarms_mu_;
  std::vector<etcdserverpb::AlarmMember> alarms_;  // Guarded by alarms_mu_.
  std::atomic<bool> no_space_{false};
  std::atomic<bool> corrupt_{false};
};

}  // namespace keel::storage
