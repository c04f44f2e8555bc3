// RaftNode: the node loop of keeld. It owns the consensus core (raft::RawNode) of one
// Raft group and joins it to the durable log (storage::RaftLogStore), the state machine
// (storage::KvStore) and the peer transport.
//
// Threads:
//  - the raft thread owns the RawNode: it ticks it, steps peer messages, feeds batched
//    proposals and read requests into it, and carries out each Ready — sends the
//    leader's messages, persists entries + hard state in one synced batch, sends the
//    rest, applies conf changes to raft, and hands committed entries to the apply
//    thread. Proposals arriving during an fsync batch up into the next Ready (group
//    commit). One pass of that loop at a time: a caller that queues work while the
//    loop is idle may run the pass itself instead of waking the raft thread (LoopPass):
//    the peer streams do (a follower's append, the leader's acks) and so do client
//    writes and reads, which saves a thread wake-up on each step of a write's critical
//    path. Under load the loop is seldom idle and the raft thread does the passes.
//  - the apply thread applies committed entries to the KvStore in batches, answers the
//    waiting writers, releases reads whose index is applied, and takes snapshots, so a
//    slow apply never delays heartbeats. A batch of at most kInlineApplyMaxEntries
//    that finds the apply thread idle is applied by the loop pass instead (one thread
//    hop less per write at low load); the two never apply concurrently.
//
// Callbacks (write results, read barriers) run on the apply thread or the thread running
// the loop pass with no node lock held; they must be quick (hand real work to another
// thread).
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/internal.pb.h"
#include "raft/raw_node.h"
#include "server/membership.h"
#include "server/peer_transport.h"
#include "storage/kv_store.h"
#include "storage/raft_log_store.h"
#include "storage/snapshot.h"

namespace keel::server {

// Committed batches up to this size may be applied by the loop pass (see Threads).
inline constexpr size_t kInlineApplyMaxEntries = 8;

// Where the loop pass that handles a caller's work runs. kCallerIfIdle: on the
// caller's thread, right away, when no pass is running (else the running pass or the
// raft thread picks the work up). The caller must hold no lock that a callback, the
// state machine's hooks (on_applied) or the transport may take, and may be held up for
// one pass (an fsync).
enum class LoopPass { kRaftThread, kCallerIfIdle };

struct RaftNodeOptions {
  uint64_t member_id = 0;
  uint64_t group_id = 1;
  // etcd's --heartbeat-interval: one raft tick.
  int tick_interval_ms = 100;
  // etcd's --election-timeout, in ticks (1000 ms / 100 ms).
  int election_timeout_ticks = 10;
  // Applied entries between two state-machine snapshots (then the log is compacted).
  uint64_t snapshot_count = 10'000;
  // Entries kept in the log below a snapshot, so a briefly lagging follower catches up
  // by appends rather than a whole snapshot.
  uint64_t snapshot_catchup_entries = 5'000;
  // Proposals queued but not yet handed to raft; past it, "too many requests".
  // Also bounds the raft log's uncommitted bytes, so an overloaded leader refuses
  // quickly ("too many requests") instead of queueing past every client's deadline.
  size_t proposal_queue_max = 8192;
  size_t proposal_queue_bytes_max = 64 << 20;
  // Committed but unapplied entries beyond which new writes are refused (etcd: 5000).
  uint64_t max_apply_lag_entries = 5'000;
  uint64_t max_size_per_msg_bytes = 1 << 20;
  int max_inflight_msgs = 512;
  // Directory for state-machine snapshot checkpoints and received snapshots.
  std::string snapshot_dir;
  uint64_t random_seed = 0;  // 0: seeded from the member id and the clock.
  // Called (on a transport thread) when a peer tells its client URLs and name.
  std::function<void(uint64_t, const std::string&, const std::string&)> on_peer_client_urls;
  // Called (on a transport thread) when a peer refused us as removed from the cluster.
  std::function<void(uint64_t)> on_removed_by_peer;
  // The membership until the state machine stores one (server/membership.h): the
  // --initial-cluster for a new cluster, empty for a member joining an existing one.
  internalpb::MembershipRecord initial_membership;
  // Called on the apply thread with the membership at Start, after each applied conf
  // change and after a snapshot install. Must be quick (hand work to another thread).
  std::function<void(const internalpb::MembershipRecord&)> on_membership;
  // Called after each applied batch (on the thread that applied it: the apply thread,
  // or the loop pass for a small batch) with its committed entries and the state
  // machine's results (storage::KvStore::Apply), before the batch's writers are answered
  // and reads released. Must be quick; must not wait for the node.
  std::function<void(const std::vector<raftpb::Entry>&, const std::vector<storage::ApplyResult>&)>
      on_applied;
  // Called right after on_applied (same thread, same order), and after a snapshot
  // install with no results (the revision jumped): the watch hub's hook. It may take
  // the results' events (nobody reads them afterwards); it must be quick, never block.
  std::function<void(std::vector<storage::ApplyResult>*)> on_events;
};

struct NodeStatus {
  uint64_t member_id = 0;
  uint64_t leader_id = 0;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  bool is_leader = false;
  bool is_learner = false;
};

class RaftNode final : public PeerMessageHandler, public SnapshotHandler {
 public:
  using WriteCallback = std::function<void(absl::StatusOr<storage::ApplyResult>)>;
  using ReadCallback = std::function<void(absl::Status)>;

  // `log` and `kv` must outlive the node.
  RaftNode(RaftNodeOptions options, storage::RaftLogStore* log, storage::KvStore* kv);
  ~RaftNode() override;
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // The transport is created after the node (it needs the node as handler); set it
  // before Start. Not owned.
  void SetTransport(PeerTransport* transport) { transport_ = transport; }

  // Builds the RawNode from the log, catches the state machine up and starts the
  // threads. Errors: storage errors (kDataLoss: a corrupt log or state machine).
  [[nodiscard]] absl::Status Start();

  // If leader, hands leadership to the most caught-up voter and waits (up to
  // `timeout`) until another member leads. Returns once done or timed out.
  void TransferLeadershipAway(absl::Duration timeout);

  // Fails every waiting request with "server stopped", stops and joins the threads.
  // Idempotent.
  void Stop();

  // Replicates a write. `done` is called exactly once: with the state machine's result
  // once the entry applied here, or an error (no leader, too many requests, timed out,
  // stopped). Never blocks. A non-zero `leader_term` makes it a leader-only proposal:
  // it is appended only if this member is still leader in exactly that term when the
  // raft thread takes it ("not leader" otherwise), so a decision a leader took in its
  // term (e.g. a lease expiry) is never forwarded to or carried out by a later leader.
  void Propose(internalpb::Request request, absl::Time deadline, WriteCallback done,
               uint64_t leader_term = 0, LoopPass pass = LoopPass::kRaftThread);

  // Proposes a membership change (server/membership.h); only the leader accepts it
  // ("not leader" otherwise). The raft thread refuses it while another change is
  // pending, when it would leave too few started voters for a quorum, and a promotion
  // of a learner that is not in sync. `done` is called once: with the result of
  // applying it here (the record's own checks), or an error (timed out, stopped).
  // `context` gets this member's origin ids.
  void ProposeConfChange(raftpb::ConfChange change, internalpb::ConfChangeContext context,
                         absl::Time deadline, std::function<void(absl::Status)> done);

  // Maintenance.MoveLeader: hands leadership to voter `target` (only the leader
  // accepts it) and calls `done` once `target` leads, or with an error (bad
  // transferee, not leader, timed out).
  void MoveLeader(uint64_t target, absl::Time deadline, std::function<void(absl::Status)> done);

  // A linearizable read barrier (ReadIndex): `done(OK)` once this member's state
  // machine has applied everything committed when the barrier was requested, as
  // confirmed by the leader; then a local read is linearizable. One confirmation
  // round is in flight at a time; the reads requested meanwhile share the next one.
  // `done(OK)` runs on the apply thread or, for a barrier released by a loop pass, on
  // the pass's thread right after that pass (which also sent the next round's
  // heartbeats), never inside it: a `done` that serves a small read right there saves a
  // hand-off. The same holds for Propose's `done` with a result. Errors (timed out,
  // stopped) may come from any of these threads or the caller's.
  void ReadBarrier(absl::Time deadline, ReadCallback done, LoopPass pass = LoopPass::kRaftThread);

  // A consistent snapshot of the state machine as of now (Maintenance.Snapshot): a
  // checkpoint taken on the apply thread between two batches, in the snapshot dir; the
  // reader removes it when destroyed. Blocks until the apply thread took it.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<storage::SnapshotReader>> CheckpointStateMachine();

  [[nodiscard]] NodeStatus Status() const;
  [[nodiscard]] uint64_t term() const { return term_.load(); }
  [[nodiscard]] uint64_t leader_id() const { return leader_id_.load(); }
  // A fatal error stopped the node (storage failure); empty while healthy.
  [[nodiscard]] absl::Status fatal_error() const;

  // PeerMessageHandler (transport threads). OnMessages runs the loop pass on the
  // caller's thread when the loop is idle (LoopPass::kCallerIfIdle).
  void OnMessages(std::vector<raftpb::Message> messages) override;
  void OnUnreachable(uint64_t peer_id) override;
  void OnSnapshotSent(uint64_t peer_id, bool ok) override;
  void OnPeerClientUrls(uint64_t peer_id, const std::string& client_urls,
                        const std::string& name) override;
  void OnRemovedByPeer(uint64_t peer_id) override;
  // SnapshotHandler (transport threads; raft_node_snapshot.cc).
  absl::StatusOr<std::unique_ptr<SnapshotChunkReader>> OpenSnapshot(
      const raftpb::Message& msg_snap) override;
  absl::Status ReceiveSnapshot(const raftpb::Message& msg_snap,
                               SnapshotChunkReader& chunks) override;

 private:
  struct PendingProposal {
    uint64_t proposal_id = 0;
    std::string data;
    uint64_t leader_term = 0;  // Non-zero: leader-only proposal (see Propose).
  };
  struct WriteWaiter {
    absl::Time deadline;
    WriteCallback done;
  };
  struct ReadWaiter {
    absl::Time deadline;
    ReadCallback done;
  };
  struct ConfWaiter {
    absl::Time deadline;
    std::function<void(absl::Status)> done;
  };
  struct PendingConfChange {
    uint64_t proposal_id = 0;
    raftpb::ConfChange change;
  };
  struct MoveWaiter {
    uint64_t target = 0;
    absl::Time deadline;
    std::function<void(absl::Status)> done;
  };
  struct ReadBatch {
    std::vector<ReadWaiter> waiters;
    int ticks_waited = 0;
  };
  // Work for the apply thread, in order: committed entries, or a function to run there
  // (snapshot checkpoints and installs, which must not race with applies).
  struct ApplyTask {
    std::vector<raftpb::Entry> entries;
    std::optional<raftpb::ConfState> conf_state;  // Membership after these entries.
    std::function<void()> run;
  };

  void RaftLoop();
  // One pass of the loop: tick if due, drain the inbox, carry out every Ready. Only by
  // the holder of loop_busy_.
  void RunPass();
  // mu_ held: the inbox has work for a pass.
  [[nodiscard]] bool HasWorkLocked() const;
  // Who handles work just queued: the caller (it now holds the loop), the raft thread
  // (to be woken), or the pass already running (nothing to do).
  enum class Handoff { kRunHere, kWakeRaftThread, kNone };
  // mu_ held, work just queued: decides the Handoff; kRunHere claims the loop.
  [[nodiscard]] Handoff HandoffLocked(LoopPass pass);
  // Without mu_: runs the claimed pass or wakes the raft thread.
  void CarryOut(Handoff handoff);
  // Runs the pass HandoffLocked claimed, then lets go of the loop.
  void RunClaimedPass();
  // Writes applied and reads released by a loop pass, answered by its thread after the
  // pass (after letting go of the loop if no other pass follows on that thread):
  // answering (a gRPC write each, a small read) is not the loop's work, and the pass's
  // messages (the next batch's appends, the next read round) need not wait for it.
  struct Answers {
    std::vector<std::pair<WriteCallback, storage::ApplyResult>> writes;
    std::vector<ReadCallback> reads;
    bool empty() const { return writes.empty() && reads.empty(); }
  };
  // mu_ held by the holder of loop_busy_, about to let go: takes what its passes left
  // to answer (counted in answering_ until AnswerAfterPass returns).
  [[nodiscard]] Answers TakeAnswersLocked();
  // Without mu_, after the pass: answers them.
  void AnswerAfterPass(Answers answers);
  static void Answer(Answers answers);
  void ApplyLoop();
  // Loop pass: one Ready, carried out in the order raw_node.h prescribes.
  [[nodiscard]] absl::Status HandleReady(raft::Ready rd);
  [[nodiscard]] absl::Status InstallSnapshot(const raftpb::Snapshot& snapshot);
  // Hands committed entries to the apply thread, or applies a small batch right here
  // when the apply thread is idle: the hand-off is a thread wake-up on every write's
  // critical path (~0.1 ms on an idle core of this VM), a few entries apply in less.
  [[nodiscard]] absl::Status ScheduleApply(ApplyTask task);
  // Runs `fn` on the apply thread after everything queued before it; waits for it.
  [[nodiscard]] absl::Status RunOnApplyThread(std::function<absl::Status()> fn);
  void DrainInbox();
  // Loop pass: asks raft for a ReadIndex round for the waiting reads unless one is in
  // flight; true if it did (a Ready with its heartbeats follows).
  [[nodiscard]] bool MaybeStartReadRound();
  // Loop pass, the leader changed: the round in flight joins the waiting batch.
  void RequeueInflightReads();
  // waiters_mu_ held: moves `reads` into the batch waiting for the next round.
  void JoinWaitingReadsLocked(std::vector<ReadWaiter>& reads);
  // Loop pass: the leader-only checks of a conf change (see ProposeConfChange).
  [[nodiscard]] absl::Status CheckConfChange(const raftpb::ConfChange& change);
  void FinishConfWaiter(uint64_t proposal_id, const absl::Status& status);
  [[nodiscard]] bool ConfWaiterPending(uint64_t proposal_id) const;
  // Loop pass: starts or finishes MoveLeader requests.
  void StartMoves(std::vector<MoveWaiter> moves);
  void CheckMoves();
  // Apply thread: the membership after conf-change entries (serialized into `records`
  // in step with `entries`), and who proposed each.
  [[nodiscard]] absl::Status ApplyMembership(const std::vector<raftpb::Entry>& entries,
                                             std::vector<std::string>* records,
                                             std::vector<std::pair<uint64_t, absl::Status>>* done);
  [[nodiscard]] absl::Status LoadMembership();
  void ExpireWaiters();
  void FailAllWaiters(const absl::Status& status);
  void Fatal(const absl::Status& status);

  // Apply thread (or the loop pass standing in for it, see ScheduleApply).
  // `deferred`: where a loop pass standing in for the apply thread collects the answers
  // (null on the apply thread: answered at once).
  [[nodiscard]] absl::Status ApplyEntries(ApplyTask& task, Answers* deferred);
  // Releases the confirmed reads at or below `applied_index`: into `deferred` if given,
  // else their callbacks run now.
  void ReleaseReads(uint64_t applied_index, Answers* deferred);
  [[nodiscard]] absl::Status MaybeSnapshot();

  const RaftNodeOptions options_;
  storage::RaftLogStore* const log_;
  storage::KvStore* const kv_;
  PeerTransport* transport_ = nullptr;
  std::unique_ptr<raft::RawNode> raw_node_;  // Loop passes only (after Start).

  // Inbox of the raft thread; guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raftpb::Message> inbox_messages_;
  std::vector<uint64_t> inbox_unreachable_;
  std::vector<std::pair<uint64_t, bool>> inbox_snapshot_status_;
  std::deque<PendingProposal> inbox_proposals_;
  size_t inbox_proposal_bytes_ = 0;
  std::vector<ReadWaiter> inbox_reads_;
  std::vector<uint64_t> inbox_compactions_;
  uint64_t inbox_transfer_to_ = 0;
  // When each peer was last heard from (any message): which voters are "started" for
  // the quorum check of a membership change (etcd: the transport's active-since).
  std::map<uint64_t, absl::Time> last_heard_;
  std::vector<PendingConfChange> inbox_conf_changes_;
  std::vector<MoveWaiter> inbox_moves_;
  // Loop passes only: changes raft refused because another one is not applied yet (or,
  // right after an election, the entries before the new leader's term are not), tried
  // again on every pass until they go in or their waiter expires.
  std::vector<PendingConfChange> deferred_conf_changes_;
  bool stopping_ = false;
  absl::Status fatal_;
  // A loop pass is running (on the raft thread or a caller's); at most one at a time.
  bool loop_busy_ = false;
  // The raft thread waits for a caller's pass to end (so the caller must wake it).
  bool raft_thread_waits_for_pass_ = false;
  // Threads answering what their passes left (Answers): Stop waits for them too.
  int answering_ = 0;
  absl::Time next_tick_;

  // Waiters; guarded by waiters_mu_ (never held while calling a callback).
  mutable std::mutex waiters_mu_;
  uint64_t next_proposal_id_ = 1;
  std::map<uint64_t, WriteWaiter> write_waiters_;
  std::map<uint64_t, ConfWaiter> conf_waiters_;
  std::map<uint64_t, ReadBatch> read_batches_;           // By read context.
  std::multimap<uint64_t, ReadWaiter> confirmed_reads_;  // By read index.

  // Apply queue; guarded by apply_mu_.
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  std::deque<ApplyTask> apply_queue_;
  bool apply_stopping_ = false;
  // A task is running, on the apply thread or in its place in the loop pass
  // (ScheduleApply); the two never apply at the same time.
  bool apply_running_ = false;

  // Apply thread only (or its stand-in). raft_applied_index_ is the last entry raft handed out and
  // this thread processed; the state machine may be ahead of it after a snapshot install.
  raftpb::ConfState applied_conf_state_;
  uint64_t raft_applied_index_ = 0;
  uint64_t last_snapshot_index_ = 0;

  // One incoming snapshot at a time; numbering of outgoing checkpoint directories.
  std::mutex receive_snapshot_mu_;
  std::atomic<uint64_t> next_checkpoint_id_{1};

  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_id_{0};
  std::atomic<uint64_t> commit_index_{0};
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<bool> is_learner_{false};
  uint64_t next_read_ctx_ = 1;  // Guarded by waiters_mu_, like the two below.
  // The read batch waiting for the next round, and the round in flight (0: none; a ctx
  // whose batch left read_batches_ was answered or expired).
  uint64_t waiting_read_ctx_ = 0;
  uint64_t inflight_read_ctx_ = 0;
  std::vector<MoveWaiter> moves_;            // Loop passes only.
  Answers pass_answers_;                     // Loop passes only (TakeAnswersLocked).
  internalpb::MembershipRecord membership_;  // Apply thread only (after Start).

  std::thread raft_thread_;
  std::thread apply_thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> apply_thread_stopping_{false};
};

}  // namespace keel::server
