#include "tests/unit/raft/raft_test_util.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "raft/bootstrap.h"

namespace keel::raft::testing {

std::vector<raftpb::Entry> MakeEntries(uint64_t first, const std::vector<uint64_t>& terms) {
  std::vector<raftpb::Entry> out;
  for (size_t i = 0; i < terms.size(); ++i) {
    raftpb::Entry e;
    e.set_index(first + i);
    e.set_term(terms[i]);
    e.set_type(raftpb::ENTRY_NORMAL);
    e.set_data(absl::StrCat("i", first + i, "t", terms[i]));
    out.push_back(std::move(e));
  }
  return out;
}

raftpb::Message MakeMessage(raftpb::MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  raftpb::Message m;
  m.set_type(type);
  m.set_group_id(kGroupId);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

raftpb::ConfChange MakeConfChange(raftpb::ConfChangeType type, uint64_t node_id) {
  raftpb::ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(node_id);
  return cc;
}

std::vector<raftpb::Message> AllMessages(const Ready& rd) {
  std::vector<raftpb::Message> out = rd.messages;
  out.insert(out.end(), rd.messages_after_persist.begin(), rd.messages_after_persist.end());
  return out;
}

std::vector<raftpb::Message> OfType(const std::vector<raftpb::Message>& msgs,
                                    raftpb::MessageType type) {
  std::vector<raftpb::Message> out;
  for (const auto& m : msgs) {
    if (m.type() == type) out.push_back(m);
  }
  return out;
}

namespace {
bool Matches(const raftpb::Message& m, raftpb::MessageType type, uint64_t from, uint64_t to) {
  return m.type() == type && (from == 0 || m.from() == from) && (to == 0 || m.to() == to);
}
}  // namespace

Network::Network(std::vector<uint64_t> ids, NodeOptions options) : options_(options) {
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) initial_conf_.add_voters(id);
  for (uint64_t id : ids) {
    NodeState& n = nodes_[id];
    n.storage = std::make_unique<MemoryStorage>();
    if (options_.bootstrap_in_log) {
      absl::Status st = Bootstrap(n.storage.get(), ids);
      KEEL_CHECK_MSG(st.ok(), st.ToString().c_str());
    } else {
      n.storage->SetConfState(initial_conf_);
    }
    CreateRawNode(id);
  }
}

Network::~Network() = default;

void Network::CreateRawNode(uint64_t id) {
  NodeState& n = nodes_[id];
  Config c;
  c.id = id;
  c.group_id = kGroupId;
  c.election_tick = options_.election_tick;
  c.heartbeat_tick = options_.heartbeat_tick;
  c.storage = n.storage.get();
  c.applied = 0;
  c.max_size_per_msg_bytes = options_.max_size_per_msg_bytes;
  c.max_committed_size_per_ready_bytes = options_.max_committed_size_per_ready_bytes;
  c.max_inflight_msgs = options_.max_inflight_msgs;
  c.max_inflight_bytes = options_.max_inflight_bytes;
  c.max_uncommitted_entries_bytes = options_.max_uncommitted_entries_bytes;
  c.pre_vote = options_.pre_vote;
  c.check_quorum = options_.check_quorum;
  c.random_seed = options_.seed_base * 1000 + id;
  c.unsafe_injected_bugs = options_.unsafe_injected_bugs;
  auto raw = RawNode::Create(c);
  KEEL_CHECK_MSG(raw.ok(), raw.status().ToString().c_str());
  n.raw = std::move(raw).value();
  // The state machine restarts from the snapshot; committed entries are replayed.
  auto snap = n.storage->GetSnapshot();
  KEEL_CHECK(snap.ok());
  n.applied.clear();
  n.applied_index = snap->metadata().index();
  n.conf_state = snap->metadata().conf_state();
}

RawNode& Network::node(uint64_t id) {
  KEEL_CHECK_MSG(alive(id), "node is not alive");
  return *nodes_[id].raw;
}

MemoryStorage& Network::storage(uint64_t id) {
  KEEL_CHECK(nodes_.count(id) == 1);
  return *nodes_[id].storage;
}

bool Network::alive(uint64_t id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.raw != nullptr;
}

std::vector<uint64_t> Network::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

Status Network::status(uint64_t id) { return node(id).GetStatus(); }

uint64_t Network::Leader() {
  uint64_t leader = 0;
  uint64_t best_term = 0;
  for (uint64_t id : ids()) {
    if (!alive(id)) continue;
    Status st = status(id);
    if (st.soft_state.role == Role::kLeader && st.hard_state.term() >= best_term) {
      leader = id;
      best_term = st.hard_state.term();
    }
  }
  return leader;
}

void Network::ObserveLeader(uint64_t id) {
  if (!alive(id)) return;
  Status st = status(id);
  if (st.soft_state.role != Role::kLeader) return;
  auto [it, inserted] = leader_of_term_.emplace(st.hard_state.term(), id);
  if (!inserted && it->second != id) {
    ADD_FAILURE() << "two leaders in term " << st.hard_state.term() << ": " << it->second << " and "
                  << id;
  }
}

void Network::Send(uint64_t from, const std::vector<raftpb::Message>& msgs) {
  for (const auto& m : msgs) {
    EXPECT_EQ(m.from(), from) << "message from " << from << " names another sender";
    EXPECT_EQ(m.group_id(), kGroupId) << "group id not stamped on " << m.ShortDebugString();
    sent_.push_back(m);
    queue_.push_back(m);
  }
}

void Network::Persist(uint64_t id, const Ready& rd) {
  MemoryStorage& s = storage(id);
  if (rd.snapshot.has_value()) {
    absl::Status st = s.ApplySnapshot(*rd.snapshot);
    EXPECT_TRUE(st.ok()) << "node " << id << ": " << st;
  }
  absl::Status st = s.Append(rd.entries);
  EXPECT_TRUE(st.ok()) << "node " << id << ": " << st;
  if (rd.hard_state.has_value()) {
    EXPECT_LE(rd.hard_state->commit(), s.LastIndex())
        << "node " << id << " persists a commit index beyond its log";
    s.SetHardState(*rd.hard_state);
  }
}

void Network::RecordApplied(uint64_t id, const raftpb::Entry& e) {
  NodeState& n = nodes_[id];
  EXPECT_EQ(e.index(), n.applied_index + 1)
      << "node " << id << " applies out of order: " << e.ShortDebugString();
  n.applied_index = e.index();
  n.applied.push_back(e);
  auto [it, inserted] = history_.emplace(e.index(), std::make_pair(e.term(), e.data()));
  if (!inserted) {
    EXPECT_EQ(it->second.first, e.term())
        << "state machine safety: node " << id << " applied a different entry at " << e.index();
    EXPECT_EQ(it->second.second, e.data())
        << "state machine safety: node " << id << " applied different data at " << e.index();
  }
}

void Network::Apply(uint64_t id, const Ready& rd) {
  NodeState& n = nodes_[id];
  if (rd.snapshot.has_value()) {
    const auto& meta = rd.snapshot->metadata();
    auto it = history_.find(meta.index());
    if (it != history_.end()) {
      EXPECT_EQ(it->second.first, meta.term()) << "snapshot of node " << id << " conflicts";
    }
    n.applied.clear();
    n.applied_index = meta.index();
    n.conf_state = meta.conf_state();
  }
  const uint64_t commit = n.raw->GetStatus().hard_state.commit();
  for (const auto& e : rd.committed_entries) {
    // Committed entries must be durable here: step 2 ran before step 4.
    auto term = n.storage->Term(e.index());
    if (term.ok()) {
      EXPECT_EQ(*term, e.term()) << "node " << id << " applies an entry it has not persisted";
    } else {
      EXPECT_TRUE(IsCompacted(term.status())) << "node " << id << ": " << term.status();
    }
    EXPECT_LE(e.index(), commit) << "node " << id << " applies beyond its commit index";
    RecordApplied(id, e);
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange cc;
      EXPECT_TRUE(cc.ParseFromString(e.data())) << "bad conf change at " << e.index();
      n.conf_state = n.raw->ApplyConfChange(cc);
    }
  }
  for (const auto& rs : rd.read_states) n.read_states.push_back(rs);
}

bool Network::HandleReady(uint64_t id) {
  if (!alive(id) || !node(id).HasReady()) return false;
  Ready rd = node(id).GetReady();
  if (on_ready_) on_ready_(id, rd);
  // The persistence contract: anything promising durable state waits for step 2 — a
  // granted vote, an accepted append, a vote request (the candidate's own vote). A
  // rejection, or a leader telling a stale leader its (durable) term with an empty
  // MsgAppResp, promises nothing, so a leader may send it at once.
  for (const auto& m : rd.messages) {
    EXPECT_FALSE(m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.index() > 0)
        << "ack sent before persisting: " << id << " " << m.ShortDebugString();
    EXPECT_FALSE(m.type() == raftpb::MSG_VOTE_RESP && !m.reject())
        << "vote sent before persisting: " << id << " " << m.ShortDebugString();
    EXPECT_NE(m.type(), raftpb::MSG_VOTE)
        << "vote request sent before persisting: " << id << " " << m.ShortDebugString();
  }
  Send(id, rd.messages);
  Persist(id, rd);
  Send(id, rd.messages_after_persist);
  Apply(id, rd);
  node(id).Advance();
  ObserveLeader(id);
  return true;
}

bool Network::Dropped(const raftpb::Message& m) const {
  if (isolated_.count(m.from()) || isolated_.count(m.to())) return true;
  if (cuts_.count({std::min(m.from(), m.to()), std::max(m.from(), m.to())})) return true;
  for (const auto& rule : drop_rules_) {
    if (rule(m)) return true;
  }
  return false;
}

size_t Network::DeliverPending() {
  std::deque<raftpb::Message> batch;
  batch.swap(queue_);
  for (const auto& m : batch) {
    const bool dropped = Dropped(m) || !alive(m.to());
    if (dropped) {
      if (m.type() == raftpb::MSG_SNAP && auto_report_snapshot_ && alive(m.from())) {
        node(m.from()).ReportSnapshot(m.to(), false);
      }
      continue;
    }
    absl::Status st = node(m.to()).Step(m);
    // A forwarded proposal is refused like a local one (no leader, transfer under way,
    // overload, conf change pending): the sender's caller times out and retries, as a
    // transport would arrange. Any other message must be accepted.
    if (m.type() != raftpb::MSG_PROP) {
      EXPECT_TRUE(st.ok()) << "node " << m.to() << " Step(" << m.ShortDebugString() << "): " << st;
    }
    if (m.type() == raftpb::MSG_SNAP && auto_report_snapshot_ && alive(m.from())) {
      node(m.from()).ReportSnapshot(m.to(), true);
    }
    ObserveLeader(m.to());
    if (after_step_) after_step_(m);
  }
  return batch.size();
}

void Network::Stabilize(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    bool progress = false;
    for (uint64_t id : ids()) {
      while (HandleReady(id)) progress = true;
    }
    if (!queue_.empty()) {
      DeliverPending();
      progress = true;
    }
    if (!progress) return;
  }
  ADD_FAILURE() << "network did not stabilize within " << max_rounds << " rounds";
}

void Network::Tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    node(id).Tick();
    ObserveLeader(id);
  }
}

void Network::TickAll(int n) {
  for (int i = 0; i < n; ++i) {
    for (uint64_t id : ids()) {
      if (alive(id)) Tick(id);
    }
  }
}

void Network::TickAndStabilize(int n) {
  for (int i = 0; i < n; ++i) {
    TickAll();
    Stabilize();
  }
}

void Network::ElectLeader(uint64_t id) {
  absl::Status st = node(id).Campaign();
  EXPECT_TRUE(st.ok()) << st;
  Stabilize();
  ASSERT_EQ(role(id), Role::kLeader) << "node " << id << " did not win its election";
}

uint64_t Network::ProposeAndCommit(uint64_t id, const std::string& data) {
  absl::Status st = node(id).Propose(data);
  EXPECT_TRUE(st.ok()) << st;
  Stabilize();
  const auto& applied = nodes_[id].applied;
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    if (it->data() == data) return it->index();
  }
  ADD_FAILURE() << "proposal '" << data << "' was not applied on node " << id;
  return 0;
}

void Network::Isolate(uint64_t id) { isolated_.insert(id); }

void Network::Cut(uint64_t a, uint64_t b) { cuts_.insert({std::min(a, b), std::max(a, b)}); }

void Network::Heal() {
  isolated_.clear();
  cuts_.clear();
  drop_rules_.clear();
}

void Network::DropIf(std::function<bool(const raftpb::Message&)> pred) {
  drop_rules_.push_back(std::move(pred));
}

void Network::DropType(raftpb::MessageType type) {
  DropIf([type](const raftpb::Message& m) { return m.type() == type; });
}

void Network::Crash(uint64_t id) { nodes_[id].raw.reset(); }

void Network::Restart(uint64_t id) {
  nodes_[id].raw.reset();
  CreateRawNode(id);
}

void Network::ResetNode(uint64_t id, const std::vector<uint64_t>& terms, uint64_t term,
                        uint64_t vote, uint64_t commit) {
  KEEL_CHECK_MSG(!options_.bootstrap_in_log, "ResetNode builds logs from index 1");
  NodeState& n = nodes_[id];
  n.raw.reset();
  n.read_states.clear();
  n.storage = std::make_unique<MemoryStorage>();
  n.storage->SetConfState(initial_conf_);
  absl::Status st = n.storage->Append(MakeEntries(1, terms));
  KEEL_CHECK_MSG(st.ok(), st.ToString().c_str());
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  n.storage->SetHardState(hs);
  CreateRawNode(id);
}

void Network::AddNode(uint64_t id) {
  KEEL_CHECK(nodes_.count(id) == 0);
  NodeState& n = nodes_[id];
  n.storage = std::make_unique<MemoryStorage>();
  if (!options_.bootstrap_in_log) n.storage->SetConfState(initial_conf_);
  CreateRawNode(id);
}

size_t Network::CountSent(raftpb::MessageType type, uint64_t from, uint64_t to) const {
  return std::count_if(sent_.begin(), sent_.end(),
                       [&](const raftpb::Message& m) { return Matches(m, type, from, to); });
}

size_t Network::CountQueued(raftpb::MessageType type, uint64_t from, uint64_t to) const {
  return std::count_if(queue_.begin(), queue_.end(),
                       [&](const raftpb::Message& m) { return Matches(m, type, from, to); });
}

std::vector<std::string> Network::AppliedData(uint64_t id) {
  std::vector<std::string> out;
  for (const auto& e : nodes_[id].applied) {
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) out.push_back(e.data());
  }
  return out;
}

std::vector<raftpb::Entry> Network::StoredLog(uint64_t id) {
  MemoryStorage& s = storage(id);
  if (s.LastIndex() < s.FirstIndex()) return {};
  auto entries = s.Entries(s.FirstIndex(), s.LastIndex() + 1, UINT64_MAX);
  KEEL_CHECK(entries.ok());
  return *entries;
}

void Network::CheckInvariants() {
  // Election safety is checked as it happens (ObserveLeader); check the live nodes once
  // more in case a test drove them by hand.
  for (uint64_t id : ids()) ObserveLeader(id);

  // Log matching on the committed prefix: any two nodes agree on every entry both have
  // and both consider committed (persisted commit index).
  std::vector<uint64_t> all = ids();
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) {
      MemoryStorage& a = storage(all[i]);
      MemoryStorage& b = storage(all[j]);
      auto ia = a.GetInitialState();
      auto ib = b.GetInitialState();
      if (!ia.ok() || !ib.ok()) continue;
      const uint64_t committed = std::min(ia->hard_state.commit(), ib->hard_state.commit());
      const uint64_t lo = std::max(a.FirstIndex(), b.FirstIndex());
      for (uint64_t k = lo; k <= committed; ++k) {
        auto ea = a.Entries(k, k + 1, UINT64_MAX);
        auto eb = b.Entries(k, k + 1, UINT64_MAX);
        if (!ea.ok() || !eb.ok()) {
          ADD_FAILURE() << "committed entry " << k << " missing on node "
                        << (ea.ok() ? all[j] : all[i]);
          break;
        }
        if ((*ea)[0].term() != (*eb)[0].term() || (*ea)[0].data() != (*eb)[0].data()) {
          ADD_FAILURE() << "log matching: nodes " << all[i] << " and " << all[j]
                        << " disagree on committed entry " << k << ": "
                        << (*ea)[0].ShortDebugString() << " vs " << (*eb)[0].ShortDebugString();
          break;
        }
      }
    }
  }

  // Leader completeness: the leader of the highest term holds every applied entry
  // (those it has not compacted away).
  const uint64_t leader = Leader();
  if (leader != 0) {
    MemoryStorage& s = storage(leader);
    for (const auto& [index, te] : history_) {
      if (index < s.FirstIndex()) continue;
      auto t = s.Term(index);
      if (!t.ok() || *t != te.first) {
        ADD_FAILURE() << "leader completeness: leader " << leader << " lacks applied entry "
                      << index << " of term " << te.first;
        break;
      }
    }
  }
}

}  // namespace keel::raft::testing
