// What `carico-client top` draws: the dashboard's view (broker/dashboard.html)
// as terminal text. Pure functions over the JSON of GET /api/state
// (broker/snapshot_render.hpp); state_from_mmi() builds the same shape from
// mmi.stats and mmi.workers for a broker reached over ZeroMQ only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace carico {

// /api/state's shape from mmi.stats' and mmi.workers' results (their
// `result`). What mmi does not say (latency, events, history) is left empty;
// the caller adds history and rate_per_s from successive polls.
nlohmann::json state_from_mmi(const nlohmann::json& stats, const nlohmann::json& workers);

// The screen: a header (health, rates, percentiles, totals), sparklines of
// req/s and queue depth, a table per service ring and the latest events;
// lines cut to `width` columns. `source` names where it came from.
std::string render_top(const nlohmann::json& state, const std::string& source, std::size_t width);

// ▁▂▃▄▅▆▇█ for values scaled to their maximum; the last `width` values.
std::string sparkline(const std::vector<double>& values, std::size_t width);

}  // namespace carico
