#include "client/request_ids.h"

#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace keel::client {
namespace {

TEST(RequestIdPoolTest, ConcurrentWritesGetDistinctSessions) {
  uint64_t next = 0;
  RequestIdPool pool([&next] { return next++; });  // First draw 0 must be skipped.
  const RequestId a = pool.Acquire();
  const RequestId b = pool.Acquire();
  EXPECT_NE(a.client_id, 0u);
  EXPECT_NE(a.client_id, b.client_id);
  EXPECT_EQ(a.sequence, 1u);
  EXPECT_EQ(b.sequence, 1u);
  EXPECT_EQ(pool.sessions_created(), 2u);
}

TEST(RequestIdPoolTest, AReleasedSessionContinuesWithTheNextSequence) {
  uint64_t next = 7;
  RequestIdPool pool([&next] { return next++; });
  RequestId a = pool.Acquire();
  pool.Release(a);
  RequestId again = pool.Acquire();
  EXPECT_EQ(again.client_id, a.client_id);
  EXPECT_EQ(again.sequence, a.sequence + 1);
  EXPECT_EQ(pool.sessions_created(), 1u);
}

TEST(RequestIdPoolTest, SequencesOfEachSessionOnlyIncrease) {
  // The server rejects an older sequence per client id: whatever the interleaving
  // of acquire/release, each client id's sequences must strictly increase.
  uint64_t next = 1;
  RequestIdPool pool([&next] { return next++; });
  std::map<uint64_t, uint64_t> last;
  std::vector<RequestId> held;
  for (int step = 0; step < 1000; ++step) {
    if (held.size() < 5 && step % 3 != 2) {
      RequestId id = pool.Acquire();
      EXPECT_GT(id.sequence, last[id.client_id]);
      last[id.client_id] = id.sequence;
      held.push_back(id);
    } else if (!held.empty()) {
      pool.Release(held[step % held.size()]);
      held.erase(held.begin() + static_cast<long>(step % held.size()));
    }
  }
  EXPECT_LE(pool.sessions_created(), 5u);
}

}  // namespace
}  // namespace keel::client
