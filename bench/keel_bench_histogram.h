// LatencyHistogram: an HDR-like log-linear histogram of durations in nanoseconds, used by
// keel-bench to report p50/p90/p99/p99.9/max without keeping every sample.
//
// Values below 128 ns are counted exactly; above, each power of two is split into 64
// equal buckets, so a reported percentile is at most 1/64 (1.6%) above the true sample
// (it is the bucket's upper bound, capped at the exact maximum). Memory is fixed (about
// 30 KiB) whatever the number of samples.
//
// Thread-safety: none; keel-bench gives every requester its own histogram and merges them
// after the run.
#pragma once

#include <cstdint>
#include <vector>

namespace keel::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(uint64_t value_ns);
  // Adds every sample of `other` to this histogram.
  void Merge(const LatencyHistogram& other);

  [[nodiscard]] uint64_t count() const { return count_; }
  [[nodiscard]] uint64_t min_ns() const { return count_ == 0 ? 0 : min_ns_; }
  [[nodiscard]] uint64_t max_ns() const { return max_ns_; }
  [[nodiscard]] double mean_ns() const;

  // The smallest recorded value v (up to bucket resolution) such that at least
  // `percentile` percent of the samples are <= v. `percentile` in [0, 100]; 0 when empty.
  [[nodiscard]] uint64_t PercentileNs(double percentile) const;

  // Exposed for tests: the bucket index of a value and the bucket's inclusive bounds.
  [[nodiscard]] static int BucketIndex(uint64_t value_ns);
  [[nodiscard]] static uint64_t BucketLowNs(int index);
  [[nodiscard]] static uint64_t BucketHighNs(int index);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ns_ = UINT64_MAX;
  uint64_t max_ns_ = 0;
  long double sum_ns_ = 0;
};

}  // namespace keel::bench
