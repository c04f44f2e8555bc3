// Crash test with real processes: a child (kv_crash_child) applies batches in a loop
// and reports each applied index through a pipe; we SIGKILL it at random moments,
// reopen the store and check that
//   - the applied index is at least the last one reported (Apply returned, so the
//     batch is in the WAL; a process kill does not lose the OS page cache), and
//   - the contents (all live keys with their revisions, plus a historical read) equal
//     the reference model after exactly the entries <= the applied index: never half
//     a batch, never an entry twice.
// KEEL_KV_CRASH_KILLS sets the number of kills (CI default below; `long` runs more).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "storage/kv_store.h"
#include "tests/unit/storage/kv_crash_workload.h"
#include "tests/unit/storage/kv_model.h"
#include "tests/unit/storage/kv_test_util.h"

#ifndef KEEL_KV_CRASH_CHILD
#error "KEEL_KV_CRASH_CHILD must name the child binary"
#endif

namespace keel::storage {
namespace {

using testing::CrashWorkloadEntry;
using testing::KvModel;
using testing::TempDir;

struct Child {
  pid_t pid = -1;
  int fd = -1;
};

Child Spawn(const std::string& dir, uint64_t seed) {
  int fds[2];
  KEEL_CHECK(pipe(fds) == 0);
  const pid_t pid = fork();
  KEEL_CHECK(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const std::string seed_s = std::to_string(seed);
    execl(KEEL_KV_CRASH_CHILD, KEEL_KV_CRASH_CHILD, dir.c_str(), seed_s.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads reports until `want` arrived or the deadline passed; returns the last one.
uint64_t ReadReports(int fd, int want, uint64_t last, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (int got = 0; got < want;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    uint64_t v = 0;
    if (read(fd, &v, sizeof(v)) != sizeof(v)) break;  // Reports are 8-byte atomic writes.
    last = v;
    ++got;
  }
  return last;
}

etcdserverpb::RangeRequest All(int64_t rev) {
  etcdserverpb::RangeRequest r;
  r.set_key(std::string(1, '\0'));
  r.set_range_end(std::string(1, '\0'));
  r.set_revision(rev);
  return r;
}

TEST(KvCrashTest, KilledChildNeverLosesOrHalfAppliesABatch) {
  const char* env = std::getenv("KEEL_KV_CRASH_KILLS");
  const int kills = env != nullptr ? std::atoi(env) : 250;
  const uint64_t seed = 42;
  TempDir dir;
  KvModel model;
  uint64_t model_index = 0;
  uint64_t reported = 0;
  std::mt19937_64 rng(seed);
  KvStoreOptions options;
  options.dir = dir.path();
  options.session_expiry_entries = 200;
  for (int k = 0; k < kills && !::testing::Test::HasFailure(); ++k) {
    SCOPED_TRACE(::testing::Message() << "kill " << k);
    Child child = Spawn(dir.path(), seed);
    const int want = std::uniform_int_distribution<int>(0, 12)(rng);
    reported = ReadReports(child.fd, want, reported, std::chrono::seconds(20));
    if (std::uniform_int_distribution<int>(0, 1)(rng) == 1) {
      // Land the kill anywhere inside the next batch, not just after a report.
      usleep(static_cast<useconds_t>(std::uniform_int_distribution<int>(0, 3000)(rng)));
    }
    kill(child.pid, SIGKILL);
    int status = 0;
    waitpid(child.pid, &status, 0);
    // Reports written before the kill are still in the pipe.
    reported = ReadReports(child.fd, 1 << 30, reported, std::chrono::milliseconds(0));
    close(child.fd);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself, status " << status;

    auto store = KvStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    const uint64_t applied = (*store)->AppliedIndex();
    ASSERT_GE(applied, reported) << "an applied batch was lost";
    ASSERT_GE(applied, model_index) << "the applied index went backwards";
    for (; model_index < applied; ++model_index) {
      (void)model.Apply(CrashWorkloadEntry(seed, model_index + 1));
    }
    ASSERT_EQ((*store)->Revision(), model.revision()) << "at applied index " << applied;
    auto got = (*store)->Range(All(0));
    auto want_all = model.Range(All(0));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, *want_all))
        << "contents differ at applied index " << applied;
    const int64_t compact = (*store)->CompactRevision();
    const int64_t rev = std::uniform_int_distribution<int64_t>(std::max<int64_t>(compact, 1),
                                                               model.revision())(rng);
    auto got_old = (*store)->Range(All(rev));
    auto want_old = model.Range(All(rev));
    ASSERT_EQ(got_old.status(), want_old.status()) << "revision " << rev;
    if (got_old.ok()) {
      ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got_old, *want_old))
          << "history differs at revision " << rev;
    }
  }
  std::printf("kv crash test: %d kills, final applied index %llu\n", kills,
              static_cast<unsigned long long>(model_index));
}

}  // namespace
}  // namespace keel::storage
