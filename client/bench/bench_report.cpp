#include "client/bench/bench_report.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

namespace carico {

std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = q * static_cast<double>(sorted.size() - 1);
  return sorted[static_cast<std::size_t>(std::llround(rank))];
}

double requests_per_second(const run_result& r) {
  return r.load.seconds > 0 ? static_cast<double>(r.load.answered) / r.load.seconds : 0;
}

double megabytes_per_second(const run_result& r) {
  return requests_per_second(r) * static_cast<double>(r.payload_bytes) / 1e6;
}

nlohmann::json to_json(const run_result& r, bool with_cdf) {
  const std::vector<std::uint32_t>& lat = r.load.latency_us;
  nlohmann::json out = {
      {"mode", r.mode},
      {"payload_bytes", r.payload_bytes},
      {"clients", r.clients},
      {"window", r.window},
      {"workers", r.workers},
      {"seconds", r.load.seconds},
      {"sent", r.load.sent},
      {"requests", r.load.answered},
      {"requests_per_s", requests_per_second(r)},
      {"mb_per_s", megabytes_per_second(r)},
      {"latency_us",
       {{"p50", percentile(lat, 0.5)},
        {"p99", percentile(lat, 0.99)},
        {"p999", percentile(lat, 0.999)},
        {"max", lat.empty() ? 0 : lat.back()},
        {"samples", lat.size()}}},
      {"errors", r.load.errors},
      {"lost", r.load.lost},
      {"broker_cpu_percent", r.broker_cpu_percent},
      {"broker_peak_rss_bytes", r.broker_peak_rss_bytes},
      {"workers_cpu_percent", r.workers_cpu_percent},
      {"bench_cpu_percent", r.bench_cpu_percent},
  };
  if (!r.load.first_error.empty()) out["first_error"] = r.load.first_error;
  if (r.load.event_delay_us >= 0) {
    out["event_delay_us"] = r.load.event_delay_us;
    out["event_in_flight"] = r.load.event_in_flight;
  }
  for (auto& [key, value] : r.extra.items()) out[key] = value;
  if (with_cdf && !lat.empty()) {
    // 200 points, denser in the tail: q = 1 - 10^-x for x in [0, 4].
    nlohmann::json cdf = nlohmann::json::array();
    for (int i = 0; i <= 200; ++i) {
      const double q = 1.0 - std::pow(10.0, -4.0 * i / 200.0);
      cdf.push_back({q, percentile(lat, q)});
    }
    out["latency_cdf_us"] = cdf;
  }
  return out;
}

void print_table(std::ostream& out, const std::vector<run_result>& results) {
  char line[512];
  std::snprintf(line, sizeof line, "%-9s %9s %7s %6s %7s %11s %9s %9s %9s %9s %8s %9s %7s\n",
                "mode", "payload", "clients", "window", "workers", "req/s", "MB/s", "p50 us",
                "p99 us", "p999 us", "cpu %", "rss MiB", "errors");
  out << line;
  for (const run_result& r : results) {
    const std::vector<std::uint32_t>& lat = r.load.latency_us;
    std::snprintf(line, sizeof line,
                  "%-9s %9zu %7zu %6zu %7zu %11.0f %9.1f %9u %9u %9u %8.1f %9.1f %7llu\n",
                  r.mode.c_str(), r.payload_bytes, r.clients, r.window, r.workers,
                  requests_per_second(r), megabytes_per_second(r), percentile(lat, 0.5),
                  percentile(lat, 0.99), percentile(lat, 0.999), r.broker_cpu_percent,
                  static_cast<double>(r.broker_peak_rss_bytes) / (1 << 20),
                  static_cast<unsigned long long>(r.load.errors));
    out << line;
  }
}

nlohmann::json machine_json() {
  std::string model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::uint64_t mem_kib = 0;
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      mem_kib = std::stoull(line.substr(9));
      break;
    }
  }
  return {{"nproc", std::thread::hardware_concurrency()},
          {"cpu", model},
          {"memory_bytes", mem_kib * 1024}};
}

}  // namespace carico
