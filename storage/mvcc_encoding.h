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
//       value-bytes...            (a live key-value; the user key is not repeated)
//   'D'                           (history only: a tombstone, the key was deleted)
//
// Event log keys ("events" family): BigEndian64(revision) + BigEndian32(position of the
// event within its revision) -> 'P' or 'D' + user key. All events in revision order,
// and within a revision in the order the request made them (what watchers replay).
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

// Encodes kv (all fields but the key) as a 'P' record.
void EncodePutRecord(const mvccpb::KeyValue& kv, std::string* out);
[[nodiscard]] std::string TombstoneRecord();
// Decodes a record. Returns false in *live for a tombstone. kv->key is left as is.
[[nodiscard]] absl::Status DecodeRecord(std::string_view record, mvccpb::KeyValue* kv, bool* live);

// The event log (see above).
[[nodiscard]] std::string EventLogKey(int64_t revision, uint32_t position);
[[nodiscard]] std::string EventLogRecord(mvccpb::Event::EventType type, std::string_view user_key);
struct EventLogEntry {
  int64_t revision = 0;
  mvccpb::Event::EventType type = mvccpb::Event::PUT;
  std::string_view user_key;  // Points into the parsed record.
};
[[nodiscard]] absl::Status ParseEventLog(std::string_view key, std::string_view record,
                                         EventLogEntry* out);

}  // namespace keel::storage::mvcc
