#include "broker/journal_report.hpp"

#include <ctime>

#include "shared/text_table.hpp"

namespace carico {
namespace {

// "2026-11-27 10:47:03.512" in UTC; "-" for 0.
std::string format_time(std::int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string format_journal_table(const std::vector<journal_record>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"REQUEST", "STATE", "CODE", "SERVICE", "WORKER", "ATTEMPTS", "RECEIVED (UTC)",
                   "MS", "BYTES", "CLIENT", "ID", "RESULT"});
  for (const journal_record& r : rows) {
    const std::string ms = r.completed_ms != 0 && r.received_ms != 0
                               ? std::to_string(r.completed_ms - r.received_ms)
                               : "-";
    cells.push_back({std::to_string(r.number), std::string(request_state_name(r.state)),
                     r.code != 0 ? std::to_string(r.code) : "-", r.service, or_dash(r.worker),
                     std::to_string(r.attempts), format_time(r.received_ms), ms,
                     std::to_string(r.bytes), or_dash(r.client), or_dash(r.client_id),
                     or_dash(r.result)});
  }
  return render_table(cells);
}

int print_journal(const std::string& path, std::size_t last, const std::string& state, bool json,
                  std::ostream& out, std::ostream& err) {
  std::optional<request_state> only;
  if (!state.empty()) {
    only = parse_request_state(state);
    if (!only) {
      err << "carico-broker journal: unknown state " << state
          << " (queued, dispatched, done, failed, expired, refused)\n";
      return 2;
    }
  }
  std::vector<journal_record> rows;
  try {
    rows = read_journal_history(path, last, only);
  } catch (const journal_error& e) {
    err << "carico-broker journal: " << e.what() << "\n";
    return 1;
  }
  if (json) {
    for (const journal_record& r : rows) {
      out << r.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  } else {
    out << format_journal_table(rows);
  }
  return 0;
}

}  // namespace carico
