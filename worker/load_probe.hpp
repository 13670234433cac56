// Measures this process's memory and CPU use from /proc, for load reports.
#pragma once

#include <cstdint>

#include "shared/runtime.hpp"

namespace carico {

class load_probe {
 public:
  load_probe();
  // Reads current figures; cpu_percent is the average since the last sample.
  void sample();
  std::uint64_t rss_bytes() const { return rss_bytes_; }
  double mem_percent() const { return mem_percent_; }
  double cpu_percent() const { return cpu_percent_; }

 private:
  std::uint64_t mem_total_bytes_{0};  // the machine's memory, from /proc/meminfo
  std::uint64_t rss_bytes_{0};        // resident set size at the last sample
  double mem_percent_{0};             // rss as a share of mem_total_bytes_
  double cpu_percent_{0};             // CPU time over wall time between samples
  std::uint64_t last_cpu_ticks_{0};   // utime + stime at the last sample
  time_point last_sample_{};          // when the last sample was taken
};

}  // namespace carico
