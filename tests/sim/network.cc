#include "tests/sim/network.h"

#include "absl/strings/str_cat.h"

namespace keel::sim {

void Network::Send(const raftpb::Message& message, uint64_t sender_incarnation, uint64_t now_tick) {
  const bool dropped = rng_->Chance(faults_.drop_probability);
  Enqueue(message, sender_incarnation, now_tick, dropped);
  if (!dropped && rng_->Chance(faults_.duplicate_probability)) {
    Enqueue(message, sender_incarnation, now_tick, false);
  }
}

void Network::Enqueue(const raftpb::Message& message, uint64_t sender_incarnation,
                      uint64_t now_tick, bool dropped) {
  const uint64_t delay = rng_->Range(1, std::max<uint64_t>(1, faults_.delay_ticks_max));
  queue_.emplace(std::make_pair(now_tick + delay, next_seq_++),
                 Envelope{message, sender_incarnation, dropped});
}

std::vector<Delivery> Network::TakeDue(uint64_t now_tick) {
  std::vector<Delivery> out;
  while (!queue_.empty() && queue_.begin()->first.first <= now_tick) {
    auto node = queue_.extract(queue_.begin());
    Envelope& env = node.mapped();
    const bool cut = !CanReach(env.message.from(), env.message.to());
    out.push_back(Delivery{std::move(env.message), env.sender_incarnation, env.dropped || cut});
  }
  return out;
}

void Network::SetGroups(const std::map<uint64_t, int>& group_of,
                        const std::set<uint64_t>& bridges) {
  group_of_ = group_of;
  bridges_ = bridges;
}

void Network::Heal() {
  group_of_.clear();
  bridges_.clear();
}

bool Network::CanReach(uint64_t from, uint64_t to) const {
  if (from == to) return true;
  if (bridges_.count(from) || bridges_.count(to)) return true;
  auto group = [this](uint64_t id) {
    auto it = group_of_.find(id);
    return it == group_of_.end() ? 0 : it->second;
  };
  return group(from) == group(to);
}

std::string Network::DescribePartition() const {
  if (!partitioned()) return "healed";
  std::string out = "groups{";
  for (const auto& [id, g] : group_of_) absl::StrAppend(&out, id, ":", g, " ");
  out += "} bridges{";
  for (uint64_t id : bridges_) absl::StrAppend(&out, id, " ");
  out += "}";
  return out;
}

}  // namespace keel::sim
