#include "storage/mvcc_events.h"

#include <memory>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "storage/mvcc_encoding.h"

namespace keel::storage::mvcc {
namespace {

std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Fills `ev` with the event of `key` at `rev` from the history family (a current
// version's value from "kv", through the decoder). `put_record`: the put's own record
// when the event log holds it ('S', mvcc_encoding.h). `earlier_in_rev`: a put of the key
// earlier in the same revision, which is then the event's previous version.
absl::Status LoadEvent(rocksdb::Iterator* hist, HistoryDecoder* decoder, std::string_view key,
                       int64_t rev, mvccpb::Event::EventType type, std::string_view put_record,
                       const mvccpb::KeyValue* earlier_in_rev, bool prev_kv, mvccpb::Event* ev) {
  ev->set_type(type);
  mvccpb::KeyValue* kv = ev->mutable_kv();
  hist->Seek(HistoryKey(key, rev));
  std::string found_key;
  int64_t found_rev = 0;
  bool at_rev = false;
  if (hist->Valid()) {
    RETURN_IF_ERROR(ParseHistoryKey(View(hist->key()), &found_key, &found_rev));
    at_rev = found_key == key && found_rev == rev;
  }
  if (!put_record.empty()) {
    RecordType record_type = RecordType::kPut;
    RETURN_IF_ERROR(DecodeRecord(put_record, kv, &record_type));
    if (record_type != RecordType::kPut || kv->mod_revision() != rev) {
      return absl::DataLossError("mvcc: a superseded put's event log record is not its version");
    }
  } else if (type == mvccpb::Event::PUT) {
    if (!at_rev) {
      RETURN_IF_ERROR(FromRocks(hist->status(), "read history"));
      return absl::DataLossError("mvcc: the event log names a version that history lacks");
    }
    bool live = false;
    RETURN_IF_ERROR(decoder->Decode(key, rev, View(hist->value()), kv, &live));
    if (!live) return absl::DataLossError("mvcc: a put event whose history record is a tombstone");
  } else {
    kv->set_mod_revision(rev);  // etcd's delete event: the key and the revision only.
  }
  kv->set_key(key.data(), key.size());
  if (!prev_kv) return FromRocks(hist->status(), "read history");
  if (earlier_in_rev != nullptr) {
    *ev->mutable_prev_kv() = *earlier_in_rev;
    return FromRocks(hist->status(), "read history");
  }
  // A delete's tombstone at the compaction point itself is gone; then the seek already
  // stands on what is older (or on another key).
  if (at_rev) hist->Next();
  if (hist->Valid()) {
    RETURN_IF_ERROR(ParseHistoryKey(View(hist->key()), &found_key, &found_rev));
    if (found_key == key && found_rev < rev) {
      mvccpb::KeyValue prev;
      bool live = false;
      RETURN_IF_ERROR(decoder->Decode(key, found_rev, View(hist->value()), &prev, &live));
      if (live) {
        prev.set_key(key.data(), key.size());
        *ev->mutable_prev_kv() = std::move(prev);
      }
    }
  }
  return FromRocks(hist->status(), "read history");
}

// The 'S' entry (a put superseded within its revision) of `key` at `rev`, if any; its
// record is copied into *put_record. `log` iterates the event log.
absl::StatusOr<bool> FindSupersededPut(rocksdb::Iterator* log, std::string_view key, int64_t rev,
                                       std::string* put_record) {
  for (log->Seek(EventLogKey(rev, 0)); log->Valid(); log->Next()) {
    EventLogEntry entry;
    RETURN_IF_ERROR(ParseEventLog(View(log->key()), View(log->value()), &entry));
    if (entry.revision != rev) break;
    if (!entry.put_record.empty() && entry.user_key == key) {
      put_record->assign(entry.put_record);
      return true;
    }
  }
  RETURN_IF_ERROR(FromRocks(log->status(), "scan event log"));
  return false;
}

// One key: its versions with from_rev <= revision <= to_rev, oldest first. Versions
// sort newest first, so this walks backwards from the oldest one at or above from_rev.
// A tombstone may hide a put of the same revision (the 'S' entries of the event log):
// that put's event comes first, and is the delete's previous version.
absl::Status ReadKeyEvents(MvccView& view, const std::string& key, int64_t from_rev, int64_t to_rev,
                           bool prev_kv, const EventReadLimits& limits, EventsChunk* out) {
  auto versions = view.NewIterator(Cf::kHistory, HistoryKeyAfterAllVersions(key));
  auto hist = view.NewIterator(Cf::kHistory, "");
  std::unique_ptr<rocksdb::Iterator> log;  // The event log, opened at the first tombstone.
  HistoryDecoder decoder(view);
  size_t bytes = 0;
  std::string user_key, put_record;
  int64_t rev = 0;
  for (versions->SeekForPrev(HistoryKey(key, from_rev)); versions->Valid(); versions->Prev()) {
    RETURN_IF_ERROR(ParseHistoryKey(View(versions->key()), &user_key, &rev));
    if (user_key != key || rev > to_rev) break;
    if (bytes >= limits.max_bytes) {
      out->next_rev = rev;
      return FromRocks(versions->status(), "scan history");
    }
    const bool live = !IsTombstone(View(versions->value()));
    const mvccpb::KeyValue* earlier_in_rev = nullptr;
    if (!live) {
      if (log == nullptr) log = view.NewIterator(Cf::kEvents, "");
      ASSIGN_OR_RETURN(bool superseded, FindSupersededPut(log.get(), key, rev, &put_record));
      if (superseded) {
        mvccpb::Event& put = out->events.emplace_back();
        RETURN_IF_ERROR(LoadEvent(hist.get(), &decoder, key, rev, mvccpb::Event::PUT, put_record,
                                  nullptr, prev_kv, &put));
        bytes += EventBytes(put);
        earlier_in_rev = &put.kv();
      }
    }
    mvccpb::Event ev;
    RETURN_IF_ERROR(LoadEvent(hist.get(), &decoder, key, rev,
                              live ? mvccpb::Event::PUT : mvccpb::Event::DELETE, {}, earlier_in_rev,
                              prev_kv, &ev));
    bytes += EventBytes(ev);
    out->events.push_back(std::move(ev));
  }
  RETURN_IF_ERROR(FromRocks(versions->status(), "scan history"));
  out->next_rev = to_rev + 1;
  return absl::OkStatus();
}

// An interval: the event log in revision order, filtered by key.
absl::Status ReadIntervalEvents(MvccView& view, const KeyInterval& iv, int64_t from_rev,
                                int64_t to_rev, bool prev_kv, const EventReadLimits& limits,
                                EventsChunk* out) {
  auto log = view.NewIterator(Cf::kEvents, EventLogKey(to_rev + 1, 0));
  auto hist = view.NewIterator(Cf::kHistory, "");
  HistoryDecoder decoder(view);
  size_t bytes = 0, scanned = 0;
  int64_t current_rev = 0;
  std::string key;
  // The superseded puts ('S') of the current revision: each is its key's next event's
  // previous version. Indices into out->events.
  std::vector<size_t> superseded_in_rev;
  for (log->Seek(EventLogKey(from_rev, 0)); log->Valid(); log->Next()) {
    EventLogEntry entry;
    RETURN_IF_ERROR(ParseEventLog(View(log->key()), View(log->value()), &entry));
    if (entry.revision > to_rev) break;
    if (entry.revision != current_rev) {
      if (bytes >= limits.max_bytes || scanned >= limits.max_scanned) {
        out->next_rev = entry.revision;
        return FromRocks(log->status(), "scan event log");
      }
      current_rev = entry.revision;
      superseded_in_rev.clear();
    }
    ++scanned;
    key.assign(entry.user_key);
    if (!iv.Contains(key)) continue;
    const mvccpb::KeyValue* earlier_in_rev = nullptr;
    for (size_t i : superseded_in_rev) {
      if (out->events[i].kv().key() == key) earlier_in_rev = &out->events[i].kv();
    }
    mvccpb::Event ev;
    RETURN_IF_ERROR(LoadEvent(hist.get(), &decoder, key, entry.revision, entry.type,
                              entry.put_record, earlier_in_rev, prev_kv, &ev));
    bytes += EventBytes(ev);
    if (!entry.put_record.empty()) superseded_in_rev.push_back(out->events.size());
    out->events.push_back(std::move(ev));
  }
  RETURN_IF_ERROR(FromRocks(log->status(), "scan event log"));
  out->next_rev = to_rev + 1;
  return absl::OkStatus();
}

}  // namespace

size_t EventBytes(const mvccpb::Event& event) {
  return 32 + event.kv().key().size() + event.kv().value().size() +
         (event.has_prev_kv() ? 24 + event.prev_kv().key().size() + event.prev_kv().value().size()
                              : 0);
}

absl::StatusOr<EventsChunk> ReadEvents(MvccView& view, const KeyInterval& iv, int64_t from_rev,
                                       int64_t to_rev, bool prev_kv,
                                       const EventReadLimits& limits) {
  EventsChunk out;
  out.next_rev = from_rev;
  if (from_rev > to_rev || iv.Empty()) {
    out.next_rev = std::max(from_rev, to_rev + 1);
    return out;
  }
  if (iv.single) {
    RETURN_IF_ERROR(ReadKeyEvents(view, iv.begin, from_rev, to_rev, prev_kv, limits, &out));
  } else {
    RETURN_IF_ERROR(ReadIntervalEvents(view, iv, from_rev, to_rev, prev_kv, limits, &out));
  }
  return out;
}

}  // namespace keel::storage::mvcc
