// RaftLogStore against the LogStorage contract: the behaviours raft::MemoryStorage has, the
// durability of every write across reopen, the tail cache and concurrent readers. Every
// fixture ends by reopening the store and checking it gives back exactly what it held.
#include "storage/raft_log_store.h"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "raft/memory_storage.h"
#include "tests/unit/storage/raft_log_test_util.h"

namespace keel::storage {
namespace {

using testing::IsGenuine;
using testing::MakeEntries;
using testing::MakeEntry;

constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// Everything a reader can observe, for before/after-reopen comparisons.
struct Observed {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t term_before_first = 0;
  std::vector<std::string> entries;  // Serialized, first..last.
  std::string hard_state;
  std::string snapshot;
  bool operator==(const Observed&) const = default;
};

Observed Observe(const raft::LogStorage& s) {
  Observed o;
  o.first = s.FirstIndex();
  o.last = s.LastIndex();
  o.term_before_first = s.Term(o.first - 1).value();
  auto entries = s.Entries(o.first, o.last + 1, kNoLimit);
  EXPECT_TRUE(entries.ok()) << entries.status();
  if (entries.ok()) {
    for (const auto& e : *entries) o.entries.push_back(e.SerializeAsString());
  }
  auto init = s.GetInitialState();
  EXPECT_TRUE(init.ok());
  if (init.ok()) o.hard_state = init->hard_state.SerializeAsString();
  o.snapshot = s.GetSnapshot()->SerializeAsString();
  return o;
}

raftpb::HardState Hs(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

raftpb::SnapshotMetadata SnapMeta(uint64_t index, uint64_t term, std::vector<uint64_t> voters) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(term);
  for (uint64_t v : voters) m.mutable_conf_state()->add_voters(v);
  return m;
}

class RaftLogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  // Every test ends with the reopen check: what the store answered before closing is what
  // a fresh open answers.
  void TearDown() override {
    if (store_ == nullptr) return;
    const Observed before = Observe(*store_);
    Reopen();
    EXPECT_EQ(before, Observe(*store_)) << "reopen changed the log";
  }

  void Open() {
    auto s = RaftLogStore::Open(dir_.path(), options_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void Reopen() {
    store_.reset();
    Open();
  }
  absl::Status Append(uint64_t lo, uint64_t hi, uint64_t term) {
    return store_->Save(nullptr, MakeEntries(lo, hi, term), nullptr, true);
  }

  testing::ScratchDir dir_;
  RaftLogStoreOptions options_;
  std::unique_ptr<RaftLogStore> store_;
};

TEST_F(RaftLogStoreTest, EmptyLog) {
  EXPECT_EQ(store_->FirstIndex(), 1u);
  EXPECT_EQ(store_->LastIndex(), 0u);
  EXPECT_EQ(store_->Term(0).value(), 0u);
  EXPECT_TRUE(absl::IsOutOfRange(store_->Term(1).status()));
  EXPECT_TRUE(store_->Entries(1, 1, 0).value().empty());
  EXPECT_TRUE(absl::IsOutOfRange(store_->Entries(1, 2, kNoLimit).status()));
  auto init = store_->GetInitialState().value();
  EXPECT_EQ(init.hard_state.term(), 0u);
  EXPECT_EQ(init.conf_state.voters_size(), 0);
  EXPECT_EQ(store_->GetSnapshot()->metadata().index(), 0u);
}

TEST_F(RaftLogStoreTest, AppendAndReadBack) {
  ASSERT_TRUE(Append(1, 5, 1).ok());
  ASSERT_TRUE(Append(6, 10, 2).ok());
  EXPECT_EQ(store_->FirstIndex(), 1u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(store_->Term(5).value(), 1u);
  EXPECT_EQ(store_->Term(6).value(), 2u);
  auto got = store_->Entries(3, 8, kNoLimit).value();
  ASSERT_EQ(got.size(), 5u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index(), 3 + i);
    EXPECT_TRUE(IsGenuine(got[i]));
  }
  EXPECT_TRUE(absl::IsOutOfRange(store_->Entries(5, 12, kNoLimit).status()));
  EXPECT_TRUE(absl::IsOutOfRange(store_->Entries(6, 5, kNoLimit).status()));
}

TEST_F(RaftLogStoreTest, EntriesByteLimitKeepsAtLeastOne) {
  ASSERT_TRUE(Append(1, 10, 1).ok());
  auto all = store_->Entries(1, 11, kNoLimit).value();
  EXPECT_EQ(store_->Entries(1, 11, 0).value().size(), 1u);
  const uint64_t first_two = all[0].ByteSizeLong() + all[1].ByteSizeLong();
  EXPECT_EQ(store_->Entries(1, 11, first_two).value().size(), 2u);
  EXPECT_EQ(store_->Entries(1, 11, first_two + all[2].ByteSizeLong() - 1).value().size(), 2u);
  EXPECT_EQ(store_->Entries(1, 11, raft::EntriesSize(all)).value().size(), 10u);
}

TEST_F(RaftLogStoreTest, ByteLimitAcrossDiskAndCache) {
  options_.tail_cache_bytes_max = 1024;  // Most entries live only on disk.
  Reopen();
  ASSERT_TRUE(Append(1, 50, 1).ok());
  auto all = store_->Entries(1, 51, kNoLimit).value();
  ASSERT_EQ(all.size(), 50u);
  for (size_t n = 1; n <= 50; n += 7) {
    std::vector<raftpb::Entry> prefix(all.begin(), all.begin() + n);
    auto got = store_->Entries(1, 51, raft::EntriesSize(prefix)).value();
    EXPECT_EQ(got.size(), n);
  }
}

TEST_F(RaftLogStoreTest, ConflictingSuffixIsTruncatedInTheSameSave) {
  ASSERT_TRUE(Append(1, 10, 1).ok());
  ASSERT_TRUE(Append(6, 7, 2).ok());  // Replaces 6..10 with 6..7.
  EXPECT_EQ(store_->LastIndex(), 7u);
  EXPECT_EQ(store_->Term(5).value(), 1u);
  EXPECT_EQ(store_->Term(7).value(), 2u);
  Reopen();
  EXPECT_EQ(store_->LastIndex(), 7u);
  EXPECT_EQ(store_->Term(6).value(), 2u);
  ASSERT_TRUE(Append(8, 9, 2).ok());  // Index 8 and 9 come back with the new term.
  EXPECT_EQ(store_->Entries(8, 10, kNoLimit).value()[1].term(), 2u);
}

TEST_F(RaftLogStoreTest, AppendRejectsGapsAndDisorder) {
  ASSERT_TRUE(Append(1, 3, 1).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(Append(5, 6, 1)));
  std::vector<raftpb::Entry> disorder = {MakeEntry(4, 1), MakeEntry(6, 1)};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Save(nullptr, disorder, nullptr, true)));
  EXPECT_EQ(store_->LastIndex(), 3u);
}

TEST_F(RaftLogStoreTest, CompactAfterSnapshot) {
  ASSERT_TRUE(Append(1, 10, 1).ok());
  ASSERT_TRUE(Append(11, 20, 2).ok());
  raftpb::ConfState cs;
  cs.add_voters(1);
  // Entries not covered by any snapshot cannot be dropped.
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Compact(5)));
  auto snap = store_->CreateSnapshot(12, cs, "handle-12");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->metadata().term(), 2u);
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->CreateSnapshot(12, cs, "").status()));
  ASSERT_TRUE(store_->Compact(10).ok());
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->Term(10).value(), 1u);  // Term at first - 1 still answers.
  EXPECT_TRUE(raft::IsCompacted(store_->Term(9).status()));
  EXPECT_TRUE(raft::IsCompacted(store_->Entries(10, 12, kNoLimit).status()));
  EXPECT_TRUE(raft::IsCompacted(store_->Compact(10)));
  EXPECT_TRUE(absl::IsOutOfRange(store_->Compact(21)));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Compact(13)));
  ASSERT_TRUE(store_->Compact(12).ok());
  EXPECT_EQ(store_->FirstIndex(), 13u);
  EXPECT_EQ(store_->GetSnapshot()->data(), "handle-12");
  EXPECT_EQ(store_->GetInitialState()->conf_state.voters_size(), 1);
  // Appending below the first index skips what is compacted.
  ASSERT_TRUE(Append(11, 22, 3).ok());
  EXPECT_EQ(store_->FirstIndex(), 13u);
  EXPECT_EQ(store_->Term(13).value(), 3u);
  EXPECT_EQ(store_->LastIndex(), 22u);
  // Wholly compacted entries are ignored.
  ASSERT_TRUE(Append(5, 9, 3).ok());
  EXPECT_EQ(store_->LastIndex(), 22u);
}

TEST_F(RaftLogStoreTest, CompactEverything) {
  ASSERT_TRUE(Append(1, 10, 4).ok());
  ASSERT_TRUE(store_->CreateSnapshot(10, {}, "").ok());
  ASSERT_TRUE(store_->Compact(10).ok());
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(store_->Term(10).value(), 4u);
  Reopen();
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  ASSERT_TRUE(Append(11, 12, 4).ok());
}

TEST_F(RaftLogStoreTest, SnapshotInSaveDropsTheLogAndMovesFirstIndex) {
  ASSERT_TRUE(Append(1, 30, 1).ok());
  const raftpb::HardState hs = Hs(3, 2, 20);
  const raftpb::SnapshotMetadata meta = SnapMeta(20, 3, {1, 2, 3});
  // Snapshot, entries after it and the hard state in one Save.
  ASSERT_TRUE(store_->Save(&hs, MakeEntries(21, 22, 3), &meta, true, "snap-handle").ok());
  EXPECT_EQ(store_->FirstIndex(), 21u);
  EXPECT_EQ(store_->LastIndex(), 22u);  // The old 23..30 (term 1) are gone.
  EXPECT_EQ(store_->Term(20).value(), 3u);
  EXPECT_TRUE(raft::IsCompacted(store_->Entries(20, 21, kNoLimit).status()));
  EXPECT_EQ(store_->GetSnapshot()->data(), "snap-handle");
  auto init = store_->GetInitialState().value();
  EXPECT_EQ(init.hard_state.commit(), 20u);
  EXPECT_EQ(init.conf_state.voters_size(), 3);
  const raftpb::SnapshotMetadata older = SnapMeta(10, 1, {1});
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Save(nullptr, {}, &older, true)));
  // A snapshot beyond the whole local log.
  const raftpb::SnapshotMetadata ahead = SnapMeta(100, 5, {1, 2, 3});
  ASSERT_TRUE(store_->Save(nullptr, {}, &ahead, true).ok());
  EXPECT_EQ(store_->FirstIndex(), 101u);
  EXPECT_EQ(store_->LastIndex(), 100u);
  ASSERT_TRUE(Append(101, 101, 5).ok());
}

TEST_F(RaftLogStoreTest, HardStateAndConfStatePersist) {
  const raftpb::HardState hs = Hs(7, 3, 0);
  ASSERT_TRUE(store_->Save(&hs, {}, nullptr, true).ok());
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_learners(4);
  ASSERT_TRUE(store_->SetConfState(cs).ok());
  Reopen();
  auto init = store_->GetInitialState().value();
  EXPECT_EQ(init.hard_state.term(), 7u);
  EXPECT_EQ(init.hard_state.vote(), 3u);
  EXPECT_EQ(init.conf_state.learners(0), 4u);
  // An empty Save writes nothing.
  const uint64_t saves = store_->stats().saves;
  ASSERT_TRUE(store_->Save(nullptr, {}, nullptr, true).ok());
  EXPECT_EQ(store_->stats().saves, saves);
}

TEST_F(RaftLogStoreTest, HotTailIsServedFromMemory) {
  ASSERT_TRUE(Append(1, 100, 1).ok());
  const RaftLogStoreStats before = store_->stats();
  ASSERT_EQ(store_->Entries(90, 101, kNoLimit).value().size(), 11u);
  ASSERT_EQ(store_->Term(100).value(), 1u);
  EXPECT_EQ(store_->stats().db_reads, before.db_reads);
  EXPECT_EQ(store_->stats().tail_cache_hits, before.tail_cache_hits + 2);
}

TEST_F(RaftLogStoreTest, ColdEntriesComeFromRocksDb) {
  options_.tail_cache_bytes_max = 2048;
  Reopen();
  ASSERT_TRUE(Append(1, 200, 1).ok());
  const RaftLogStoreStats before = store_->stats();
  auto got = store_->Entries(1, 201, kNoLimit).value();
  ASSERT_EQ(got.size(), 200u);
  for (const auto& e : got) EXPECT_TRUE(IsGenuine(e));
  EXPECT_EQ(store_->Term(3).value(), 1u);
  EXPECT_EQ(store_->stats().db_reads, before.db_reads + 2);
}

TEST_F(RaftLogStoreTest, GroupsInOneDirectoryAreSeparate) {
  ASSERT_TRUE(Append(1, 5, 1).ok());
  store_.reset();
  options_.group_id = 2;
  Open();
  EXPECT_EQ(store_->LastIndex(), 0u);
  ASSERT_TRUE(Append(1, 3, 9).ok());
  store_.reset();
  options_.group_id = 1;
  Open();
  EXPECT_EQ(store_->LastIndex(), 5u);
  EXPECT_EQ(store_->Term(3).value(), 1u);
}

// Readers on another thread (the transport) during truncating and compacting writes always
// see a consistent log: contiguous genuine entries from the index asked for.
TEST_F(RaftLogStoreTest, ConcurrentReadersSeeConsistentLog) {
  options_.tail_cache_bytes_max = 4096;
  Reopen();
  ASSERT_TRUE(Append(1, 50, 1).ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    std::mt19937_64 rng(7);
    while (!stop.load()) {
      const uint64_t first = store_->FirstIndex();
      const uint64_t last = store_->LastIndex();
      if (last < first) continue;
      const uint64_t lo = first + rng() % (last - first + 1);
      auto got = store_->Entries(lo, lo + 1 + rng() % 20, kNoLimit);
      if (!got.ok()) {
        // Only a race with a compaction or truncation between the calls is acceptable.
        ASSERT_TRUE(raft::IsCompacted(got.status()) || absl::IsOutOfRange(got.status()))
            << got.status();
        continue;
      }
      for (size_t i = 0; i < got->size(); ++i) {
        ASSERT_EQ((*got)[i].index(), lo + i);
        ASSERT_TRUE(IsGenuine((*got)[i]));
        if (i > 0) {
          ASSERT_GE((*got)[i].term(), (*got)[i - 1].term());
        }
      }
      reads.fetch_add(1);
    }
  });
  uint64_t term = 1;
  for (int round = 0; round < 300; ++round) {
    const uint64_t last = store_->LastIndex();
    if (round % 3 == 0) {
      ++term;  // Overwrite the last few entries with a new term, shorter.
      const uint64_t from = std::max(store_->FirstIndex(), last - 5);
      ASSERT_TRUE(Append(from, from + 2, term).ok());
    } else {
      ASSERT_TRUE(store_
                      ->Save(nullptr, MakeEntries(last + 1, last + 10, term), nullptr,
                             /*sync=*/false)
                      .ok());
    }
    if (round % 25 == 24) {
      const uint64_t at = store_->LastIndex() - 20;
      ASSERT_TRUE(store_->CreateSnapshot(at, {}, "").ok());
      ASSERT_TRUE(store_->Compact(at).ok());
    }
  }
  stop.store(true);
  reader.join();
  EXPECT_GT(reads.load(), 0u);
}

// Random operations applied to RaftLogStore and to raft::MemoryStorage (the model of the
// same contract) give the same answers, with reopens in between.
TEST_F(RaftLogStoreTest, MatchesMemoryStorage) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  options_.tail_cache_bytes_max = 3000;
  Reopen();
  raft::MemoryStorage model;
  uint64_t term = 1;
  for (int step = 0; step < 600; ++step) {
    const int op = static_cast<int>(rng() % 100);
    const uint64_t first = model.FirstIndex();
    const uint64_t last = model.LastIndex();
    if (op < 60) {
      if (rng() % 5 == 0) ++term;
      // Start anywhere from a little below the first index to last + 1.
      const uint64_t back = rng() % 8;
      const uint64_t lo = std::max<uint64_t>(1, (last + 1 > back ? last + 1 - back : 1));
      const uint64_t hi = lo + rng() % 12;
      auto entries = MakeEntries(lo, hi, term);
      const raftpb::HardState hs = Hs(term, 1, 0);
      ASSERT_EQ(model.Append(entries).ok(), store_->Save(&hs, entries, nullptr, true).ok());
      model.SetHardState(hs);
    } else if (op < 75 && last >= first) {
      const uint64_t at = first - 1 + rng() % (last - first + 2);
      auto m = model.CreateSnapshot(at, {}, "d");
      auto s = store_->CreateSnapshot(at, {}, "d");
      ASSERT_EQ(m.ok(), s.ok()) << at << " " << s.status();
      if (m.ok()) {
        ASSERT_EQ(m->SerializeAsString(), s->SerializeAsString());
      }
      const uint64_t snap = model.GetSnapshot()->metadata().index();
      if (snap >= first) {
        const uint64_t c = first + rng() % (snap - first + 1);
        // Not always OK: a truncation may have left the log shorter than the snapshot.
        ASSERT_EQ(model.Compact(c).code(), store_->Compact(c).code()) << "compact " << c;
      }
    } else if (op < 80) {
      ++term;
      const uint64_t ahead = last + rng() % 10;
      const uint64_t at = ahead >= 4 ? ahead - 4 : 0;
      if (at <= model.GetSnapshot()->metadata().index()) continue;
      raftpb::Snapshot snap;
      *snap.mutable_metadata() = SnapMeta(at, term, {1, 2});
      snap.set_data("installed");
      ASSERT_TRUE(model.ApplySnapshot(snap).ok());
      ASSERT_TRUE(store_->Save(nullptr, {}, &snap.metadata(), true, "installed").ok());
    } else if (op < 85) {
      Reopen();
    }
    // Compare every read the contract has.
    ASSERT_EQ(model.FirstIndex(), store_->FirstIndex()) << "step " << step;
    ASSERT_EQ(model.LastIndex(), store_->LastIndex()) << "step " << step;
    const uint64_t lo = model.FirstIndex() - 1 + rng() % 3;
    const uint64_t hi = std::min(model.LastIndex() + 1, lo + rng() % 30);
    const uint64_t max_bytes = rng() % 3 == 0 ? kNoLimit : rng() % 4000;
    auto me = model.Entries(lo, hi, max_bytes);
    auto se = store_->Entries(lo, hi, max_bytes);
    ASSERT_EQ(me.status().code(), se.status().code()) << "step " << step << " " << se.status();
    if (me.ok()) {
      ASSERT_EQ(me->size(), se->size());
      for (size_t i = 0; i < me->size(); ++i) {
        ASSERT_EQ((*me)[i].SerializeAsString(), (*se)[i].SerializeAsString());
      }
    }
    for (uint64_t i = model.FirstIndex() - 1; i <= model.LastIndex(); i += 1 + rng() % 5) {
      ASSERT_EQ(model.Term(i).value(), store_->Term(i).value()) << "term of " << i;
    }
    ASSERT_EQ(model.GetSnapshot()->SerializeAsString(), store_->GetSnapshot()->SerializeAsString());
  }
}

}  // namespace
}  // namespace keel::storage
