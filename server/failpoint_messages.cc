#include "server/failpoint_messages.h"

#include <map>
#include <utility>

#include "absl/time/clock.h"
#include "common/failpoint.h"

namespace keel::server {

void PerturbPeerMessages(std::vector<raftpb::Message>* messages) {
  // Raft thread only (one node per process), so no lock.
  static auto* held = new std::multimap<absl::Time, raftpb::Message>();
  const failpoint::Settings settings = failpoint::Current();
  if (!settings.net_active() && held->empty()) return;

  std::vector<raftpb::Message> out;
  out.reserve(messages->size());
  const absl::Time now = absl::Now();
  for (auto& m : *messages) {
    if (m.type() == raftpb::MSG_SNAP || !settings.net_active()) {
      out.push_back(std::move(m));
      continue;
    }
    if (failpoint::Uniform() < settings.net_drop) continue;
    // A forwarded proposal is a client's write, not a raft message: raft tolerates
    // duplicated messages, but a duplicated proposal is a second write (TCP never
    // duplicates, so this would test a fault that cannot happen).
    if (m.type() != raftpb::MSG_PROP && failpoint::Uniform() < settings.net_duplicate) {
      out.push_back(m);
    }
    if (settings.net_delay_ms_max > 0 && failpoint::Uniform() < settings.net_delay) {
      const double ms = failpoint::Uniform() * settings.net_delay_ms_max;
      held->emplace(now + absl::Milliseconds(ms), std::move(m));
      continue;
    }
    out.push_back(std::move(m));
  }
  // Due messages come after this batch: older messages overtaken by newer ones.
  for (auto it = held->begin(); it != held->end() && it->first <= now;) {
    out.push_back(std::move(it->second));
    it = held->erase(it);
  }
  messages->swap(out);
}

}  // namespace keel::server
