// Crash test with real processes: a child (raft_log_crash_child) writes to the Raft log
// with synced Saves and reports every write before and after it; the parent SIGKILLs it at
// random moments, reopens the log (checking every entry) and requires it to be exactly the
// state after the last acknowledged write, or that plus the one write in flight. So no
// acknowledged write is ever lost, none is half-applied, and nothing else appears.
//
// KEEL_RAFT_LOG_CRASH_KILLS sets the number of kills (default 300; the `long` CTest entry
// runs 3000). KEEL_SEED replays a run; the seed is printed on failure.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "common/check.h"
#include "gtest/gtest.h"
#include "storage/raft_log_store.h"
#include "tests/unit/storage/raft_log_crash_protocol.h"
#include "tests/unit/storage/raft_log_test_util.h"

#ifndef KEEL_RAFT_LOG_CRASH_CHILD
#error "KEEL_RAFT_LOG_CRASH_CHILD must name the child binary"
#endif

namespace keel::storage::crash {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// "" if the store holds exactly `m`, else what differs.
std::string Mismatch(const RaftLogStore& store, const Model& m) {
  if (store.FirstIndex() != m.first() || store.LastIndex() != m.last()) {
    return absl::StrCat("range [", store.FirstIndex(), ", ", store.LastIndex(), "]");
  }
  if (store.Term(m.truncated_index).value() != m.truncated_term) return "term before first";
  const raftpb::Snapshot snap = store.GetSnapshot().value();
  if (snap.metadata().index() != m.snap_index || snap.metadata().term() != m.snap_term) {
    return absl::StrCat("snapshot ", snap.metadata().index(), "/", snap.metadata().term());
  }
  const raftpb::HardState hs = store.GetInitialState()->hard_state;
  if (hs.SerializeAsString() != m.hs.SerializeAsString()) {
    return absl::StrCat("hard state ", hs.term(), "/", hs.vote(), "/", hs.commit());
  }
  auto entries = store.Entries(m.first(), m.last() + 1, std::numeric_limits<uint64_t>::max());
  if (!entries.ok()) return entries.status().ToString();
  for (const raftpb::Entry& e : *entries) {
    if (!testing::IsGenuine(e)) return absl::StrCat("entry ", e.index(), " content");
    if (e.term() != m.TermAt(e.index())) {
      return absl::StrCat("entry ", e.index(), " term ", e.term(), " want ", m.TermAt(e.index()));
    }
  }
  return "";
}

// One child process writing to `dir`, its report pipe and the records read so far.
class Child {
 public:
  Child(const std::string& dir, uint64_t seed) {
    int fds[2];
    KEEL_CHECK(pipe2(fds, O_CLOEXEC) == 0);
    pid_ = fork();
    KEEL_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = dup(fds[1]);  // Without O_CLOEXEC: survives the exec.
      const std::string seed_arg = std::to_string(seed);
      const std::string fd_arg = std::to_string(fd);
      execl(KEEL_RAFT_LOG_CRASH_CHILD, KEEL_RAFT_LOG_CRASH_CHILD, dir.c_str(), seed_arg.c_str(),
            fd_arg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) Kill();
    close(fd_);
  }

  // Reads records until `dones` Done records arrived; false (with *why) if the child exits
  // first or the deadline passes.
  bool AwaitDones(int dones, Clock::time_point deadline, std::string* why) {
    while (done_count_ < dones) {
      if (Clock::now() > deadline) {
        *why = "deadline passed waiting for the child's writes";
        return false;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      if (!ReadSome()) {
        *why = "child exited on its own (see its stderr above)";
        return false;
      }
    }
    return true;
  }

  // SIGKILLs the child and reads what it sent; true if SIGKILL is what ended it.
  bool Kill() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    while (ReadSome()) {
    }
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

  const std::vector<Record>& records() const { return records_; }

 private:
  // Reads what is available; false on EOF.
  bool ReadSome() {
    char buf[4096];
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    while (pending_.size() >= sizeof(Record)) {
      Record r;
      std::memcpy(&r, pending_.data(), sizeof(r));
      pending_.erase(0, sizeof(r));
      if (r.done) ++done_count_;
      records_.push_back(r);
    }
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string pending_;
  std::vector<Record> records_;
  int done_count_ = 0;
};

TEST(RaftLogCrashTest, SigkillNeverLosesAnAcknowledgedWrite) {
  const uint64_t kills = EnvOr("KEEL_RAFT_LOG_CRASH_KILLS", 300);
  const uint64_t seed = EnvOr("KEEL_SEED", std::random_device{}());
  SCOPED_TRACE(::testing::Message() << "KEEL_SEED=" << seed);
  std::mt19937_64 rng(seed);
  testing::ScratchDir scratch;
  const std::string dir = scratch.Sub("log");
  Model model;
  uint64_t in_flight_landed = 0, in_flight_lost = 0, acked = 0;
  const Clock::time_point start = Clock::now();

  for (uint64_t run = 0; run < kills; ++run) {
    SCOPED_TRACE(::testing::Message()
                 << "run " << run << ", model before: " << model.DebugString());
    Child child(dir, rng());
    // Most kills land after a few acknowledged writes; some during the child's open.
    const int dones = rng() % 10 == 0 ? 0 : 1 + static_cast<int>(rng() % 12);
    std::string why;
    ASSERT_TRUE(child.AwaitDones(dones, Clock::now() + std::chrono::seconds(30), &why)) << why;
    // Not a wait for a condition: the random kill point, somewhere inside the next writes.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
    ASSERT_TRUE(child.Kill()) << "child ended other than by our SIGKILL";

    // The acknowledged state, and the one write that may or may not have landed.
    Model after_acked = model;
    std::map<uint64_t, Record> intents;
    std::optional<Record> in_flight;
    for (const Record& r : child.records()) {
      if (!r.done) {
        intents[r.seq] = r;
        in_flight = r;
      } else {
        ASSERT_EQ(intents.count(r.seq), 1u);
        after_acked.Apply(intents[r.seq]);
        in_flight.reset();
        ++acked;
      }
    }
    RaftLogStoreOptions options;
    options.verify_whole_log_on_open = true;
    auto store = RaftLogStore::Open(dir, options);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string acked_diff = Mismatch(**store, after_acked);
    if (acked_diff.empty()) {
      model = after_acked;
      if (in_flight) ++in_flight_lost;
      continue;
    }
    ASSERT_TRUE(in_flight.has_value())
        << "recovered log differs from the acknowledged state: " << acked_diff << "; want "
        << after_acked.DebugString();
    Model with_in_flight = after_acked;
    with_in_flight.Apply(*in_flight);
    const std::string diff = Mismatch(**store, with_in_flight);
    ASSERT_TRUE(diff.empty()) << "recovered log is neither the acknowledged state (" << acked_diff
                              << ") nor that plus write " << in_flight->seq << " (" << diff
                              << "); want " << after_acked.DebugString() << " or "
                              << with_in_flight.DebugString();
    model = with_in_flight;
    ++in_flight_landed;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "%lu kills in %.1f s: %lu acknowledged writes kept, write in flight landed %lu times, "
      "lost %lu times; final log %s\n",
      static_cast<unsigned long>(kills), secs, static_cast<unsigned long>(acked),
      static_cast<unsigned long>(in_flight_landed), static_cast<unsigned long>(in_flight_lost),
      model.DebugString().c_str());
  EXPECT_GT(acked, kills / 2);  // The test did exercise writes.
}

}  // namespace
}  // namespace keel::storage::crash
