// Test-only (KEEL_FAILPOINTS builds): message loss, duplication, delay and reordering
// between members, as common/failpoint.h's net_* settings say. The host kernel of the
// chaos tests has no netem, so the receiving member perturbs what its peers sent.
#pragma once

#include <vector>

#include "proto/raft.pb.h"

namespace keel::server {

// Called by the raft thread on every batch of peer messages it is about to step (and
// only by that thread): drops, duplicates or holds back messages, and appends held-back
// ones whose delay has passed (so they arrive after newer ones). Held-back messages wait
// for the next call; the raft thread calls at least once per tick. MsgSnap passes
// untouched: its data was installed before it got here. MsgProp (a write forwarded by a
// follower) may be dropped or delayed but is never duplicated: that would be a second
// write, which no TCP stream produces.
void PerturbPeerMessages(std::vector<raftpb::Message>* messages);

}  // namespace keel::server
