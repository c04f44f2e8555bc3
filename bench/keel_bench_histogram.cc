#include "bench/keel_bench_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/check.h"

namespace keel::bench {
namespace {
// 2^kSubBits exact buckets at the bottom; each higher power of two gets kHalf buckets.
constexpr int kSubBits = 7;
constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 128
constexpr uint64_t kHalf = kSub / 2;                // 64
// Highest shift: values up to 2^64 - 1 have their top bit at 63.
constexpr int kMaxShift = 63 - (kSubBits - 1);
constexpr int kNumBuckets = static_cast<int>(kSub + kMaxShift * kHalf);
}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kNumBuckets, 0) {}

int LatencyHistogram::BucketIndex(uint64_t value_ns) {
  if (value_ns < kSub) return static_cast<int>(value_ns);
  const int top_bit = 63 - std::countl_zero(value_ns);
  const int shift = top_bit - (kSubBits - 1);   // >= 1
  const uint64_t mantissa = value_ns >> shift;  // in [kHalf, kSub)
  return static_cast<int>(kSub + (shift - 1) * kHalf + (mantissa - kHalf));
}

uint64_t LatencyHistogram::BucketLowNs(int index) {
  KEEL_CHECK(index >= 0 && index < kNumBuckets);
  if (static_cast<uint64_t>(index) < kSub) return static_cast<uint64_t>(index);
  const uint64_t rel = static_cast<uint64_t>(index) - kSub;
  const int shift = static_cast<int>(rel / kHalf) + 1;
  const uint64_t mantissa = kHalf + rel % kHalf;
  return mantissa << shift;
}

uint64_t LatencyHistogram::BucketHighNs(int index) {
  KEEL_CHECK(index >= 0 && index < kNumBuckets);
  if (static_cast<uint64_t>(index) < kSub) return static_cast<uint64_t>(index);
  const uint64_t rel = static_cast<uint64_t>(index) - kSub;
  const int shift = static_cast<int>(rel / kHalf) + 1;
  const uint64_t mantissa = kHalf + rel % kHalf;
  // (mantissa + 1) << shift may be 2^64 for the top bucket; compute without overflow.
  return (mantissa << shift) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::Record(uint64_t value_ns) {
  ++buckets_[BucketIndex(value_ns)];
  ++count_;
  min_ns_ = std::min(min_ns_, value_ns);
  max_ns_ = std::max(max_ns_, value_ns);
  sum_ns_ += static_cast<long double>(value_ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  sum_ns_ += other.sum_ns_;
}

double LatencyHistogram::mean_ns() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_ / static_cast<long double>(count_));
}

uint64_t LatencyHistogram::PercentileNs(double percentile) const {
  KEEL_CHECK(percentile >= 0.0 && percentile <= 100.0);
  if (count_ == 0) return 0;
  // Rank of the sample (1-based) that the percentile names; p0 is the minimum.
  uint64_t rank =
      static_cast<uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(BucketHighNs(i), min_ns(), max_ns_);
  }
  return max_ns_;  // Unreachable: the buckets sum to count_.
}

}  // namespace keel::bench
