#include "storage/mvcc_encoding.h"

#include "absl/strings/str_cat.h"

namespace keel::storage::mvcc {
namespace {

constexpr char kPutTag = 'P';
constexpr char kCurrentTag = 'C';
constexpr char kTombstoneTag = 'D';
constexpr char kSupersededPutTag = 'S';  // Event log only.

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ReadVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t DecodeBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string BigEndian64(uint64_t v) {
  std::string out;
  AppendBigEndian64(&out, v);
  return out;
}

void AppendEscaped(std::string* out, std::string_view user_key) {
  out->reserve(out->size() + user_key.size() + 2);
  for (char c : user_key) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

absl::StatusOr<size_t> DecodeEscaped(std::string_view in, std::string* user_key) {
  user_key->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\0') {
      user_key->push_back(in[i]);
      continue;
    }
    if (i + 1 >= in.size()) break;
    if (in[i + 1] == '\x01') return i + 2;
    if (in[i + 1] != '\xff') break;
    user_key->push_back('\0');
    ++i;
  }
  return absl::DataLossError("mvcc: malformed escaped key in history");
}

std::string HistoryKey(std::string_view user_key, int64_t revision) {
  std::string out;
  AppendEscaped(&out, user_key);
  AppendBigEndian64(&out, ~static_cast<uint64_t>(revision));
  return out;
}

std::string HistoryKeyAfterAllVersions(std::string_view user_key) {
  std::string out;
  AppendEscaped(&out, user_key);
  out.append(9, '\xff');  // Longer than any 8-byte suffix, shorter than the next key.
  return out;
}

absl::Status ParseHistoryKey(std::string_view key, std::string* user_key, int64_t* revision) {
  auto used = DecodeEscaped(key, user_key);
  if (!used.ok()) return used.status();
  if (key.size() != *used + 8) {
    return absl::DataLossError(absl::StrCat("mvcc: history key of bad length ", key.size()));
  }
  *revision = static_cast<int64_t>(~DecodeBigEndian64(key.substr(*used)));
  return absl::OkStatus();
}

namespace {

void AppendMetadata(const mvccpb::KeyValue& kv, char tag, std::string* out) {
  out->push_back(tag);
  AppendVarint(out, static_cast<uint64_t>(kv.create_revision()));
  AppendVarint(out, static_cast<uint64_t>(kv.mod_revision()));
  AppendVarint(out, static_cast<uint64_t>(kv.version()));
  AppendVarint(out, static_cast<uint64_t>(kv.lease()));
}

}  // namespace

void EncodePutRecord(const mvccpb::KeyValue& kv, std::string* out) {
  out->clear();
  out->reserve(kv.value().size() + 24);
  AppendMetadata(kv, kPutTag, out);
  out->append(kv.value());
}

void EncodeCurrentMarker(const mvccpb::KeyValue& kv, std::string* out) {
  out->clear();
  AppendMetadata(kv, kCurrentTag, out);
}

std::string TombstoneRecord() { return std::string(1, kTombstoneTag); }

bool IsTombstone(std::string_view record) {
  return record.size() == 1 && record[0] == kTombstoneTag;
}

absl::Status DecodeRecord(std::string_view record, mvccpb::KeyValue* kv, RecordType* type) {
  if (record.empty()) return absl::DataLossError("mvcc: empty record");
  const char tag = record.front();
  record.remove_prefix(1);
  if (tag == kTombstoneTag && record.empty()) {
    *type = RecordType::kTombstone;
    return absl::OkStatus();
  }
  uint64_t create = 0, mod = 0, version = 0, lease = 0;
  if ((tag != kPutTag && tag != kCurrentTag) || !ReadVarint(&record, &create) ||
      !ReadVarint(&record, &mod) || !ReadVarint(&record, &version) ||
      !ReadVarint(&record, &lease) || (tag == kCurrentTag && !record.empty())) {
    return absl::DataLossError("mvcc: malformed record");
  }
  kv->set_create_revision(static_cast<int64_t>(create));
  kv->set_mod_revision(static_cast<int64_t>(mod));
  kv->set_version(static_cast<int64_t>(version));
  kv->set_lease(static_cast<int64_t>(lease));
  kv->set_value(record.data(), record.size());  // Empty for a 'C' marker.
  *type = tag == kPutTag ? RecordType::kPut : RecordType::kCurrent;
  return absl::OkStatus();
}

std::string EventLogKey(int64_t revision, uint32_t position) {
  std::string out;
  out.reserve(12);
  AppendBigEndian64(&out, static_cast<uint64_t>(revision));
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(position >> shift));
  return out;
}

std::string EventLogRecord(mvccpb::Event::EventType type, std::string_view user_key) {
  std::string out;
  out.reserve(user_key.size() + 1);
  out.push_back(type == mvccpb::Event::DELETE ? kTombstoneTag : kPutTag);
  out.append(user_key);
  return out;
}

std::string SupersededPutEventRecord(std::string_view user_key, std::string_view put_record) {
  std::string out(1, kSupersededPutTag);
  AppendVarint(&out, user_key.size());
  out.append(user_key);
  out.append(put_record);
  return out;
}

absl::Status ParseEventLog(std::string_view key, std::string_view record, EventLogEntry* out) {
  const absl::Status malformed = absl::DataLossError("mvcc: malformed event log entry");
  if (key.size() != 12 || record.empty()) return malformed;
  out->revision = static_cast<int64_t>(DecodeBigEndian64(key));
  const char tag = record[0];
  record.remove_prefix(1);
  out->put_record = {};
  if (tag == kPutTag || tag == kTombstoneTag) {
    out->type = tag == kPutTag ? mvccpb::Event::PUT : mvccpb::Event::DELETE;
    out->user_key = record;
    return absl::OkStatus();
  }
  uint64_t key_size = 0;
  if (tag != kSupersededPutTag || !ReadVarint(&record, &key_size) || key_size >= record.size() ||
      record[key_size] != kPutTag) {
    return malformed;
  }
  out->type = mvccpb::Event::PUT;
  out->user_key = record.substr(0, key_size);
  out->put_record = record.substr(key_size);
  return absl::OkStatus();
}

}  // namespace keel::storage::mvcc
