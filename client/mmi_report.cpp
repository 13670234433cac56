#include "client/mmi_report.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "shared/text_table.hpp"

namespace carico {
namespace {

// Text from the broker (worker names, hosts) as a terminal may show it: each
// control character becomes '?', so an escape sequence in a name cannot reach
// the terminal and a cell stays one word for scripts.
std::string safe(std::string text) { return without_controls(std::move(text), '?'); }

std::string cell(const nlohmann::json& row, const char* key) {
  if (!row.is_object()) return "-";
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "-";
  if (it->is_string()) return safe(it->get<std::string>());
  if (it->is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", it->get<double>());
    return buf;
  }
  return it->dump();
}

void flatten(const std::string& prefix, const nlohmann::json& value,
             std::vector<std::vector<std::string>>& rows) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      flatten(prefix.empty() ? key : prefix + "." + key, child, rows);
    }
    return;
  }
  rows.push_back({safe(prefix), value.is_string() ? safe(value.get<std::string>()) : value.dump()});
}

}  // namespace

std::string format_workers(const nlohmann::json& result) {
  static const char* columns[] = {"name",     "service", "state",     "in_flight",   "capacity",
                                  "host",     "pid",     "mem_percent", "last_seen_ms"};
  static const char* titles[] = {"NAME", "SERVICE", "STATE", "IN_FLIGHT", "CAPACITY",
                                 "HOST", "PID",     "MEM%",  "LAST_SEEN_MS"};
  std::vector<std::vector<std::string>> rows;
  rows.emplace_back(std::begin(titles), std::end(titles));
  const nlohmann::json* workers = nullptr;
  if (result.is_object()) {
    auto it = result.find("workers");
    if (it != result.end() && it->is_array()) workers = &*it;
  }
  if (workers == nullptr || workers->empty()) return "no workers\n";
  for (const nlohmann::json& w : *workers) {
    std::vector<std::string> row;
    for (const char* c : columns) row.push_back(cell(w, c));
    rows.push_back(std::move(row));
  }
  return render_table(rows);
}

std::string format_stats(const nlohmann::json& result) {
  std::vector<std::vector<std::string>> rows;
  flatten("", result, rows);
  return render_table(rows);
}

}  // namespace carico
