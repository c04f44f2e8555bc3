// Key and record encodings of the MVCC state machine (KvStore). See kv_store.h for
// the column families these keys live in.
//
// History keys: Escape(user_key) + BigEndian64(~revision).
//   Escape maps each 0x00 byte to 0x00 0xFF and appends the terminator 0x00 0x01. The
//   result sorts exactly like the user keys and no escaped key is a prefix of another,
//   so all versions of one user key are contiguous, newest first (the inverted
//   revision), and a Seek to Escape(k) + BE(~R) lands on k's newest version <= R.
//
// Records (values in the "kv" and "history" families):
//   'P' varint(create_revision) varint(mod_revision) varint(version) varint(lease)
//       value-bytes...            (a full key-value; the user key is not repeated)
//   'C' varint(create_revision) varint(mod_revision) varint(version) varint(lease)
//                                 (history only: the key's CURRENT version, whose value
//                                 is in "kv" — a marker, no value)
//   'D'                           (history only: a tombstone, the key was deleted)
//
// Each value is stored once (on-disk format 2, kFormatVersion). "kv" holds every live
// key's current version as a 'P' record; history holds that same version as a 'C'
// marker, and only superseded versions as full 'P' records. The invariant, true in
// every committed state (hence in every RocksDB snapshot): a key's newest history
// record is 'C' iff the key is live, and then kv holds the key with that mod_revision;
// every older record is 'P' or 'D'. The apply path keeps it in ONE WriteBatch: when a
// key is overwritten or deleted, it already reads the old kv record (for
// create_revision, version and prev_kv), so it rewrites the superseded version's
// history record from 'C' to the full 'P' record in the same batch. A history reader
// that meets 'C' reads the value from "kv" under the same snapshot (or apply batch)
// and checks that its mod_revision matches (else kDataLoss, never a wrong value).
// Why this design: the current version stays a single point read of "kv" (no change
// to the hot path); history keeps one record per version, so historical scans,
// compaction and the watch replay keep their shape and only resolve the marker; the
// value moves to history exactly when it stops being current, at no extra read.
// (Format 1 stored the current value in both families: twice the bytes for data that
// is never overwritten.) Compaction never removes a 'C' marker: it is the key's newest
// version, which compaction always keeps.
//
// Event log keys ("events" family): BigEndian64(revision) + BigEndian32(position of the
// event within its revision) -> 'P' or 'D' + user key. All events in revision order,
// and within a revision in the order the request made them (what watchers replay).
// One exception: 'S' varint(key size) + user key + the put's full 'P' record, for a put
// superseded within its own revision. History has one record per key and revision, so
// when a txn puts a key and a later op of the same txn deletes it (etcd allows that
// across sibling nested txns: sub-revisions), the revision's history record is the
// tombstone and the put's value lives only here.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proto/mvccpb/kv.pb.h"

namespace keel::storage::mvcc {

// Fixed-width big-endian encodings, so that numeric order is byte order.
void AppendBigEndian64(std::string* out, uint64_t v);
[[nodiscard]] uint64_t DecodeBigEndian64(std::string_view in);  // in.size() >= 8.
[[nodiscard]] std::string BigEndian64(uint64_t v);

// Order-preserving, prefix-free escaping of a user key (see above).
void AppendEscaped(std::string* out, std::string_view user_key);
// Decodes an escaped key at the front of `in`; returns the bytes consumed.
[[nodiscard]] absl::StatusOr<size_t> DecodeEscaped(std::string_view in, std::string* user_key);

[[nodiscard]] std::string HistoryKey(std::string_view user_key, int64_t revision);
// Smallest key after every version of `user_key` (for skipping to the next key).
[[nodiscard]] std::string HistoryKeyAfterAllVersions(std::string_view user_key);
// Splits a history key into the user key and the revision.
[[nodiscard]] absl::Status ParseHistoryKey(std::string_view key, std::string* user_key,
                                           int64_t* revision);

// The on-disk format this code reads and writes (see above); stored in the meta family.
inline constexpr uint64_t kFormatVersion = 2;

enum class RecordType {
  kPut,        // 'P': a full key-value.
  kCurrent,    // 'C': history's marker for the current version; the value is in "kv".
  kTombstone,  // 'D': a delete.
};

// Encodes kv (all fields but the key) as a 'P' record.
void EncodePutRecord(const mvccpb::KeyValue& kv, std::string* out);
// Encodes kv's metadata (not its value) as a 'C' marker.
void EncodeCurrentMarker(const mvccpb::KeyValue& kv, std::string* out);
[[nodiscard]] std::string TombstoneRecord();
[[nodiscard]] bool IsTombstone(std::string_view record);
// Decodes a record. kv->key is left as is; for 'C' the value is cleared (the caller
// resolves it from "kv"); for 'D' kv is untouched.
[[nodiscard]] absl::Status DecodeRecord(std::string_view record, mvccpb::KeyValue* kv,
                                        RecordType* type);

// The event log (see above).
[[nodiscard]] std::string EventLogKey(int64_t revision, uint32_t position);
[[nodiscard]] std::string EventLogRecord(mvccpb::Event::EventType type, std::string_view user_key);
// The 'S' entry of a put superseded within its own revision (see above).
[[nodiscard]] std::string SupersededPutEventRecord(std::string_view user_key,
                                                   std::string_view put_record);
struct EventLogEntry {
  int64_t revision = 0;
  mvccpb::Event::EventType type = mvccpb::Event::PUT;
  std::string_view user_key;    // Points into the parsed record.
  std::string_view put_record;  // 'S' only: the put's 'P' record (else empty).
};
[[nodiscard]] absl::Status ParseEventLog(std::string_view key, std::string_view record,
                                         EventLogEntry* out);

}  // namespace keel::storage::mvcc
