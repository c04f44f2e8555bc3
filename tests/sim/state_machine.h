// StateMachine: the replicated state of one simulated node.
//
// The state is a hash chain over every applied entry (index, term, type, data), so two
// nodes have the same state exactly when they applied the same sequence, and a snapshot
// is three numbers. That is all the safety checks need: the checker compares chains
// with the one global history.
//
// Thread-safety: none; a plain value type.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/raft.pb.h"

namespace keel::sim {

// FNV-1a over the entry's term, type and data: identifies an entry's contents.
uint64_t EntryHash(const raftpb::Entry& entry);
// The chain step: the state after applying an entry with `entry_hash` at `index`.
uint64_t ChainHash(uint64_t previous, uint64_t index, uint64_t entry_hash);

struct StateMachine {
  uint64_t applied_index = 0;
  uint64_t applied_term = 0;
  uint64_t hash = 0;  // Chain hash of entries [1, applied_index]; 0 when empty.

  void Apply(const raftpb::Entry& entry) {
    applied_index = entry.index();
    applied_term = entry.term();
    hash = ChainHash(hash, entry.index(), EntryHash(entry));
  }
  // The bytes carried in Snapshot.data.
  std::string Encode() const;
  // Empty data is the empty state (a bootstrap snapshot). kDataLoss on garbage.
  static absl::StatusOr<StateMachine> Decode(absl::string_view data);
};

}  // namespace keel::sim
