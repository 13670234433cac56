// The REPL's remote view of stored documents: `get N [FILE]` and `stored [N]`.
#include <ctime>
#include <limits>
#include <string>

#include "client/document_fetch.hpp"
#include "client/repl.hpp"
#include "shared/text_table.hpp"

namespace carico {
namespace {

// A request number typed by the user, or why it is not one.
std::optional<std::uint64_t> typed_number(const std::string& text, std::uint64_t max,
                                          std::string& why) {
  std::uint64_t n = 0;
  bool digits = !text.empty() && text.size() <= 19;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (digits) n = std::stoull(text);
  if (!digits || n == 0) {
    why = "N must be a positive integer, not '" + text + "'";
    return std::nullopt;
  }
  if (n > max) {
    why = "N must be at most " + std::to_string(max) + ", not " + text;
    return std::nullopt;
  }
  return n;
}

// A table cell from a record field: "-" when absent; control bytes shown as '?'.
std::string stored_cell(const nlohmann::json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "-";
  std::string s = it->is_string() ? it->get<std::string>() : it->dump();
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (s.size() > 60) {  // cut on a UTF-8 character boundary
    std::size_t cut = 57;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "...";
  }
  return s;
}

// "2026-12-07 03:50:12" (UTC) of a unix ms time.
std::string utc_time(const nlohmann::json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || !it->is_number_integer()) return "-";
  const std::time_t t = static_cast<std::time_t>(it->get<std::int64_t>() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

}  // namespace

void repl::note_request(const reply& r) {
  if (!r.ok()) return;
  auto it = r.head.find("request");
  if (it == r.head.end() || !it->is_number_unsigned()) return;
  recent_requests_.push_back(it->get<std::uint64_t>());
  if (recent_requests_.size() > 100) recent_requests_.pop_front();
}

void repl::cmd_get(const arguments& args) {
  std::string why;
  std::optional<std::uint64_t> n;
  if (args.empty() || args.size() > 2) {
    why = "usage: get N [FILE], N the request number that stored it (the request= of a reply)";
  } else {
    n = typed_number(args[0], std::numeric_limits<std::int64_t>::max(), why);
  }
  if (!n) {
    error(why);
    return;
  }
  const std::string out = args.size() == 2 ? args[1] : std::string();
  ask("text", fetch_header(*n), "", [this, n, out](const reply& r) {
    fetched f = read_fetch_reply(reply(r));
    const std::string label = "get " + std::to_string(*n);
    if (!f.ok()) {
      error(label + ": " + f.reason);
      return;
    }
    if (out.empty()) {
      say(f.bytes);
      return;
    }
    if (auto failed = write_whole_file(out, f.bytes)) {
      error(label + ": " + *failed);
      return;
    }
    say(label + ": " + std::to_string(f.bytes.size()) + " bytes from " + f.worker + " (" +
        f.stored_as + ") written to " + out);
  });
}

void repl::cmd_stored(const arguments& args) {
  std::string why;
  std::optional<std::uint64_t> n = 20;
  if (args.size() > 1) {
    why = "usage: stored [N], N a positive integer up to 1000";
    n.reset();
  } else if (args.size() == 1) {
    n = typed_number(args[0], 1000, why);
  }
  if (!n) {
    error(why);
    return;
  }
  ask("mmi.stored", {{"last", *n}}, "", [this](const reply& r) {
    if (r.code == 501) {
      error("this broker does not list stored documents (mmi.stored)");
      return;
    }
    if (!r.ok()) {
      error("mmi.stored: " + std::to_string(r.code) + " " + r.error());
      return;
    }
    const nlohmann::json rows = r.head.value("result", nlohmann::json::object())
                                    .value("documents", nlohmann::json::array());
    if (rows.empty()) {
      say("no stored documents");
      return;
    }
    std::vector<std::vector<std::string>> table{
        {"REQUEST", "TITLE", "WORKER", "BYTES", "WHEN (UTC)"}};
    for (const nlohmann::json& row : rows) {
      table.push_back({stored_cell(row, "request"), stored_cell(row, "title"),
                       stored_cell(row, "worker"), stored_cell(row, "bytes"),
                       utc_time(row, "completed_ms")});
    }
    std::string text = render_table(table);
    text.pop_back();  // say() ends the line
    say(text);
  });
}

}  // namespace carico
