// Plain-text renderings of the broker's mmi.workers, mmi.stats and mmi.request
// results: one rendering each, for `carico-client workers` / `stats` and the
// REPL's `workers` / `stats` / `status N` alike.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace carico {

// An aligned table, one worker a row:
//   NAME  STATE  IN FLIGHT  MEMORY  LAST HEARTBEAT  SERVICE  HOST  PID
// result is mmi.workers' `result` ({"workers": [...]}); missing fields print
// as "-"; "no workers\n" when there are none.
std::string format_workers(const nlohmann::json& result);

// `key  value` lines, aligned, nested maps (per service) flattened as a.b.
std::string format_stats(const nlohmann::json& result);

// mmi.request's `result` as `key  value` lines, with human times: the journal's
// received_ms / dispatched_ms / completed_ms (epoch milliseconds) as local
// date and time (dispatched and completed also as "+N ms" after received),
// age_ms as a duration.
std::string format_request(const nlohmann::json& result);

// "512 B", "4.0 KiB", "20.3 MiB".
std::string format_bytes(double bytes);

// Epoch milliseconds as local "YYYY-MM-DD HH:MM:SS.mmm".
std::string format_epoch_ms(std::int64_t ms);

}  // namespace carico
