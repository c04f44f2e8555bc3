#include "tests/sim/checker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keel::sim {
namespace {

absl::Status Violation(absl::string_view property, absl::string_view detail) {
  return absl::InternalError(absl::StrCat("VIOLATION of ", property, ": ", detail));
}

std::string DescribeConf(const raftpb::ConfState& conf) {
  return absl::StrCat("voters{", absl::StrJoin(conf.voters(), ","), "} learners{",
                      absl::StrJoin(conf.learners(), ","), "}");
}

bool SameMembers(const raftpb::ConfState& a, const raftpb::ConfState& b) {
  auto sorted = [](const auto& field) {
    std::vector<uint64_t> v(field.begin(), field.end());
    std::sort(v.begin(), v.end());
    return v;
  };
  return sorted(a.voters()) == sorted(b.voters()) && sorted(a.learners()) == sorted(b.learners());
}

}  // namespace

uint64_t LogView::SnapshotIndex() const {
  if (pending_snapshot != nullptr) return pending_snapshot->metadata().index();
  auto snap = storage->GetSnapshot();
  return snap.ok() ? snap->metadata().index() : storage->FirstIndex() - 1;
}

uint64_t LogView::LastIndex() const {
  if (pending_entries != nullptr && !pending_entries->empty()) {
    return pending_entries->back().index();
  }
  if (pending_snapshot != nullptr) return pending_snapshot->metadata().index();
  return storage->LastIndex();
}

std::optional<uint64_t> LogView::Term(uint64_t i) const {
  if (pending_entries != nullptr && !pending_entries->empty()) {
    const uint64_t first = pending_entries->front().index();
    if (i >= first && i <= pending_entries->back().index()) {
      return (*pending_entries)[i - first].term();
    }
    if (i > pending_entries->back().index()) return std::nullopt;
  }
  if (pending_snapshot != nullptr) {
    if (i == pending_snapshot->metadata().index()) return pending_snapshot->metadata().term();
    return std::nullopt;
  }
  auto term = storage->Term(i);
  if (!term.ok()) return std::nullopt;
  return *term;
}

Checker::Checker(const std::vector<uint64_t>& initial_voters) {
  history_.push_back(HistoryEntry{});
  raftpb::ConfState initial;
  for (uint64_t id : initial_voters) initial.add_voters(id);
  config_at_[0] = initial;
}

const raftpb::ConfState& Checker::ConfigAt(uint64_t index) const {
  auto it = config_at_.upper_bound(index);
  --it;  // config_at_[0] always exists.
  return it->second;
}

uint64_t Checker::Coverage(const LogView& log) const {
  const uint64_t snapshot_index = std::min(log.SnapshotIndex(), committed_index());
  uint64_t i = std::min(log.LastIndex(), committed_index());
  // Log matching (checked separately) makes a matching term at i imply the prefix.
  for (; i > snapshot_index; --i) {
    auto term = log.Term(i);
    if (term.has_value() && *term == history_[i].term) return i;
  }
  return snapshot_index;
}

absl::Status Checker::OnLeader(uint64_t id, uint64_t term, const LogView& log) {
  auto [it, inserted] = leader_of_term_.emplace(term, TermLeader{id, false});
  if (!inserted && it->second.id != id) {
    return Violation("election safety (one leader per term)",
                     absl::StrCat("nodes ", it->second.id, " and ", id, " both lead term ", term));
  }
  if (!inserted) return absl::OkStatus();
  const uint64_t covered = Coverage(log);
  if (covered < committed_index()) {
    return Violation(
        "leader completeness",
        absl::StrCat("node ", id, " became leader of term ", term, " but its log (last index ",
                     log.LastIndex(), ") lacks committed entry ", covered + 1, " (term ",
                     history_[covered + 1].term, "); committed index is ", committed_index()));
  }
  return absl::OkStatus();
}

void Checker::OnLeaderActs(uint64_t id, uint64_t term) {
  auto it = leader_of_term_.find(term);
  if (it != leader_of_term_.end() && it->second.id == id) it->second.acted = true;
}

void Checker::OnCrash(uint64_t id) {
  for (auto it = leader_of_term_.begin(); it != leader_of_term_.end();) {
    it = it->second.id == id && !it->second.acted ? leader_of_term_.erase(it) : std::next(it);
  }
}

absl::Status Checker::OnPersist(uint64_t id, std::optional<uint64_t> prev_term,
                                const std::vector<raftpb::Entry>& entries) {
  for (const raftpb::Entry& entry : entries) {
    if (entry.term() == 0 || entry.index() == 0) {
      return Violation("log format", absl::StrCat("node ", id, " persists an entry at index ",
                                                  entry.index(), " with term ", entry.term()));
    }
    if (prev_term.has_value() && *prev_term > entry.term()) {
      return Violation("log matching",
                       absl::StrCat("node ", id, " log term decreases at index ", entry.index(),
                                    ": ", *prev_term, " then ", entry.term()));
    }
    const uint64_t hash = EntryHash(entry);
    auto [it, inserted] =
        seen_.emplace(std::make_pair(entry.index(), entry.term()), SeenEntry{prev_term, hash, id});
    SeenEntry& seen = it->second;
    if (!inserted) {
      if (seen.entry_hash != hash) {
        return Violation("log matching", absl::StrCat("nodes ", seen.first_writer, " and ", id,
                                                      " hold different entries at index ",
                                                      entry.index(), " term ", entry.term()));
      }
      if (prev_term.has_value() && seen.prev_term.has_value() && *seen.prev_term != *prev_term) {
        return Violation(
            "log matching",
            absl::StrCat("nodes ", seen.first_writer, " and ", id, " agree on index ",
                         entry.index(), " term ", entry.term(), " but the entry before has term ",
                         *seen.prev_term, " vs ", *prev_term));
      }
      if (!seen.prev_term.has_value()) seen.prev_term = prev_term;
    }
    prev_term = entry.term();
  }
  return absl::OkStatus();
}

absl::Status Checker::OnApply(uint64_t id, const raftpb::Entry& entry, const StateMachine& state,
                              const raftpb::ConfState* conf) {
  const uint64_t index = entry.index();
  const uint64_t hash = EntryHash(entry);
  if (index > committed_index() + 1) {
    return Violation("state machine safety",
                     absl::StrCat("node ", id, " applies index ", index, " past the history end ",
                                  committed_index()));
  }
  if (index <= committed_index()) {
    const HistoryEntry& h = history_[index];
    if (h.entry_hash != hash || h.chain_hash != state.hash) {
      return Violation("state machine safety",
                       absl::StrCat("node ", id, " applies index ", index, " term ", entry.term(),
                                    " but the history has term ", h.term, " there",
                                    h.entry_hash == hash ? " (its earlier state differs)" : ""));
    }
    if (conf != nullptr) {
      auto it = config_at_.find(index);
      if (it == config_at_.end() || !SameMembers(it->second, *conf)) {
        return Violation("state machine safety (membership)",
                         absl::StrCat("node ", id, " reaches ", DescribeConf(*conf), " at index ",
                                      index, "; the first node reached ",
                                      it == config_at_.end() ? "none" : DescribeConf(it->second)));
      }
    }
    return absl::OkStatus();
  }
  // A new committed entry: the node's earlier state must be the history's.
  if (ChainHash(history_.back().chain_hash, index, hash) != state.hash) {
    return Violation("state machine safety",
                     absl::StrCat("node ", id, " extends the history at index ", index,
                                  " from a state that is not the history's"));
  }
  history_.push_back(HistoryEntry{entry.term(), hash, state.hash});
  if (conf != nullptr) config_at_[index] = *conf;
  if (entry.type() == raftpb::ENTRY_NORMAL && !entry.data().empty()) {
    payload_index_.emplace(entry.data(), index);
  }
  return absl::OkStatus();
}

absl::Status Checker::OnRestore(uint64_t id, const StateMachine& state,
                                const raftpb::ConfState& conf) {
  if (state.applied_index > committed_index()) {
    return Violation("state machine safety",
                     absl::StrCat("node ", id, " restores a snapshot at ", state.applied_index,
                                  " past the history end ", committed_index()));
  }
  const HistoryEntry& h = history_[state.applied_index];
  if (h.chain_hash != state.hash || (state.applied_index > 0 && h.term != state.applied_term)) {
    return Violation("state machine safety",
                     absl::StrCat("node ", id, " restores a snapshot at ", state.applied_index,
                                  " whose state is not the history's"));
  }
  if (!SameMembers(conf, ConfigAt(state.applied_index))) {
    return Violation(
        "state machine safety (membership)",
        absl::StrCat("node ", id, " restores ", DescribeConf(conf), " at ", state.applied_index,
                     " but the history has ", DescribeConf(ConfigAt(state.applied_index))));
  }
  return absl::OkStatus();
}

void Checker::OnReadStart(const std::string& ctx) {
  read_start_committed_.emplace(ctx, committed_index());
}

absl::Status Checker::OnRead(uint64_t id, const std::string& ctx, uint64_t read_index,
                             const StateMachine& state) {
  auto it = read_start_committed_.find(ctx);
  if (it == read_start_committed_.end()) {
    return Violation("linearizable read", absl::StrCat("node ", id, " answers unknown read ", ctx));
  }
  if (read_index < it->second || state.applied_index < it->second) {
    return Violation("linearizable read",
                     absl::StrCat("node ", id, " answers read ", ctx, " at read index ", read_index,
                                  " with state at ", state.applied_index, " but index ", it->second,
                                  " was committed before the read began"));
  }
  if (state.applied_index < read_index) {
    return Violation("linearizable read", absl::StrCat("node ", id, " answers read ", ctx,
                                                       " before applying its read index"));
  }
  if (history_[state.applied_index].chain_hash != state.hash) {
    return Violation("linearizable read",
                     absl::StrCat("node ", id, " answers read ", ctx, " from a diverged state"));
  }
  return absl::OkStatus();
}

absl::Status Checker::CheckDurability(const std::map<uint64_t, LogView>& durable) const {
  const raftpb::ConfState& conf = config();
  const size_t voters = conf.voters_size();
  if (voters == 0) return absl::OkStatus();
  // Every quorum (a majority) must meet a node that holds the history: so more than
  // voters - majority voters must hold it.
  const size_t needed = voters - (voters / 2 + 1) + 1;
  size_t holding = 0;
  std::vector<std::string> coverage;
  for (uint64_t id : conf.voters()) {
    auto it = durable.find(id);
    const uint64_t covered = it == durable.end() ? 0 : Coverage(it->second);
    if (covered >= committed_index()) ++holding;
    coverage.push_back(absl::StrCat(id, ":", covered));
  }
  if (holding < needed) {
    return Violation("durability (committed entry lost)",
                     absl::StrCat("only ", holding, " of ", voters,
                                  " voters durably hold the committed prefix up to ",
                                  committed_index(), " (need ", needed,
                                  "); durable coverage per voter: ", absl::StrJoin(coverage, " ")));
  }
  return absl::OkStatus();
}

std::optional<uint64_t> Checker::IndexOfPayload(const std::string& payload) const {
  auto it = payload_index_.find(payload);
  if (it == payload_index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace keel::sim
