// Unit tests of keel-bench's latency histogram, argument checks and report rendering.
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

#include "bench/keel_bench_cpu.h"
#include "bench/keel_bench_histogram.h"
#include "bench/keel_bench_options.h"
#include "bench/keel_bench_report.h"
#include "gtest/gtest.h"

namespace keel::bench {
namespace {

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.PercentileNs(50), 0u);
  EXPECT_EQ(h.max_ns(), 0u);
  EXPECT_EQ(h.min_ns(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.PercentileNs(50), 50u);
  EXPECT_EQ(h.PercentileNs(90), 90u);
  EXPECT_EQ(h.PercentileNs(99), 99u);
  EXPECT_EQ(h.PercentileNs(100), 100u);
  EXPECT_EQ(h.PercentileNs(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 50.5);
}

TEST(LatencyHistogram, BucketsTileTheRangeWithoutGaps) {
  // Each bucket starts right after the previous one ends, and a value maps to the bucket
  // whose bounds contain it.
  for (int i = 1; i < 3000; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLowNs(i), LatencyHistogram::BucketHighNs(i - 1) + 1) << i;
  }
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 255ull, 256ull, 1000ull, 999999ull,
                     123456789ull, (1ull << 40) + 17, ~0ull}) {
    const int i = LatencyHistogram::BucketIndex(v);
    EXPECT_LE(LatencyHistogram::BucketLowNs(i), v) << v;
    EXPECT_GE(LatencyHistogram::BucketHighNs(i), v) << v;
  }
}

TEST(LatencyHistogram, PercentilesWithinRelativeErrorOfSortedSamples) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(13.0, 1.0);  // ~0.4 ms median, long tail.
  std::vector<uint64_t> samples;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng)) + 1;
    samples.push_back(v);
    h.Record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const size_t rank = static_cast<size_t>(std::ceil(p / 100 * samples.size()));
    const double exact = static_cast<double>(samples[rank - 1]);
    const double got = static_cast<double>(h.PercentileNs(p));
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(got, exact * (1 + 1.0 / 64)) << p;
  }
  EXPECT_EQ(h.max_ns(), samples.back());
  EXPECT_EQ(h.PercentileNs(100), samples.back());
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1000; v < 50000; v += 37) {
    ((v / 37) % 2 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  for (double p : {10.0, 50.0, 99.0}) EXPECT_EQ(a.PercentileNs(p), all.PercentileNs(p));
}

absl::StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "keel-bench");
  return ParseArgs(args);
}

TEST(ParseArgs, DefaultsAndFlags) {
  auto o = Parse({"put"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->workload, Workload::kPut);
  EXPECT_EQ(o->duration_s, kDefaultDurationS);  // Neither --total nor --duration.
  EXPECT_EQ(o->timeout_ms, 5000);

  o = Parse({"range", "--endpoints", "a:1,b:2", "--conns=8", "--clients", "256", "--consistency",
             "s", "--range-keys", "10", "--preload", "--target-leader", "--total", "20000",
             "--json"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->workload, Workload::kRange);
  EXPECT_EQ(o->endpoints, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(o->conns, 8);
  EXPECT_EQ(o->clients, 256);
  EXPECT_TRUE(o->serializable);
  EXPECT_EQ(o->range_keys, 10);
  EXPECT_TRUE(o->preload && o->target_leader && o->json);
  EXPECT_EQ(o->total, 20000);
  EXPECT_EQ(o->duration_s, 0);  // --total alone bounds the run.

  o = Parse({"mixed", "--read-ratio", "0.9", "--duration", "2.5", "--sequential-keys"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->read_ratio, 0.9);
  EXPECT_DOUBLE_EQ(o->duration_s, 2.5);
  EXPECT_TRUE(o->sequential_keys);
  EXPECT_EQ(o->rate, 0);  // Closed loop unless --rate.

  o = Parse({"put", "--rate", "500", "--clients", "16", "-w", "json", "--warmup", "1", "--duration",
             "3"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->rate, 500);
  EXPECT_TRUE(o->json);
  EXPECT_DOUBLE_EQ(o->warmup_s, 1);
  o = Parse({"put", "--server-pids", "12,34,56"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server_pids, (std::vector<int>{12, 34, 56}));
  o = Parse({"put", "--json", "--write-out=table"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE(o->json);
}

TEST(ParseArgs, RejectsBadInput) {
  const std::vector<std::vector<std::string>> bad = {
      {},                                         // No workload.
      {"scan"},                                   // Unknown workload.
      {"put", "--frobnicate", "1"},               // Unknown flag.
      {"put", "--clients"},                       // Missing value.
      {"put", "--clients", "0"},                  // Below range.
      {"put", "--clients", "ten"},                // Not a number.
      {"put", "--conns", "4", "--clients", "2"},  // Idle channels.
      {"range", "--consistency", "x"},
      {"mixed", "--read-ratio", "1.5"},
      {"put", "--key-size", "2", "--key-space", "1000"},  // 1000 keys need 3 digits.
      {"range", "--key-space", "5", "--range-keys", "6"},
      {"put", "--endpoints", "localhost"},  // No port.
      {"put", "--json=yes"},
      {"put", "--duration", "1", "--warmup", "2"},
      {"put", "--rate", "0"},  // An open loop offers some load.
      {"put", "--rate", "-5"},
      {"put", "--rate", "5e7", "--clients", "1"},  // Over 1M req/s from one client.
      {"put", "-w", "yaml"},
      {"put", "--server-pids", "12,x"},
      {"put", "--server-pids", ","},
  };
  for (const auto& args : bad) {
    auto o = Parse(args);
    EXPECT_FALSE(o.ok()) << (args.empty() ? "(none)" : args.back());
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_TRUE(Parse({"put", "--key-size", "3", "--key-space", "1000"}).ok());
}

TEST(ParseArgs, WatchWorkload) {
  auto o = Parse({"watch", "--watchers", "1000", "--watch-conns", "20", "--key-space", "1"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->workload, Workload::kWatch);
  EXPECT_EQ(o->watchers, 1000);
  EXPECT_EQ(o->watch_conns, 20);
  EXPECT_STREQ(WorkloadName(o->workload), "watch");
  // The send time travels in the value; more channels than watchers would idle.
  EXPECT_FALSE(Parse({"watch", "--val-size", "19"}).ok());
  EXPECT_TRUE(Parse({"watch", "--val-size", "20"}).ok());
  EXPECT_FALSE(Parse({"watch", "--watchers", "5", "--watch-conns", "6"}).ok());
  EXPECT_TRUE(Parse({"put", "--val-size", "0"}).ok());  // Only watch needs the room.
}

TEST(SendTime, StampedIntoTheValueAndReadBack) {
  std::string value(64, 'x');
  const auto sent = std::chrono::steady_clock::now();
  StampSendTime(&value, sent);
  EXPECT_EQ(value.substr(kStampBytes), std::string(64 - kStampBytes, 'x'));
  std::chrono::steady_clock::time_point back;
  ASSERT_TRUE(ReadSendTime(value, &back));
  EXPECT_EQ(back, sent);
  EXPECT_FALSE(ReadSendTime("short", &back));
  EXPECT_FALSE(ReadSendTime(std::string(kStampBytes, 'x'), &back));
}

TEST(Report, WatchSectionInTableAndJson) {
  Options o;
  o.workload = Workload::kWatch;
  o.watchers = 3;
  Result r;
  r.watch.watchers = 3;
  r.watch.expected_per_watcher = 10;
  r.watch.delivered = 30;
  r.watch.delivery.Record(2'000'000);
  const std::string table = FormatTable(o, r);
  EXPECT_NE(table.find("every watcher got every acknowledged put once, in order"),
            std::string::npos)
      << table;
  EXPECT_NE(FormatJson(o, r).find("\"watch\":{\"watchers\":3"), std::string::npos);
  r.watch.wrong_count = 1;
  r.watch.first_failure = "compacted at 7";
  EXPECT_NE(FormatTable(o, r).find("FAILED: 1 watcher(s)"), std::string::npos);
  o.workload = Workload::kPut;
  r.watch = WatchResult();
  EXPECT_EQ(FormatJson(o, r).find("\"watch\""), std::string::npos);
}

TEST(ProcStat, CpuTicksAreUtimePlusStime) {
  // A command name with a space and a ')' must not shift the fields.
  const std::string stat =
      "4242 (keel d) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 "
      "1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto ticks = ParseProcStatCpuTicks(stat);
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(*ticks, 1234u + 567u);
  EXPECT_FALSE(ParseProcStatCpuTicks("4242 keeld S 1").ok());
  EXPECT_FALSE(ParseProcStatCpuTicks("4242 (keeld) S 1 2 3").ok());
}

TEST(ProcStat, OwnProcessIsReadable) {
  auto cpu = ProcessesCpuSeconds({static_cast<int>(getpid())});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_GE(*cpu, 0);
  EXPECT_FALSE(ProcessesCpuSeconds({0x7ffffff0}).ok());  // No such process.
}

TEST(MakeKey, ZeroPaddedFixedWidthAndOrdered) {
  EXPECT_EQ(MakeKey(0, 8), "00000000");
  EXPECT_EQ(MakeKey(42, 8), "00000042");
  EXPECT_EQ(MakeKey(999, 3), "999");
  EXPECT_LT(MakeKey(9, 4), MakeKey(10, 4));  // Byte order matches index order (ranges).
}

TEST(Report, JsonAndTableCarryTheFigures) {
  auto o = Parse({"put", "--clients", "2"});
  ASSERT_TRUE(o.ok());
  Result r;
  r.requests = 10;
  r.ok = 9;
  r.errors_by_code[14] = 1;
  r.elapsed_s = 2;
  for (int i = 1; i <= 9; ++i) r.latency.Record(static_cast<uint64_t>(i) * 1000000);
  r.endpoints = {"127.0.0.1:2379"};
  const std::string json = FormatJson(*o, r);
  EXPECT_NE(json.find("\"throughput_rps\":5.00"), std::string::npos) << json;
  EXPECT_NE(json.find("\"errors\":{\"UNAVAILABLE\":1}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"p50\":5.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"max\":9.0000"), std::string::npos) << json;
  EXPECT_EQ(json.find('\n'), std::string::npos);
  const std::string table = FormatTable(*o, r);
  EXPECT_NE(table.find("UNAVAILABLE"), std::string::npos) << table;
  EXPECT_NE(table.find("5.0 req/s"), std::string::npos) << table;
  EXPECT_NE(table.find("closed loop"), std::string::npos) << table;

  auto open = Parse({"put", "--rate", "250"});
  ASSERT_TRUE(open.ok());
  EXPECT_NE(FormatJson(*open, r).find("\"rate\":250,"), std::string::npos);
  EXPECT_NE(FormatTable(*open, r).find("open loop, 250.0 req/s offered"), std::string::npos);
}

}  // namespace
}  // namespace keel::bench
