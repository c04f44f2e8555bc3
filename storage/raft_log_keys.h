// Key and value layout of the Raft log's RocksDB instance (see raft_log_store.h).
//
// The log has its own RocksDB directory (the MVCC state machine is another instance), one
// default column family. Every key starts with a one-byte record kind, then the Raft group
// id as 8 bytes big-endian, so the records of one group are contiguous and many groups can
// share one instance later without a format change:
//
//   0x00 "format"                         -> "keel.raftlog.v1" (one per instance)
//   0x01 | group (8B BE) | index (8B BE)  -> entry record   (big-endian: byte order = index order)
//   0x02 | group (8B BE)                  -> hard state record
//   0x03 | group (8B BE)                  -> truncated state record: index and term of the last
//                                            entry removed from the log (first index - 1)
//   0x04 | group (8B BE)                  -> snapshot record (raftpb::Snapshot: metadata + handle)
//
// Every record value is `crc32c (4 bytes, little-endian) | payload`, the CRC32C taken over the
// payload. Payloads: entry, hard state and snapshot records are the serialized protobufs;
// the truncated state is index and term as two 8-byte little-endian integers. An entry
// payload's own `index` must equal the index in its key (a record moved to the wrong key is
// corruption too).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keel::storage::raft_log_keys {

inline constexpr char kFormatKey[] =
    "\x00"
    "format";
inline constexpr std::string_view kFormatKeyView{kFormatKey, sizeof(kFormatKey) - 1};
inline constexpr std::string_view kFormatValue = "keel.raftlog.v1";

inline constexpr char kEntryKind = 0x01;
inline constexpr char kHardStateKind = 0x02;
inline constexpr char kTruncatedStateKind = 0x03;
inline constexpr char kSnapshotKind = 0x04;

inline constexpr size_t kGroupKeySize = 1 + 8;
inline constexpr size_t kEntryKeySize = 1 + 8 + 8;

inline void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

inline uint64_t DecodeBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// The key of a per-group record of `kind` (hard state, truncated state, snapshot).
inline std::string GroupKey(char kind, uint64_t group_id) {
  std::string key;
  key.reserve(kGroupKeySize);
  key.push_back(kind);
  AppendBigEndian64(&key, group_id);
  return key;
}

inline std::string EntryKey(uint64_t group_id, uint64_t index) {
  std::string key;
  key.reserve(kEntryKeySize);
  key.push_back(kEntryKind);
  AppendBigEndian64(&key, group_id);
  AppendBigEndian64(&key, index);
  return key;
}

// True if `key` is an entry key of `group_id`; then *index is its index.
inline bool ParseEntryKey(std::string_view key, uint64_t group_id, uint64_t* index) {
  if (key.size() != kEntryKeySize || key[0] != kEntryKind) return false;
  if (DecodeBigEndian64(key.substr(1, 8)) != group_id) return false;
  *index = DecodeBigEndian64(key.substr(9, 8));
  return true;
}

}  // namespace keel::storage::raft_log_keys
