#include "client/top_view.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "client/mmi_report.hpp"
#include "shared/text_table.hpp"

namespace carico {
namespace {

using json = nlohmann::json;

// A field as text (no truncation: a line is cut to the screen's width at the
// end), and as a number, 0 when it is none.
std::string text_of(const json& j, const char* key) {
  return json_cell(j, key, 1000);
}
double num_of(const json& j, const char* key) {
  return json_number(j, key).value_or(0);
}

std::string fixed_text(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string duration_text(double ms) {
  if (ms < 1000) return fixed_text(ms, 0) + " ms";
  if (ms < 60000) return fixed_text(ms / 1000, 1) + " s";
  if (ms < 3600000) return fixed_text(ms / 60000, 0) + " min";
  return fixed_text(ms / 3600000, 1) + " h";
}

std::string latency_text(double ms) {
  return ms >= 100 ? fixed_text(ms, 0) + " ms" : fixed_text(ms, 1) + " ms";
}

// A bar of `width` cells, filled for share (0..1).
std::string bar_text(double share, std::size_t width) {
  share = std::clamp(share, 0.0, 1.0);
  const auto full = static_cast<std::size_t>(share * static_cast<double>(width) + 0.5);
  std::string out;
  for (std::size_t i = 0; i < width; ++i) out += i < full ? "\u2588" : "\u2591";
  return out;
}

std::string clock_text(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

// The first `width` code points of line (UTF-8).
std::string cut_to(const std::string& line, std::size_t width) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) {
      if (points == width) return line.substr(0, i);
      ++points;
    }
  }
  return line;
}

}  // namespace

std::string sparkline(const std::vector<double>& values, std::size_t width) {
  static const char* levels[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                 "\u2585", "\u2586", "\u2587", "\u2588"};
  const std::size_t from = values.size() > width ? values.size() - width : 0;
  double max = 0;
  for (std::size_t i = from; i < values.size(); ++i) max = std::max(max, values[i]);
  std::string out;
  for (std::size_t i = from; i < values.size(); ++i) {
    const double share = max > 0 ? values[i] / max : 0;
    out += levels[std::clamp(static_cast<int>(share * 7 + 0.5), 0, 7)];
  }
  return out;
}

json state_from_mmi(const json& stats, const json& workers) {
  json services = json::array();
  const json* rows =
      workers.is_object() && workers.contains("workers") ? &workers["workers"] : nullptr;
  if (stats.is_object() && stats.contains("services") && stats["services"].is_object()) {
    for (const auto& [name, s] : stats["services"].items()) {
      json ring = json::array();
      if (rows != nullptr && rows->is_array()) {
        for (const json& w : *rows) {
          if (w.is_object() && w.value("service", std::string()) == name) ring.push_back(w);
        }
      }
      services.push_back({{"name", name},
                          {"queued", num_of(s, "queued")},
                          {"ring", ring},
                          {"codes", json::object()}});
    }
  }
  json totals = json::object();
  for (const char* key :
       {"received", "done", "failed", "expired", "redispatched", "refused", "malformed",
        "late_replies", "unread_dropped", "resends", "workers_joined", "workers_lost"}) {
    totals[key] = num_of(stats, key);
  }
  return {{"health", {{"ok", true}, {"reason", ""}}},
          {"uptime_ms", num_of(stats, "uptime_ms")},
          {"totals", totals},
          {"queued", num_of(stats, "queued")},
          {"unanswered", num_of(stats, "queued") + num_of(stats, "in_flight")},
          {"rate_per_s", 0.0},
          {"latency", {{"samples", 0}, {"p50_ms", 0}, {"p99_ms", 0}}},
          {"services", services},
          {"history", json::array()},
          {"events", json::array()}};
}

std::string render_top(const json& state, const std::string& source, std::size_t width) {
  std::vector<std::string> lines;
  const json& health = state.value("health", json::object());
  const bool ok = health.value("ok", false);
  const std::int64_t now_ms = static_cast<std::int64_t>(std::time(nullptr)) * 1000;
  lines.push_back("carico top  " + without_controls(source, '?') + "  up " +
                  duration_text(num_of(state, "uptime_ms")) + "  " +
                  (ok ? std::string("serving") : "NOT SERVING: " + text_of(health, "reason")) +
                  "  " + clock_text(now_ms));
  const json& lat = state.value("latency", json::object());
  const bool have_latency = num_of(lat, "samples") > 0;
  lines.push_back("req/s " + fixed_text(num_of(state, "rate_per_s"), 1) + "   p50 " +
                  (have_latency ? latency_text(num_of(lat, "p50_ms")) : std::string("-")) +
                  "   p99 " +
                  (have_latency ? latency_text(num_of(lat, "p99_ms")) : std::string("-")) +
                  "   queued " + fixed_text(num_of(state, "queued"), 0) + "   unanswered " +
                  fixed_text(num_of(state, "unanswered"), 0));
  const json& t = state.value("totals", json::object());
  lines.push_back("done " + fixed_text(num_of(t, "done"), 0) + "   failed " +
                  fixed_text(num_of(t, "failed"), 0) + "   refused " +
                  fixed_text(num_of(t, "refused"), 0) + "   re-dispatched " +
                  fixed_text(num_of(t, "redispatched"), 0) + "   expired " +
                  fixed_text(num_of(t, "expired"), 0));
  std::vector<double> rates, queued;
  for (const json& p : state.value("history", json::array())) {
    rates.push_back(num_of(p, "finished"));
    queued.push_back(num_of(p, "queued"));
  }
  const std::size_t spark = width > 30 ? std::min<std::size_t>(width - 20, 120) : 10;
  lines.push_back("req/s  " + sparkline(rates, spark));
  lines.push_back("queue  " + sparkline(queued, spark));

  for (const json& svc : state.value("services", json::array())) {
    if (!svc.value("active", true)) continue;  // forgotten by the broker, kept for its counters
    const json& ring = svc.value("ring", json::array());
    std::size_t ready = 0;
    for (const json& w : ring) ready += w.value("state", std::string()) == "ready" ? 1 : 0;
    std::string codes;
    const json by_code = svc.value("codes", json::object());
    for (const auto& [code, n] : by_code.items()) {
      codes += (codes.empty() ? "   " : ", ") + code + ": " + n.dump();
    }
    lines.emplace_back();
    lines.push_back("service " + text_of(svc, "name") + "   " + std::to_string(ready) + " of " +
                    std::to_string(ring.size()) + " ready   queued " +
                    fixed_text(num_of(svc, "queued"), 0) + codes);
    std::vector<std::vector<std::string>> rows = {
        {"  WORKER", "STATE", "IN FLIGHT", "", "MEM", "MEM%", "HEARTBEAT", "DONE", "HOST:PID"}};
    for (const json& w : ring) {
      const double cap = num_of(w, "capacity");
      rows.push_back({"  " + text_of(w, "name"), text_of(w, "state"),
                      fixed_text(num_of(w, "in_flight"), 0) + "/" + fixed_text(cap, 0),
                      bar_text(cap > 0 ? num_of(w, "in_flight") / cap : 0, 8),
                      format_bytes(num_of(w, "rss_bytes")), fixed_text(num_of(w, "mem_percent"), 1),
                      duration_text(num_of(w, "last_seen_ms")) + " ago", text_of(w, "answered"),
                      text_of(w, "host") + ":" + text_of(w, "pid")});
    }
    std::string table = render_table(rows);
    for (std::size_t at = 0, end; (end = table.find('\n', at)) != std::string::npos; at = end + 1) {
      lines.push_back(table.substr(at, end - at));
    }
  }
  const json& events = state.value("events", json::array());
  if (!events.empty()) {
    lines.emplace_back();
    lines.emplace_back("latest re-dispatches, refusals, expiries");
    const std::size_t from = events.size() > 8 ? events.size() - 8 : 0;
    for (std::size_t i = events.size(); i-- > from;) {
      lines.push_back("  " + clock_text(static_cast<std::int64_t>(num_of(events[i], "t"))) + "  " +
                      text_of(events[i], "text"));
    }
  }
  std::string out;
  for (const std::string& line : lines) out += cut_to(line, width) + "\n";
  return out;
}

}  // namespace carico
