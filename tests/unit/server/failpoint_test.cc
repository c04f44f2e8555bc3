// The test-only failpoints: settings parsing, the watched settings file, and the peer
// message perturbation the chaos tests use instead of netem.
#include "common/failpoint.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "server/failpoint_messages.h"

namespace keel {
namespace {

using failpoint::ParseSettings;
using failpoint::Settings;

TEST(FailpointSettingsTest, ParsesEveryKey) {
  Settings s;
  ASSERT_TRUE(ParseSettings("# faults\nnet_drop = 0.1\nnet_duplicate=0.2\nnet_delay=0.3\n"
                            "net_delay_ms_max=40\n\nfsync_delay=1\nfsync_delay_ms_max=250\n",
                            &s)
                  .ok());
  EXPECT_DOUBLE_EQ(s.net_drop, 0.1);
  EXPECT_DOUBLE_EQ(s.net_duplicate, 0.2);
  EXPECT_DOUBLE_EQ(s.net_delay, 0.3);
  EXPECT_EQ(s.net_delay_ms_max, 40);
  EXPECT_DOUBLE_EQ(s.fsync_delay, 1);
  EXPECT_EQ(s.fsync_delay_ms_max, 250);
  EXPECT_TRUE(s.net_active());
  ASSERT_TRUE(ParseSettings("", &s).ok());
  EXPECT_FALSE(s.net_active());
}

TEST(FailpointSettingsTest, RejectsBadLinesAndKeepsOldSettings) {
  Settings s;
  s.net_drop = 0.5;
  absl::Status status = ParseSettings("net_drop=0.1\nnet_drop=2\n", &s);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("line 2"), std::string::npos) << status;
  EXPECT_DOUBLE_EQ(s.net_drop, 0.5);
  EXPECT_FALSE(ParseSettings("net_dorp=0.1", &s).ok());
  EXPECT_FALSE(ParseSettings("net_drop", &s).ok());
  EXPECT_FALSE(ParseSettings("fsync_delay_ms_max=-1", &s).ok());
}

TEST(FailpointSettingsTest, UnknownUnsafeBugIsAnError) {
  EXPECT_FALSE(failpoint::UnsafeBugOn(failpoint::UnsafeBug::kStaleLocalReads));
  EXPECT_EQ(failpoint::EnableUnsafeBug("no-such-bug").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(failpoint::EnableUnsafeBug("stale-local-reads").ok());
  EXPECT_TRUE(KEEL_UNSAFE_BUG(kStaleLocalReads));
  EXPECT_FALSE(KEEL_UNSAFE_BUG(kWatchSkipEvent));  // Each switch alone.
  ASSERT_TRUE(failpoint::EnableUnsafeBug("watch-skip-event").ok());
  EXPECT_TRUE(KEEL_UNSAFE_BUG(kWatchSkipEvent));
}

raftpb::Message Msg(uint64_t index, raftpb::MessageType type = raftpb::MSG_APP) {
  raftpb::Message m;
  m.set_type(type);
  m.set_from(2);
  m.set_to(1);
  m.set_index(index);
  return m;
}

// Writes the settings file the way the chaos driver does (rename over) and waits until
// the watcher applied it.
void SetSettings(const std::string& path, const std::string& text,
                 const std::function<bool(const Settings&)>& applied) {
  { std::ofstream(path + ".tmp") << text; }
  std::filesystem::rename(path + ".tmp", path);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!applied(failpoint::Current())) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "settings not applied: " << text;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST(FailpointMessagesTest, DropsDuplicatesAndDelaysAsTheWatchedFileSays) {
  const std::string path =
      std::filesystem::temp_directory_path() / ("keel-failpoint-test-" + std::to_string(getpid()));
  ASSERT_TRUE(failpoint::WatchSettingsFile(path).ok());  // Missing file: no faults.
  EXPECT_EQ(failpoint::WatchSettingsFile(path).code(), absl::StatusCode::kFailedPrecondition);

  std::vector<raftpb::Message> batch = {Msg(1), Msg(2)};
  server::PerturbPeerMessages(&batch);
  ASSERT_EQ(batch.size(), 2u);

  SetSettings(path, "net_drop=1\n", [](const Settings& s) { return s.net_drop == 1; });
  batch = {Msg(1), Msg(2, raftpb::MSG_SNAP), Msg(3)};
  server::PerturbPeerMessages(&batch);
  ASSERT_EQ(batch.size(), 1u);  // Only the MsgSnap: its data is already installed.
  EXPECT_EQ(batch[0].type(), raftpb::MSG_SNAP);

  SetSettings(path, "net_duplicate=1\n", [](const Settings& s) { return s.net_duplicate == 1; });
  batch = {Msg(1), Msg(2, raftpb::MSG_PROP)};
  server::PerturbPeerMessages(&batch);
  ASSERT_EQ(batch.size(), 3u);  // A proposal is never duplicated: it is a client's write.
  EXPECT_EQ(batch[0].index(), 1u);
  EXPECT_EQ(batch[1].index(), 1u);
  EXPECT_EQ(batch[2].type(), raftpb::MSG_PROP);

  // Every message held back for up to 30 ms: the first batch comes out empty, and the
  // held messages come out later, after the newer batch that releases them.
  SetSettings(path, "net_delay=1\nnet_delay_ms_max=30\n",
              [](const Settings& s) { return s.net_delay == 1; });
  batch = {Msg(1), Msg(2)};
  server::PerturbPeerMessages(&batch);
  EXPECT_TRUE(batch.empty());
  SetSettings(path, "", [](const Settings& s) { return !s.net_active(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(40));  // Past the longest delay.
  batch = {Msg(3)};
  server::PerturbPeerMessages(&batch);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].index(), 3u);  // Overtaken: reordered.

  // A file that does not parse leaves the settings as they were.
  SetSettings(path, "net_drop=0.25\n", [](const Settings& s) { return s.net_drop == 0.25; });
  { std::ofstream(path + ".tmp") << "net_drop=7\n"; }
  std::filesystem::rename(path + ".tmp", path);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Several watch periods.
  EXPECT_DOUBLE_EQ(failpoint::Current().net_drop, 0.25);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace keel
