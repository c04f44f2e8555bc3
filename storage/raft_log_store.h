// RaftLogStore: the durable Raft log of one group, on its own RocksDB instance.
//
// It is the raft::LogStorage the consensus core reads, plus the write side the node loop
// calls after each Ready (raft/raw_node.h): Save() writes the snapshot metadata, the new
// entries, the truncation of a conflicting suffix and the hard state in ONE rocksdb
// WriteBatch with one fsync (group commit). CreateSnapshot() and Compact() record a
// snapshot the application took and drop the log prefix it covers (a range delete), so the
// log does not grow without bound. Semantics mirror raft::MemoryStorage (the in-memory model
// of the same contract), with one extra guard: Compact() refuses to drop entries that no
// snapshot covers.
//
// After each Ready (raft/raw_node.h, step 2), the node loop calls:
//   store->Save(ready.hard_state ? &*ready.hard_state : nullptr, ready.entries,
//               ready.snapshot ? &ready.snapshot->metadata() : nullptr, ready.must_sync,
//               ready.snapshot ? ready.snapshot->data() : "");
//
// Layout on disk: see raft_log_keys.h. Every record carries a CRC32C; a mismatch, a missing
// entry inside [FirstIndex(), LastIndex()] or an entry whose own index disagrees with its
// key is absl::DataLossError naming the index. Open() checks the hard state, the snapshot
// record, the first entry and the tail it loads into the cache (optionally the whole log),
// so a node refuses to start on a corrupt log instead of serving a wrong answer.
//
// Tail cache: the last entries written (up to tail_cache_bytes_max, at least the last
// entry) stay in memory, so the leader's hot path (Entries/Term for recent indices) never
// reads RocksDB. First/last index, the truncated (compaction) point and the hard state are
// always in memory.
//
// Thread-safety: all methods are safe to call concurrently. Writers (Save, CreateSnapshot,
// Compact, SetConfState) are serialised among themselves; the fsync runs without blocking
// readers. A reader sees the log either wholly before or wholly after a write: while a
// write that overwrites or deletes stored entries is in flight, readers read RocksDB
// through a snapshot taken before it. Intended use: the node loop writes and reads, the
// peer transport may read Entries from another thread.
//
// Ownership: the store owns its rocksdb::DB; destroying the store closes it. Only one
// store may have a directory open at a time (RocksDB's LOCK file enforces it).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/log_storage.h"

namespace rocksdb {
class DB;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace keel::storage {

struct RaftLogStoreOptions {
  // The Raft group whose log this store serves (part of every key).
  uint64_t group_id = 1;
  // Bytes of recent entries kept in memory (entry ByteSizeLong() plus a fixed overhead
  // per entry). The last entry is always kept, whatever its size.
  uint64_t tail_cache_bytes_max = 4 << 20;
  // Open() checks every entry's CRC (reads the whole log) instead of only the cached tail
  // and the first entry. For `keeld --verify-log`-style maintenance, not every start.
  bool verify_whole_log_on_open = false;
  // Open() creates an empty log if the directory holds none.
  bool create_if_missing = true;
};

// Counters for tests and metrics.
struct RaftLogStoreStats {
  uint64_t tail_cache_hits = 0;  // Entries/Term answered from memory.
  uint64_t db_reads = 0;         // Entries/Term calls that had to read RocksDB.
  uint64_t saves = 0;            // Save() calls that wrote a batch.
};

class RaftLogStore final : public raft::LogStorage {
 public:
  // Opens (or creates) the log in directory `dir`. kDataLoss if a check fails, with the
  // directory and the index in the message.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RaftLogStore>> Open(
      const std::string& dir, const RaftLogStoreOptions& options);

  ~RaftLogStore() override;
  RaftLogStore(const RaftLogStore&) = delete;
  RaftLogStore& operator=(const RaftLogStore&) = delete;

  // raft::LogStorage.
  absl::StatusOr<raft::InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  absl::StatusOr<raftpb::Snapshot> GetSnapshot() const override;

  // Persists one Ready in one WriteBatch, fsynced when `sync`:
  //  - `snapshot` (may be null): a snapshot received from the leader. The whole log is
  //    dropped (entries at or below it are covered by it, entries above it may conflict with
  //    the leader's log) and FirstIndex() becomes its index + 1. kFailedPrecondition if it
  //    is older than the recorded snapshot. `snapshot_data` is stored as its handle.
  //  - `entries`: contiguous, ascending indices, starting at or below LastIndex() + 1 (else
  //    kInvalidArgument). Entries below FirstIndex() are skipped; stored entries at the same
  //    or later indices are replaced, and any stored suffix beyond the last new entry is
  //    deleted (a conflicting suffix is truncated in the same batch).
  //  - `hard_state` (may be null): replaces the stored hard state.
  // Nothing changes on error. An I/O error leaves RocksDB read-only: the node must stop.
  [[nodiscard]] absl::Status Save(const raftpb::HardState* hard_state,
                                  const std::vector<raftpb::Entry>& entries,
                                  const raftpb::SnapshotMetadata* snapshot, bool sync,
                                  std::string_view snapshot_data = {});

  // Records a snapshot the application took of its state at `index` (FirstIndex() - 1 <=
  // index <= LastIndex()), with the membership at that index and the application's handle.
  // kFailedPrecondition if not newer than the recorded snapshot. Synced.
  [[nodiscard]] absl::StatusOr<raftpb::Snapshot> CreateSnapshot(uint64_t index,
                                                                const raftpb::ConfState& conf_state,
                                                                std::string_view data);

  // Drops entries up to and including `compact_index` with one range delete; FirstIndex()
  // becomes compact_index + 1 and Term(compact_index) still answers. The index must be
  // covered by the recorded snapshot (kFailedPrecondition otherwise: those entries would
  // be lost), CompactedError if already compacted, kOutOfRange beyond LastIndex(). Synced.
  [[nodiscard]] absl::Status Compact(uint64_t compact_index);

  // Sets the membership GetInitialState reports (bootstrap of a new cluster, before any
  // snapshot). Synced.
  [[nodiscard]] absl::Status SetConfState(const raftpb::ConfState& conf_state);

  [[nodiscard]] RaftLogStoreStats stats() const;
  [[nodiscard]] uint64_t group_id() const { return options_.group_id; }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  RaftLogStore(std::string dir, const RaftLogStoreOptions& options, rocksdb::DB* db);

  // Loads and checks the durable state (Open).
  [[nodiscard]] absl::Status Load();
  [[nodiscard]] absl::Status LoadRecords();
  [[nodiscard]] absl::Status LoadTail();
  [[nodiscard]] absl::Status VerifyRange(uint64_t lo, uint64_t hi) const;

  // Reads entries [lo, hi) from RocksDB through `view` (null: latest), stopping once
  // *total_bytes would exceed max_bytes (at least one entry overall).
  [[nodiscard]] absl::Status ReadEntries(const rocksdb::Snapshot* view, uint64_t lo, uint64_t hi,
                                         uint64_t max_bytes, uint64_t* total_bytes,
                                         std::vector<raftpb::Entry>* out) const;
  [[nodiscard]] absl::StatusOr<raftpb::Entry> ReadEntry(const rocksdb::Snapshot* view,
                                                        uint64_t index) const;
  // Term(i) with mu_ (or write_mu_) held.
  [[nodiscard]] absl::StatusOr<uint64_t> TermLocked(uint64_t i) const;
  [[nodiscard]] absl::Status PlanAppend(const std::vector<raftpb::Entry>& entries, uint64_t first,
                                        rocksdb::WriteBatch* batch, uint64_t* last,
                                        bool* overwrites, size_t* skip) const;
  // Writes `batch`; when `overwrites`, readers use a pre-write snapshot meanwhile.
  [[nodiscard]] absl::Status Write(rocksdb::WriteBatch* batch, bool overwrites, bool sync);
  // Drops pre_write_view_ (with write_mu_ held) once the state describes the new DB.
  void ReleasePreWriteView();

  void CacheAppend(const std::vector<raftpb::Entry>& entries, size_t skip);
  void CacheDropThrough(uint64_t index);
  uint64_t CacheFirstIndex() const;

  const std::string dir_;
  const RaftLogStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

  // Serialises writers. Held for a whole write, including the fsync.
  std::mutex write_mu_;
  // Guards the in-memory state below. State is changed only with both write_mu_ and mu_
  // held, so a writer may read it holding write_mu_ alone; readers hold mu_.
  mutable std::mutex mu_;
  // Invariant: truncated_index_ <= last_index_; FirstIndex() == truncated_index_ + 1.
  uint64_t truncated_index_ = 0;
  uint64_t truncated_term_ = 0;
  uint64_t last_index_ = 0;
  raftpb::HardState hard_state_;
  raftpb::Snapshot snapshot_;
  // The newest entries, contiguous, ending at last_index_ (empty only if the log is).
  std::deque<raftpb::Entry> tail_;
  uint64_t tail_bytes_ = 0;
  // Set while a write that overwrites or deletes stored entries is in flight: the DB as
  // of before it, which is what the in-memory state still describes.
  const rocksdb::Snapshot* pre_write_view_ = nullptr;

  mutable std::atomic<uint64_t> tail_cache_hits_{0};
  mutable std::atomic<uint64_t> db_reads_{0};
  std::atomic<uint64_t> saves_{0};
};

}  // namespace keel::storage
