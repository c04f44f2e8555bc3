#include "tests/chaos/watch_check.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace keel::chaos {
namespace {

constexpr size_t kMaxExamples = 10;

std::string Describe(const WatchEvent& e) {
  return absl::StrCat("revision ", e.revision, " ", e.is_put ? "put " : "delete ", e.key,
                      e.is_put ? absl::StrCat("=", e.value) : "");
}

void Example(WatchCheckResult* r, std::string text) {
  if (r->examples.size() < kMaxExamples) r->examples.push_back(std::move(text));
}

void CheckWatcher(const std::vector<WatchEvent>& history, int64_t history_first,
                  int64_t history_last, const WatcherLog& w, WatchCheckResult* r) {
  const int64_t from = std::max(w.start_revision, history_first);
  const std::string who =
      absl::StrCat("watcher ", w.name, " (", w.range.ToString(), " from ", w.start_revision, ")");
  // The events it should get, in order, and where each one is.
  std::vector<const WatchEvent*> expected;
  absl::flat_hash_map<std::pair<int64_t, std::string>, size_t> index;
  for (const WatchEvent& e : history) {
    if (e.revision < from || !w.range.Contains(e.key)) continue;
    index[{e.revision, e.key}] = expected.size();
    expected.push_back(&e);
  }
  std::vector<bool> received(expected.size(), false);
  std::map<int64_t, size_t> batch_of_revision;
  int64_t split_reported = 0;
  size_t furthest = 0;  // One past the furthest expected event received.
  for (size_t b = 0; b < w.batches.size(); ++b) {
    for (const WatchEvent& e : w.batches[b]) {
      // Compacted away, or applied after the history was read: nothing to compare.
      if (e.revision < history_first || e.revision > history_last) continue;
      ++r->events;
      auto [it, first_of_revision] = batch_of_revision.emplace(e.revision, b);
      if (!first_of_revision && it->second != b && split_reported != e.revision) {
        split_reported = e.revision;
        ++r->split;
        Example(r, absl::StrCat(who, ": the events of revision ", e.revision,
                                " came in more than one response"));
      }
      auto found = index.find(std::make_pair(e.revision, e.key));
      if (found == index.end() || !(*expected[found->second] == e)) {
        ++r->phantom;
        Example(r, absl::StrCat(who, ": received ", Describe(e),
                                found == index.end()
                                    ? ", which is not in the history"
                                    : absl::StrCat(", but the history has ",
                                                   Describe(*expected[found->second]))));
        continue;
      }
      const size_t i = found->second;
      if (received[i]) {
        ++r->duplicates;
        Example(r, absl::StrCat(who, ": received ", Describe(e), " twice"));
        continue;
      }
      received[i] = true;
      if (i + 1 < furthest) {
        ++r->disorder;
        Example(r, absl::StrCat(who, ": received ", Describe(e), " after ",
                                Describe(*expected[furthest - 1])));
      }
      furthest = std::max(furthest, i + 1);
    }
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (received[i]) continue;
    ++r->gaps;
    Example(r, absl::StrCat(who, ": never received ", Describe(*expected[i])));
  }
  if (!w.ended.empty()) {
    ++r->ended;
    Example(r, absl::StrCat(who, ": the watch ended: ", w.ended));
  }
}

void CheckWrites(const std::vector<WatchEvent>& history, int64_t history_first,
                 const std::vector<WriteRecord>& writes, WatchCheckResult* r) {
  absl::flat_hash_map<std::pair<std::string, std::string>, const WriteRecord*> by_value;
  for (const WriteRecord& w : writes) by_value[{w.key, w.value}] = &w;
  absl::flat_hash_map<std::pair<std::string, std::string>, int> applied;
  for (const WatchEvent& e : history) {
    if (!e.is_put) continue;
    auto it = by_value.find(std::make_pair(e.key, e.value));
    if (it == by_value.end() || it->second->effect == WriteRecord::Effect::kNotApplied) {
      ++r->failed_applied;
      Example(r, absl::StrCat("the history has ", Describe(e), ", a write that ",
                              it == by_value.end() ? "nobody made" : "certainly failed"));
      continue;
    }
    if (++applied[{e.key, e.value}] == 2) {
      ++r->applied_twice;
      Example(r, absl::StrCat("the history has ", Describe(e), " a second time"));
    }
  }
  // Writes before a compacted start cannot be told from lost ones.
  if (history_first > 1) return;
  for (const WriteRecord& w : writes) {
    if (w.effect != WriteRecord::Effect::kApplied || applied.contains({w.key, w.value})) continue;
    ++r->acked_no_event;
    Example(r, absl::StrCat("acknowledged put ", w.key, "=", w.value, " is not in the history"));
  }
}

}  // namespace

bool KeyRange::Contains(const std::string& key) const {
  if (end.empty()) return key == begin;
  if (end == std::string(1, '\0')) return key >= begin;
  return key >= begin && key < end;
}

std::string KeyRange::ToString() const {
  if (end.empty()) return absl::StrCat("key ", begin);
  if (end == std::string(1, '\0')) {
    return begin.empty() || begin == std::string(1, '\0') ? "every key"
                                                          : absl::StrCat("keys >= ", begin);
  }
  return absl::StrCat("keys [", begin, ", ", end, ")");
}

std::string WatchCheckResult::Summary() const {
  return absl::StrCat("watch_events=", events, " watch_gaps=", gaps, " watch_dups=", duplicates,
                      " watch_disorder=", disorder, " watch_split=", split,
                      " watch_phantom=", phantom, " watch_ended=", ended,
                      " history_events=", history_events, " history_gaps=", history_gaps,
                      " acked_no_event=", acked_no_event, " failed_applied=", failed_applied,
                      " applied_twice=", applied_twice, " diverged=", diverged);
}

WatchCheckResult CheckWatch(const std::vector<WatchEvent>& history, int64_t history_first,
                            int64_t history_last, const std::vector<WatcherLog>& watchers,
                            const std::vector<WriteRecord>& writes) {
  WatchCheckResult r;
  r.history_events = history.size();
  for (const WatchEvent& e : history) {
    if (e.revision < history_first || e.revision > history_last) {
      ++r.history_gaps;
      Example(&r, absl::StrCat("the history has ", Describe(e), ", outside ", history_first, "..",
                               history_last));
    }
  }
  for (size_t i = 1; i < history.size(); ++i) {
    const int64_t previous = history[i - 1].revision;
    if (history[i].revision < previous) {
      ++r.history_gaps;
      Example(&r, absl::StrCat("the history goes back from revision ", previous, " to ",
                               history[i].revision));
    }
    if (history[i].revision <= previous + 1) continue;
    r.history_gaps += history[i].revision - previous - 1;
    Example(&r, absl::StrCat("the history has no event at revisions ", previous + 1, "..",
                             history[i].revision - 1));
  }
  for (const WatcherLog& w : watchers) CheckWatcher(history, history_first, history_last, w, &r);
  CheckWrites(history, history_first, writes, &r);
  return r;
}

}  // namespace keel::chaos
