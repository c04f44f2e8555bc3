#include "raft/bootstrap.h"

namespace keel::raft {

std::vector<raftpb::Entry> BootstrapEntries(const std::vector<uint64_t>& voters) {
  std::vector<raftpb::Entry> entries;
  entries.reserve(voters.size());
  for (uint64_t id : voters) {
    raftpb::ConfChange change;
    change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    change.set_node_id(id);
    raftpb::Entry& e = entries.emplace_back();
    e.set_term(1);
    e.set_index(entries.size());
    e.set_type(raftpb::ENTRY_CONF_CHANGE);
    e.set_data(change.SerializeAsString());
  }
  return entries;
}

raftpb::HardState BootstrapHardState(size_t voter_count) {
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(voter_count);
  return hs;
}

absl::Status Bootstrap(MemoryStorage* storage, const std::vector<uint64_t>& voters) {
  if (storage->LastIndex() != 0) {
    return absl::FailedPreconditionError("raft: bootstrap needs an empty log");
  }
  for (size_t i = 0; i < voters.size(); ++i) {
    if (voters[i] == 0) return absl::InvalidArgumentError("raft: voter id 0");
    for (size_t j = 0; j < i; ++j) {
      if (voters[i] == voters[j]) return absl::InvalidArgumentError("raft: duplicate voter id");
    }
  }
  absl::Status status = storage->Append(BootstrapEntries(voters));
  if (!status.ok()) return status;
  storage->SetHardState(BootstrapHardState(voters.size()));
  return absl::OkStatus();
}

}  // namespace keel::raft
