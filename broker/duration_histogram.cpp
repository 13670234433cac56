#include "broker/duration_histogram.hpp"

#include <algorithm>

namespace carico {

const std::vector<double>& duration_histogram::default_bounds() {
  static const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return bounds;
}

duration_histogram::duration_histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(bounds.size() + 1, 0) {}

void duration_histogram::observe(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // NaN too
  // The first bound >= seconds: `le` is inclusive.
  const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  ++buckets_[static_cast<std::size_t>(at - bounds_.begin())];
  ++count_;
  sum_ += seconds;
}

std::vector<std::uint64_t> duration_histogram::cumulative() const {
  std::vector<std::uint64_t> out(buckets_.size());
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    running += buckets_[i];
    out[i] = running;
  }
  return out;
}

}  // namespace carico
