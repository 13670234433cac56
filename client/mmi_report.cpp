#include "client/mmi_report.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "client/progress.hpp"
#include "shared/text_table.hpp"

namespace carico {
namespace {

void flatten(const std::string& prefix, const nlohmann::json& value,
             std::vector<std::vector<std::string>>& rows) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      flatten(prefix.empty() ? key : prefix + "." + key, child, rows);
    }
    return;
  }
  rows.push_back({display_text(prefix, 200),
                  value.is_string() ? display_text(value.get<std::string>(), 200) : value.dump()});
}

// "340 us", "12.5 ms", "3.20 s", "17 min", "5.2 h".
std::string duration_ms(double ms) {
  char buf[32];
  if (ms >= 2 * 3600e3) {
    std::snprintf(buf, sizeof buf, "%.1f h", ms / 3600e3);
  } else if (ms >= 120e3) {
    std::snprintf(buf, sizeof buf, "%.0f min", ms / 60e3);
  } else {
    return format_duration(std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000.0)));
  }
  return buf;
}

// "2026-12-07 03:50:12" (UTC) of a unix ms time field; "-" when it is not one.
std::string utc_time(const nlohmann::json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || !it->is_number_integer()) return "-";
  const std::time_t t = static_cast<std::time_t>(it->get<std::int64_t>() / 1000);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "-";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

// The rows of result[key] when it is an array of objects; else none.
std::vector<const nlohmann::json*> listed(const nlohmann::json& result, const char* key) {
  std::vector<const nlohmann::json*> rows;
  if (!result.is_object()) return rows;
  auto it = result.find(key);
  if (it == result.end() || !it->is_array()) return rows;
  for (const nlohmann::json& row : *it) {
    if (row.is_object()) rows.push_back(&row);
  }
  return rows;
}

}  // namespace

std::string json_cell(const nlohmann::json& row, const char* key, std::size_t max) {
  if (!row.is_object()) return "-";
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "-";
  if (it->is_string()) return display_text(it->get<std::string>(), max);
  if (it->is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", it->get<double>());
    return buf;
  }
  return it->dump();
}

std::optional<double> json_number(const nlohmann::json& row, const char* key) {
  if (!row.is_object()) return std::nullopt;
  auto it = row.find(key);
  if (it == row.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string display_text(std::string text, std::size_t max) {
  text = without_controls(std::move(text), '?');
  std::size_t points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && ++points > max) {
      text.resize(i);
      text += "...";
      break;
    }
  }
  return text;
}

std::string format_broker_line(const std::string& on, const std::string& configured) {
  return "broker " + display_text(on.empty() ? configured : on, 200) + "\n";
}

std::string format_history(const nlohmann::json& result) {
  const std::vector<const nlohmann::json*> rows = listed(result, "requests");
  if (rows.empty()) return "no requests yet\n";
  std::vector<std::vector<std::string>> table{
      {"REQUEST", "STATE", "CODE", "WORKER", "ATTEMPTS", "BYTES", "TITLE"}};
  for (const nlohmann::json* row : rows) {
    table.push_back({json_cell(*row, "request"), json_cell(*row, "state"), json_cell(*row, "code"),
                     json_cell(*row, "worker", 60), json_cell(*row, "attempts"),
                     json_cell(*row, "bytes"), json_cell(*row, "title", 60)});
  }
  return render_table(table);
}

std::string format_stored(const nlohmann::json& result) {
  const std::vector<const nlohmann::json*> rows = listed(result, "documents");
  if (rows.empty()) return "no stored documents\n";
  std::vector<std::vector<std::string>> table{
      {"REQUEST", "TITLE", "WORKER", "BYTES", "WHEN (UTC)"}};
  for (const nlohmann::json* row : rows) {
    table.push_back({json_cell(*row, "request"), json_cell(*row, "title", 60),
                     json_cell(*row, "worker", 60), json_cell(*row, "bytes"),
                     utc_time(*row, "completed_ms")});
  }
  return render_table(table);
}

std::string format_bytes(double bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buf;
}

std::string format_epoch_ms(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (localtime_r(&seconds, &tm) == nullptr) return std::to_string(ms);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string format_workers(const nlohmann::json& result) {
  const nlohmann::json* workers = nullptr;
  if (result.is_object()) {
    auto it = result.find("workers");
    if (it != result.end() && it->is_array()) workers = &*it;
  }
  if (workers == nullptr || workers->empty()) return "no workers\n";
  std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "IN FLIGHT", "MEMORY",
                                              "LAST HEARTBEAT", "SERVICE", "PROTOCOL", "HOST",
                                              "PID"}};
  for (const nlohmann::json& w : *workers) {
    if (!w.is_object()) continue;
    std::string memory = "-";
    if (auto rss = json_number(w, "rss_bytes"); rss && *rss > 0) {
      memory = format_bytes(*rss);
      if (auto percent = json_number(w, "mem_percent")) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " (%.1f%%)", *percent);
        memory += buf;
      }
    }
    std::string seen = "-";
    if (auto ms = json_number(w, "last_seen_ms"))
      seen = std::to_string(static_cast<long long>(*ms)) + " ms ago";
    // Why a worker is not ready, when it says (its load report's reason).
    std::string state = json_cell(w, "state");
    if (auto it = w.find("reason");
        it != w.end() && it->is_string() && !it->get<std::string>().empty()) {
      state += " (" + it->get<std::string>() + ")";
    }
    // Its dialect and the heartbeat interval it is held to: "carico 500ms", "mdp 2500ms".
    std::string protocol = json_cell(w, "dialect");
    if (auto ms = json_number(w, "heartbeat_ms"))
      protocol += " " + std::to_string(static_cast<long long>(*ms)) + "ms";
    rows.push_back({json_cell(w, "name"), state,
                    json_cell(w, "in_flight") + " / " + json_cell(w, "capacity"), memory, seen,
                    json_cell(w, "service"), protocol, json_cell(w, "host"), json_cell(w, "pid")});
  }
  return render_table(rows);
}

std::string format_stats(const nlohmann::json& result) {
  std::vector<std::vector<std::string>> rows;
  flatten("", result, rows);
  return render_table(rows);
}

std::string format_request(const nlohmann::json& result) {
  if (!result.is_object()) return format_stats(result);
  nlohmann::json shown = nlohmann::json::object();
  const std::optional<double> received = json_number(result, "received_ms");
  for (const auto& [key, value] : result.items()) {
    const bool is_time = key == "received_ms" || key == "dispatched_ms" || key == "completed_ms";
    if (is_time && value.is_number()) {
      const auto ms = value.get<std::int64_t>();
      std::string text = format_epoch_ms(ms);
      if (key != "received_ms" && received)
        text += " (+" + duration_ms(static_cast<double>(ms) - *received) + ")";
      shown[key.substr(0, key.size() - 3)] = text;
    } else if (key == "age_ms" && value.is_number()) {
      shown["age"] = duration_ms(value.get<double>());
    } else {
      shown[key] = value;
    }
  }
  return format_stats(shown);
}

}  // namespace carico
