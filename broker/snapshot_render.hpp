// The HTTP port's three views of a broker_snapshot: Prometheus metrics, the
// dashboard's JSON and the health check. Pure functions, run on the HTTP
// server's threads, never on the broker's loop.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "broker/metrics_snapshot.hpp"

namespace carico {

// GET /metrics: the Prometheus text exposition of s (docs/metrics.md names
// every family).
std::string metrics_text(const broker_snapshot& s);

// GET /api/state: the rings, queues, counters, rates and latest events.
// now_ms: the reader's clock, for the snapshot's age.
nlohmann::json state_json(const broker_snapshot& s, std::int64_t now_ms);

// GET /healthz: empty when the broker serves; otherwise why not (shutting
// down, journal failing, loop not publishing). s may be null (nothing
// published yet). stale_ms: a snapshot older than this means the loop is stuck.
std::string health_problem(const broker_snapshot* s, std::int64_t now_ms, std::int64_t stale_ms);

}  // namespace carico
