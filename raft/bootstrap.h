// Bootstrapping a new Raft group (etcd's way): the initial membership is written into
// the log itself, as one committed ENTRY_CONF_CHANGE (add voter) per initial member at
// indices 1..n in term 1. Every initial member persists these entries and
// BootstrapHardState before its first RawNode starts; it then applies them like any
// other committed conf change (RawNode::ApplyConfChange).
//
// Why not just a ConfState in storage: a member added later replays the log from index
// 1 (unless it gets a snapshot) and must learn the initial voters from it; otherwise
// it would count votes against an incomplete membership.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "proto/raft.pb.h"
#include "raft/memory_storage.h"

namespace keel::raft {

// Entries 1..n adding each voter (ids must be distinct and non-zero).
[[nodiscard]] std::vector<raftpb::Entry> BootstrapEntries(const std::vector<uint64_t>& voters);
// Term 1, no vote, commit n.
[[nodiscard]] raftpb::HardState BootstrapHardState(size_t voter_count);
// Writes both into an empty MemoryStorage (tests, simulator, benchmarks).
[[nodiscard]] absl::Status Bootstrap(MemoryStorage* storage, const std::vector<uint64_t>& voters);

}  // namespace keel::raft
