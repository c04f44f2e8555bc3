// RaftNode as the transport's SnapshotHandler: state-machine snapshots on the wire.
//
// Sending: a fresh checkpoint of the state machine is taken on the apply thread when a
// follower needs one, and streamed; its applied index may be above the raft snapshot
// the MsgSnap names, which is safe because the receiver's state machine skips entries
// it already has when raft replays the log above that snapshot.
//
// Receiving: chunks are verified and staged, then installed on the apply thread — only
// if newer than what the state machine has — before raft sees the MsgSnap.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/raft_node.h"
#include "storage/snapshot.h"

namespace keel::server {
namespace {

class ChunkReader final : public SnapshotChunkReader {
 public:
  explicit ChunkReader(std::unique_ptr<storage::SnapshotReader> reader)
      : reader_(std::move(reader)) {}
  absl::StatusOr<bool> Next(std::string* chunk) override {
    internalpb::SnapshotChunk c;
    ASSIGN_OR_RETURN(bool more, reader_->Next(&c));
    if (!more) return false;
    *chunk = c.SerializeAsString();
    return true;
  }

 private:
  std::unique_ptr<storage::SnapshotReader> reader_;  // Removes its checkpoint when done.
};

}  // namespace

absl::StatusOr<std::unique_ptr<storage::SnapshotReader>> RaftNode::CheckpointStateMachine() {
  const std::string dir =
      absl::StrCat(options_.snapshot_dir, "/send-", next_checkpoint_id_.fetch_add(1));
  std::unique_ptr<storage::SnapshotReader> reader;
  RETURN_IF_ERROR(RunOnApplyThread([&]() -> absl::Status {
    raftpb::SnapshotMetadata meta;
    meta.set_index(kv_->AppliedIndex());
    *meta.mutable_conf_state() = applied_conf_state_;
    ASSIGN_OR_RETURN(reader, storage::SnapshotReader::Create(*kv_, meta, dir));
    return absl::OkStatus();
  }));
  return reader;
}

absl::StatusOr<std::unique_ptr<SnapshotChunkReader>> RaftNode::OpenSnapshot(
    const raftpb::Message& msg_snap) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::SnapshotReader> reader, CheckpointStateMachine());
  return std::unique_ptr<SnapshotChunkReader>(new ChunkReader(std::move(reader)));
}

absl::Status RaftNode::ReceiveSnapshot(const raftpb::Message& msg_snap,
                                       SnapshotChunkReader& chunks) {
  std::lock_guard<std::mutex> one_at_a_time(receive_snapshot_mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<storage::SnapshotInstaller> installer,
                   storage::SnapshotInstaller::Begin(options_.snapshot_dir + "/incoming"));
  uint64_t data_index = 0;
  std::string bytes;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, chunks.Next(&bytes));
    if (!more) break;
    internalpb::SnapshotChunk chunk;
    if (!chunk.ParseFromString(bytes)) {
      return absl::DataLossError("malformed snapshot chunk");
    }
    if (chunk.has_manifest()) data_index = chunk.manifest().metadata().index();
    RETURN_IF_ERROR(installer->Add(chunk));
  }
  if (data_index < msg_snap.snapshot().metadata().index()) {
    return absl::DataLossError(absl::StrCat("snapshot data at index ", data_index,
                                            " is older than the raft snapshot at ",
                                            msg_snap.snapshot().metadata().index()));
  }
  return RunOnApplyThread([&]() -> absl::Status {
    // Never move the state machine backwards: raft would not re-apply what it lost.
    if (kv_->AppliedIndex() >= data_index) return absl::OkStatus();
    ASSIGN_OR_RETURN(internalpb::SnapshotManifest manifest, installer->Finish(*kv_));
    (void)manifest;
    if (options_.on_events) {
      std::vector<storage::ApplyResult> none;  // The revision jumped: watches replay it.
      options_.on_events(&none);
    }
    applied_index_ = std::max(applied_index_.load(), kv_->AppliedIndex());
    RETURN_IF_ERROR(LoadMembership());  // The snapshot carries the membership record.
    ReleaseReads(applied_index_.load(), /*deferred=*/nullptr);  // Apply thread.
    return absl::OkStatus();
  });
}

}  // namespace keel::server
