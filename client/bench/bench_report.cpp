#include "client/bench/bench_report.hpp"

#include <unistd.h>

#include <algorithm>
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
      {"round", r.round},
      {"keyed", r.keyed},
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
  std::snprintf(line, sizeof line, "%-9s %5s %9s %7s %6s %7s %11s %9s %9s %9s %9s %8s %9s %7s\n",
                "mode", "round", "payload", "clients", "window", "workers", "req/s", "MB/s",
                "p50 us", "p99 us", "p999 us", "cpu %", "rss MiB", "errors");
  out << line;
  for (const run_result& r : results) {
    const std::vector<std::uint32_t>& lat = r.load.latency_us;
    std::snprintf(line, sizeof line,
                  "%-9s %5zu %9zu %7zu %6zu %7zu %11.0f %9.1f %9u %9u %9u %8.1f %9.1f %7llu\n",
                  r.mode.c_str(), r.round, r.payload_bytes, r.clients, r.window, r.workers,
                  requests_per_second(r), megabytes_per_second(r), percentile(lat, 0.5),
                  percentile(lat, 0.99), percentile(lat, 0.999), r.broker_cpu_percent,
                  static_cast<double>(r.broker_peak_rss_bytes) / (1 << 20),
                  static_cast<unsigned long long>(r.load.errors));
    out << line;
  }
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::vector<mode_summary> summarize(const std::vector<run_result>& results) {
  // The first run of `mode` in `round`, if there was one.
  auto find = [&](const std::string& mode, std::size_t round) -> const run_result* {
    for (const run_result& r : results) {
      if (r.mode == mode && r.round == round) return &r;
    }
    return nullptr;
  };
  // Over this mode's runs, f(run, the same round's `other` run): median and range.
  auto ratio = [&](const std::string& mode, const std::string& other,
                   double (*f)(const run_result&, const run_result&)) -> std::optional<round_ratio> {
    if (mode == other) return std::nullopt;
    std::vector<double> ratios;
    for (const run_result& r : results) {
      if (r.mode != mode) continue;
      const run_result* o = find(other, r.round);
      if (o != nullptr) ratios.push_back(f(r, *o));
    }
    if (ratios.empty()) return std::nullopt;
    const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
    return round_ratio{median(ratios), *lo, *hi};
  };
  auto rate_ratio = [](const run_result& a, const run_result& b) {
    const double base = requests_per_second(b);
    return base > 0 ? requests_per_second(a) / base : 0.0;
  };
  auto p99_ratio = [](const run_result& a, const run_result& b) {
    return static_cast<double>(percentile(a.load.latency_us, 0.99)) /
           std::max<double>(1, percentile(b.load.latency_us, 0.99));
  };

  std::vector<mode_summary> out;
  for (const run_result& r : results) {
    if (std::any_of(out.begin(), out.end(), [&](const mode_summary& s) { return s.mode == r.mode; })) {
      continue;
    }
    mode_summary s;
    s.mode = r.mode;
    std::vector<double> rates, p99s;
    for (const run_result& x : results) {
      if (x.mode != r.mode) continue;
      rates.push_back(requests_per_second(x));
      p99s.push_back(percentile(x.load.latency_us, 0.99));
    }
    s.runs = rates.size();
    s.requests_per_s_min = *std::min_element(rates.begin(), rates.end());
    s.requests_per_s_max = *std::max_element(rates.begin(), rates.end());
    s.requests_per_s = median(std::move(rates));
    s.p99_us = median(std::move(p99s));
    s.vs_proxy = ratio(r.mode, "proxy", rate_ratio);
    if (auto p99 = ratio(r.mode, "proxy", p99_ratio)) s.p99_vs_proxy = p99->median;
    if (r.mode != "proxy") {
      s.vs_broker = ratio(r.mode, "broker", rate_ratio);
      s.vs_quiet = ratio(r.mode, "quiet", rate_ratio);
      s.vs_nojournal = ratio(r.mode, "nojournal", rate_ratio);
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const mode_summary& s) {
  nlohmann::json out = {{"mode", s.mode},
                        {"runs", s.runs},
                        {"requests_per_s", s.requests_per_s},
                        {"requests_per_s_range", {s.requests_per_s_min, s.requests_per_s_max}},
                        {"p99_us", s.p99_us}};
  auto put = [&out](const char* key, const std::optional<round_ratio>& v) {
    if (!v) return;
    out[key] = v->median;
    out[std::string(key) + "_range"] = {v->min, v->max};
  };
  put("vs_proxy", s.vs_proxy);
  if (s.p99_vs_proxy) out["p99_vs_proxy"] = *s.p99_vs_proxy;
  put("vs_broker", s.vs_broker);
  put("vs_quiet", s.vs_quiet);
  put("vs_nojournal", s.vs_nojournal);
  return out;
}

void print_summary(std::ostream& out, const std::vector<mode_summary>& summary) {
  out << "medians over rounds [range]; ratios within each round, then their median [range]:\n";
  char line[320];
  std::snprintf(line, sizeof line, "%-9s %4s %22s %8s %20s %8s %20s %20s\n", "mode", "runs",
                "req/s", "p99 us", "vs proxy", "p99 vs", "vs broker", "vs quiet");
  out << line;
  auto cell = [](const std::optional<round_ratio>& v) {
    char text[64] = "-";
    if (v) std::snprintf(text, sizeof text, "%.3f [%.3f-%.3f]", v->median, v->min, v->max);
    return std::string(text);
  };
  const mode_summary* nojournal = nullptr;
  const mode_summary* shipped = nullptr;
  for (const mode_summary& s : summary) {
    char rate[64], p99[32] = "-";
    std::snprintf(rate, sizeof rate, "%.0f [%.0f-%.0f]", s.requests_per_s, s.requests_per_s_min,
                  s.requests_per_s_max);
    if (s.p99_vs_proxy) std::snprintf(p99, sizeof p99, "%.3f", *s.p99_vs_proxy);
    std::snprintf(line, sizeof line, "%-9s %4zu %22s %8.0f %20s %8s %20s %20s\n", s.mode.c_str(),
                  s.runs, rate, s.p99_us, cell(s.vs_proxy).c_str(), p99,
                  cell(s.vs_broker).c_str(), cell(s.vs_quiet).c_str());
    out << line;
    if (s.mode == "nojournal") nojournal = &s;
    if (s.mode == "shipped") shipped = &s;
  }
  // What the shipped configuration's parts cost, each against the one without it.
  if (nojournal != nullptr && nojournal->vs_quiet) {
    std::snprintf(line, sizeof line,
                  "routing log at its defaults: nojournal/quiet req/s = %.3f [%.3f-%.3f], "
                  "it costs %.1f %% (target <= 10 %%)\n",
                  nojournal->vs_quiet->median, nojournal->vs_quiet->min, nojournal->vs_quiet->max,
                  100 * (1 - nojournal->vs_quiet->median));
    out << line;
  }
  if (shipped != nullptr && shipped->vs_nojournal) {
    std::snprintf(line, sizeof line,
                  "journal at its defaults: shipped/nojournal req/s = %.3f [%.3f-%.3f], "
                  "it costs %.1f %%\n",
                  shipped->vs_nojournal->median, shipped->vs_nojournal->min,
                  shipped->vs_nojournal->max, 100 * (1 - shipped->vs_nojournal->median));
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
