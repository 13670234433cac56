// Plain-text renderings of the broker's mmi.workers, mmi.stats, mmi.request,
// mmi.history and mmi.stored results: one rendering each, for `carico-client
// workers` / `stats` and the REPL's `workers` / `stats` / `status N` /
// `history` / `stored` alike. Text from the broker (names, titles) never
// reaches the terminal with a control character in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace carico {

// An aligned table, one worker a row:
//   NAME  STATE  IN FLIGHT  MEMORY  LAST HEARTBEAT  SERVICE  HOST  PID
// result is mmi.workers' `result` ({"workers": [...]}); missing fields print
// as "-"; "no workers\n" when there are none.
std::string format_workers(const nlohmann::json& result);

// "broker tcp://127.0.0.1:5555\n": the first line of `workers` and `stats`,
// one-shot or in the REPL. on is client::broker() (the endpoint the client is
// on now); when it is empty (inproc, not connected yet), configured is shown.
std::string format_broker_line(const std::string& on, const std::string& configured);

// mmi.history's `result` ({"requests": [...]}) as a table, one request a row:
//   REQUEST  STATE  CODE  WORKER  ATTEMPTS  BYTES  TITLE
// "no requests yet\n" when there are none.
std::string format_history(const nlohmann::json& result);

// mmi.stored's `result` ({"documents": [...]}) as a table, one document a row:
//   REQUEST  TITLE  WORKER  BYTES  WHEN (UTC)
// "no stored documents\n" when there are none.
std::string format_stored(const nlohmann::json& result);

// text as a table cell or a quoted word: each control character becomes '?'
// (an escape sequence cannot reach the terminal, a cell stays one line), and
// text longer than max code points is cut there with "..." appended.
std::string display_text(std::string text, std::size_t max);

// `key  value` lines, aligned, nested maps (per service) flattened as a.b.
std::string format_stats(const nlohmann::json& result);

// mmi.request's `result` as `key  value` lines, with human times: the journal's
// received_ms / dispatched_ms / completed_ms (epoch milliseconds) as local
// date and time (dispatched and completed also as "+N ms" after received),
// age_ms as a duration.
std::string format_request(const nlohmann::json& result);

// "512 B", "4.0 KiB", "20.3 MiB", "1.2 GiB".
std::string format_bytes(double bytes);

// A field of a JSON object as a table cell: "-" when the field is absent or
// null (or row is no object), a string through display_text(max), a fraction
// with one decimal, anything else as JSON. For every table of broker data:
// mmi_report's and carico-client top's.
std::string json_cell(const nlohmann::json& row, const char* key, std::size_t max = 40);

// A number field, when it is one.
std::optional<double> json_number(const nlohmann::json& row, const char* key);

// Epoch milliseconds as local "YYYY-MM-DD HH:MM:SS.mmm".
std::string format_epoch_ms(std::int64_t ms);

}  // namespace carico
