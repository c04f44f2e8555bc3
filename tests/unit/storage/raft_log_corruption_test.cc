// Corruption of the Raft log on disk must surface as kDataLoss naming what is broken, on
// open (the node refuses to start) or on reading the damaged entry; never a wrong answer.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/raft_log_keys.h"
#include "storage/raft_log_store.h"
#include "tests/unit/storage/raft_log_test_util.h"

namespace keel::storage {
namespace {

namespace keys = raft_log_keys;
using testing::MakeEntries;

constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kGroup = 1;

class RaftLogCorruptionTest : public ::testing::Test {
 protected:
  // Writes entries 1..100 (term 1) in separate synced Saves, and a hard state.
  void SetUp() override {
    auto store = RaftLogStore::Open(dir_.path(), {});
    ASSERT_TRUE(store.ok()) << store.status();
    for (uint64_t i = 1; i <= 100; i += 10) {
      ASSERT_TRUE((*store)->Save(nullptr, MakeEntries(i, i + 9, 1), nullptr, true).ok());
    }
    raftpb::HardState hs;
    hs.set_term(1);
    hs.set_commit(100);
    ASSERT_TRUE((*store)->Save(&hs, {}, nullptr, true).ok());
  }

  absl::StatusOr<std::unique_ptr<RaftLogStore>> Open(uint64_t cache_bytes = 4 << 20,
                                                     bool verify_all = false) {
    RaftLogStoreOptions options;
    options.tail_cache_bytes_max = cache_bytes;
    options.verify_whole_log_on_open = verify_all;
    return RaftLogStore::Open(dir_.path(), options);
  }

  // Opens the directory with plain RocksDB and applies `edit` to it.
  template <typename Edit>
  void EditRaw(Edit edit) {
    rocksdb::Options options;
    options.compression = rocksdb::kNoCompression;  // Keeps payloads findable in SSTs.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    edit(db.get());
    ASSERT_TRUE(db->Close().ok());
  }

  // Flips one byte of the entry payload stored under `key`, keeping the stored CRC.
  void FlipByteInRecord(const std::string& key) {
    EditRaw([&](rocksdb::DB* db) {
      std::string value;
      ASSERT_TRUE(db->Get({}, key, &value).ok());
      ASSERT_GT(value.size(), 4u);  // Past the stored CRC.
      value[value.size() - 1] ^= 0x20;
      ASSERT_TRUE(db->Put({}, key, value).ok());
    });
  }

  testing::ScratchDir dir_;
};

bool MentionsAll(const absl::Status& s, std::initializer_list<std::string> parts) {
  for (const std::string& p : parts) {
    if (std::string(s.message()).find(p) == std::string::npos) return false;
  }
  return true;
}

TEST_F(RaftLogCorruptionTest, FlippedByteInColdEntryFailsTheReadNamingTheIndex) {
  FlipByteInRecord(keys::EntryKey(kGroup, 50));
  // A small cache: entry 50 is not among the tail entries checked on open.
  auto store = Open(/*cache_bytes=*/4096);
  ASSERT_TRUE(store.ok()) << store.status();
  auto entries = (*store)->Entries(40, 60, kNoLimit);
  ASSERT_TRUE(absl::IsDataLoss(entries.status())) << entries.status();
  EXPECT_TRUE(MentionsAll(entries.status(), {"raft log entry 50", "checksum mismatch"}))
      << entries.status();
  EXPECT_TRUE(absl::IsDataLoss((*store)->Term(50).status()));
  // Entries before it still read.
  EXPECT_EQ((*store)->Entries(40, 50, kNoLimit)->size(), 10u);
}

TEST_F(RaftLogCorruptionTest, FullCheckOnOpenFindsAColdEntry) {
  FlipByteInRecord(keys::EntryKey(kGroup, 50));
  auto store = Open(/*cache_bytes=*/4096, /*verify_all=*/true);
  ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(MentionsAll(store.status(), {"is corrupt", "raft log entry 50", dir_.path()}))
      << store.status();
}

TEST_F(RaftLogCorruptionTest, FlippedByteInTailRefusesToOpen) {
  FlipByteInRecord(keys::EntryKey(kGroup, 97));
  auto store = Open();
  ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(MentionsAll(store.status(), {"is corrupt", "raft log entry 97"})) << store.status();
}

TEST_F(RaftLogCorruptionTest, CorruptHardStateRefusesToOpen) {
  FlipByteInRecord(keys::GroupKey(keys::kHardStateKind, kGroup));
  auto store = Open();
  ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(MentionsAll(store.status(), {"hard state"})) << store.status();
}

TEST_F(RaftLogCorruptionTest, RecordUnderTheWrongKeyIsCorruption) {
  EditRaw([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, keys::EntryKey(kGroup, 30), &value).ok());
    ASSERT_TRUE(db->Put({}, keys::EntryKey(kGroup, 31), value).ok());
  });
  auto store = Open(4096);
  ASSERT_TRUE(store.ok());
  auto entries = (*store)->Entries(31, 32, kNoLimit);
  ASSERT_TRUE(absl::IsDataLoss(entries.status()));
  EXPECT_TRUE(MentionsAll(entries.status(), {"raft log entry 31", "holds index 30"}));
}

TEST_F(RaftLogCorruptionTest, MissingEntryIsCorruption) {
  EditRaw([&](rocksdb::DB* db) { ASSERT_TRUE(db->Delete({}, keys::EntryKey(kGroup, 20)).ok()); });
  auto store = Open(4096);
  ASSERT_TRUE(store.ok());
  auto entries = (*store)->Entries(15, 25, kNoLimit);
  ASSERT_TRUE(absl::IsDataLoss(entries.status()));
  EXPECT_TRUE(MentionsAll(entries.status(), {"raft log entry 20 is missing"}));
  // A hole in the tail is found on open.
  store->reset();
  EditRaw([&](rocksdb::DB* db) { ASSERT_TRUE(db->Delete({}, keys::EntryKey(kGroup, 99)).ok()); });
  auto reopened = Open();
  ASSERT_TRUE(absl::IsDataLoss(reopened.status())) << reopened.status();
  EXPECT_TRUE(MentionsAll(reopened.status(), {"raft log entry 99 is missing"}));
}

TEST_F(RaftLogCorruptionTest, LostTailBelowCommitRefusesToOpen) {
  EditRaw([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->DeleteRange({}, db->DefaultColumnFamily(), keys::EntryKey(kGroup, 91),
                                keys::EntryKey(kGroup, 101))
                    .ok());
  });
  auto store = Open();
  ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(MentionsAll(store.status(), {"commit 100", "last index 90"})) << store.status();
}

// Finds `needle` in the file at `path` and flips one byte of it there. False if absent.
bool FlipInFile(const std::string& path, const std::string& needle) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find(needle);
  if (at == std::string::npos) return false;
  bytes[at + needle.size() / 2] ^= 0x01;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

// A bit flip in the real files (no help from our API): RocksDB's own checksums (WAL
// records, SST blocks) catch it below ours, and it must still come out as kDataLoss.
TEST_F(RaftLogCorruptionTest, BitFlipInWalFile) {
  const std::string needle = testing::Payload(55, 1).substr(0, 16);
  bool flipped = false;
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    if (f.path().extension() == ".log") flipped |= FlipInFile(f.path().string(), needle);
  }
  ASSERT_TRUE(flipped) << "entry 55 not found in any WAL file";
  auto store = Open(4096, /*verify_all=*/true);
  ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
}

TEST_F(RaftLogCorruptionTest, BitFlipInSstFile) {
  EditRaw([](rocksdb::DB* db) { ASSERT_TRUE(db->Flush({}).ok()); });
  const std::string needle = testing::Payload(55, 1).substr(0, 16);
  bool flipped = false;
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    if (f.path().extension() == ".sst") flipped |= FlipInFile(f.path().string(), needle);
  }
  ASSERT_TRUE(flipped) << "entry 55 not found in any SST file";
  auto store = Open(4096);
  if (store.ok()) {
    auto entries = (*store)->Entries(50, 60, kNoLimit);
    ASSERT_TRUE(absl::IsDataLoss(entries.status())) << entries.status();
  } else {
    ASSERT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  }
}

}  // namespace
}  // namespace keel::storage
