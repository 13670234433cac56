// Plain-text renderings of the broker's mmi.workers and mmi.stats results, for
// `carico-client workers` / `stats` and the REPL.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace carico {

// An aligned table, one worker a row: NAME SERVICE STATE IN_FLIGHT CAPACITY
// HOST PID MEM% LAST_SEEN_MS. result is mmi.workers' `result` ({"workers": [...]});
// missing fields print as "-".
std::string format_workers(const nlohmann::json& result);

// `key  value` lines, aligned, nested maps (per service) flattened as a.b.
std::string format_stats(const nlohmann::json& result);

}  // namespace carico
