#include "client/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace carico {

std::string format_duration(std::chrono::microseconds d) {
  const double us = static_cast<double>(d.count());
  char buf[32];
  if (us < 1000.0) {
    std::snprintf(buf, sizeof buf, "%.0f us", us);
  } else if (us < 1000000.0) {
    std::snprintf(buf, sizeof buf, "%.1f ms", us / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", us / 1000000.0);
  }
  return buf;
}

batch_progress::batch_progress(std::size_t total)
    : total_(total), started_(std::chrono::steady_clock::now()) {
  latencies_us_.reserve(std::min<std::size_t>(total, 1 << 20));
}

void batch_progress::completed(const reply& r) {
  ++done_;
  if (r.ok()) ++ok_;
  ++codes_[r.code];
  std::string worker;
  if (auto it = r.head.find("worker"); it != r.head.end() && it->is_string()) {
    worker = it->get<std::string>();
  }
  ++workers_[worker];
  latencies_us_.push_back(r.latency.count());
}

batch_progress::seconds batch_progress::elapsed() const {
  return std::chrono::steady_clock::now() - started_;
}

std::chrono::microseconds batch_progress::percentile(double q) const {
  if (latencies_us_.empty()) return std::chrono::microseconds(0);
  std::vector<std::int64_t> sorted = latencies_us_;
  // Nearest rank: the smallest value with at least q of the values at or below it.
  const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size()));
  const std::size_t index = rank < 1.0 ? 0 : static_cast<std::size_t>(rank) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(index), sorted.end());
  return std::chrono::microseconds(sorted[index]);
}

std::string batch_progress::progress_line(seconds elapsed) const {
  const double secs = std::max(elapsed.count(), 1e-6);
  const double rate = static_cast<double>(done_) / secs;
  char buf[160];
  char eta[32] = "-";
  if (done_ >= total_) {
    std::snprintf(eta, sizeof eta, "0s");
  } else if (rate > 0.0) {
    std::snprintf(eta, sizeof eta, "%.1fs", static_cast<double>(total_ - done_) / rate);
  }
  std::snprintf(buf, sizeof buf, "sent %zu/%zu  done %zu  failed %zu  %.0f/s  ETA %s", sent_, total_,
                done_, done_ - ok_, rate, eta);
  return buf;
}

std::string batch_progress::summary(seconds elapsed) const {
  const double secs = std::max(elapsed.count(), 1e-6);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%zu document%s in %.2f s (%.0f/s): %zu ok, %zu failed\n", done_,
                done_ == 1 ? "" : "s", secs, static_cast<double>(done_) / secs, ok_, done_ - ok_);
  std::string out = buf;
  out += "  codes   ";
  for (const auto& [code, n] : codes_) out += "  " + std::to_string(code) + " x" + std::to_string(n);
  out += '\n';
  std::chrono::microseconds max{0};
  for (std::int64_t us : latencies_us_) max = std::max(max, std::chrono::microseconds(us));
  out += "  latency   p50 " + format_duration(percentile(0.50)) + "  p99 " +
         format_duration(percentile(0.99)) + "  max " + format_duration(max) + '\n';
  out += "  workers ";
  for (const auto& [worker, n] : workers_) {
    out += "  " + (worker.empty() ? std::string("(none)") : worker) + " " + std::to_string(n);
  }
  out += '\n';
  return out;
}

}  // namespace carico
