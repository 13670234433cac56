// Durations in seconds counted into fixed buckets, as a Prometheus histogram
// reports them: a count per bucket, their sum and how many there were.
//
//   duration_histogram h;                 // default_bounds(): 0.5 ms .. 60 s
//   h.observe(0.012);
//   h.cumulative();                       // counts of `le` each bound, then +Inf
//
// Not thread-safe: one owner writes it; others get a copy.
#pragma once

#include <cstdint>
#include <vector>

namespace carico {

class duration_histogram {
 public:
  // 0.5 ms to 60 s, about x2.5 apart: a request takes milliseconds to seconds.
  static const std::vector<double>& default_bounds();

  // bounds: upper bounds in seconds, ascending, finite; +Inf is implied.
  explicit duration_histogram(const std::vector<double>& bounds = default_bounds());

  // Counts one duration (negative ones as 0: a clock stepped back).
  void observe(double seconds);

  const std::vector<double>& bounds() const { return bounds_; }
  // For each bound, how many observations were <= it; then the total (+Inf).
  std::vector<std::uint64_t> cumulative() const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;  // upper bounds, ascending
  std::vector<std::uint64_t>
      buckets_;             // observations per bucket (not cumulative); last: > every bound
  std::uint64_t count_{0};  // observations
  double sum_{0};           // their sum, seconds
};

}  // namespace carico
