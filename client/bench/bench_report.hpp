// One benchmark run's figures, and how they are shown: an aligned table for
// people, JSON for scripts (scripts/bench.sh, the CI smoke test).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/bench/load_driver.hpp"

namespace carico {

struct run_result {
  std::string mode;                       // proxy, broker, journal, text, queue, failover
  std::size_t payload_bytes{0};           // request payload size
  std::size_t clients{0};                 // client sockets
  std::size_t window{0};                  // outstanding requests per client
  std::size_t workers{0};                 // worker processes
  load_result load;                       // what the clients saw
  double broker_cpu_percent{0};           // broker (or proxy) CPU over the interval, 100 = one core
  std::uint64_t broker_peak_rss_bytes{0}; // broker (or proxy) VmHWM at the end
  double workers_cpu_percent{0};          // all workers together
  double bench_cpu_percent{0};            // this process (the clients)
  nlohmann::json extra = nlohmann::json::object();  // mode-specific figures (queue, failover)
  std::size_t round{1};                   // which round of --rounds it ran in, from 1
  bool keyed{false};                      // requests carried `client` and `id`
};

// A ratio taken in each round, then its median and range over the rounds.
struct round_ratio {
  double median{0};
  double min{0};
  double max{0};
};

// One mode over every round of an invocation (--rounds). Ratios are taken
// within a round (each run of this mode against the first proxy, broker,
// quiet or nojournal run of the same round), then the median over them: the
// host's speed drifts over seconds, and runs next to each other see the same host.
struct mode_summary {
  std::string mode;
  std::size_t runs{0};                 // runs of this mode (one per round, or more if listed twice)
  double requests_per_s{0};            // median over its runs
  double requests_per_s_min{0};        // range over its runs
  double requests_per_s_max{0};
  double p99_us{0};                    // median over its runs
  std::optional<round_ratio> vs_proxy;      // req/s / the same round's proxy req/s
  std::optional<double> p99_vs_proxy;       // median of p99 / the same round's proxy p99
  std::optional<round_ratio> vs_broker;     // req/s / the same round's broker req/s
  std::optional<round_ratio> vs_quiet;      // req/s / the same round's quiet req/s
  std::optional<round_ratio> vs_nojournal;  // req/s / the same round's nojournal req/s
};

// The q-quantile (0..1) of sorted values; 0 when empty.
std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double q);

double requests_per_second(const run_result& r);
double megabytes_per_second(const run_result& r);  // payload bytes one way, 10^6 B/s

nlohmann::json to_json(const run_result& r, bool with_cdf);
void print_table(std::ostream& out, const std::vector<run_result>& results);

// Median of values (the mean of the middle two for an even count); 0 when empty.
double median(std::vector<double> values);
// One summary per mode, in the order the modes first ran.
std::vector<mode_summary> summarize(const std::vector<run_result>& results);
nlohmann::json to_json(const mode_summary& s);
void print_summary(std::ostream& out, const std::vector<mode_summary>& summary);

// nproc, CPU model and memory of this machine.
nlohmann::json machine_json();

}  // namespace carico
