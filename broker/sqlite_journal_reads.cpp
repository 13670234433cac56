// sqlite_journal's lookups (read connection) and the offline report's reader.
#include <filesystem>

#include "broker/sqlite_journal.hpp"
#include "broker/sqlite_statement.hpp"

namespace carico {
using namespace journal_sql;

std::optional<journal_record> sqlite_journal::find(std::uint64_t number) {
  sql_statement s(reader_,
                  (std::string("SELECT ") + record_columns + " FROM requests WHERE number = ?1")
                      .c_str());
  s.bind(1, number);
  if (!s.step()) return std::nullopt;
  return read_record(s);
}

std::optional<std::string> sqlite_journal::owner_of(std::uint64_t number) {
  sql_statement s(reader_, "SELECT coalesce(owner, '') FROM requests WHERE number = ?1");
  s.bind(1, number);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

std::vector<journal_record> sqlite_journal::done_with(std::string_view field, std::size_t last,
                                                     std::optional<std::string> owner) {
  std::string sql = std::string("SELECT ") + record_columns +
                    " FROM requests WHERE state = 'done' AND result IS NOT NULL"
                    " AND json_valid(result) AND coalesce(json_extract(result, ?3), '') != ''";
  if (owner) sql += " AND coalesce(owner, '') = ?2";
  sql += " ORDER BY number DESC LIMIT ?1";
  sql_statement s(reader_, sql.c_str());
  s.bind(1, static_cast<std::uint64_t>(last));
  if (owner) s.bind_text(2, *owner);
  // A JSON path naming the one key, quoted: the key's own characters stay literal.
  std::string key_path = "$.\"";
  for (char c : field) {
    if (c == '"' || c == '\\') key_path += '\\';
    key_path += c;
  }
  key_path += '"';
  s.bind_text(3, key_path);
  std::vector<journal_record> out;
  while (s.step()) out.push_back(read_record(s));
  return out;
}

std::optional<journal_record> sqlite_journal::find(std::string_view client, std::string_view client_id) {
  sql_statement s(reader_, (std::string("SELECT ") + record_columns +
                            " FROM requests WHERE client = ?1 AND client_id = ?2 "
                            "ORDER BY number DESC LIMIT 1")
                               .c_str());
  s.bind_text(1, client);
  s.bind_text(2, client_id);
  if (!s.step()) return std::nullopt;
  return read_record(s);
}

std::optional<cached_reply> sqlite_journal::find_reply(std::string_view client,
                                                std::string_view client_id) {
  sql_statement s(reader_,
                  "SELECT number, service, reply_head, reply_body FROM requests "
                  "WHERE client = ?1 AND client_id = ?2 AND state IN ('done', 'failed', 'expired') "
                  "AND reply_head IS NOT NULL ORDER BY number DESC LIMIT 1");
  s.bind_text(1, client);
  s.bind_text(2, client_id);
  if (!s.step()) return std::nullopt;
  cached_reply r;
  r.number = static_cast<std::uint64_t>(s.integer(0));
  r.service = s.text(1);
  r.head = s.text(2);
  r.body = s.text(3);
  return r;
}

namespace {

std::vector<journal_record> select_history(sqlite3* db, std::size_t last,
                                           std::optional<request_state> state) {
  std::string sql = std::string("SELECT ") + record_columns + " FROM requests";
  if (state) sql += " WHERE state = ?2";
  sql += " ORDER BY number DESC LIMIT ?1";
  sql_statement s(db, sql.c_str());
  s.bind(1, static_cast<std::uint64_t>(last));
  if (state) s.bind_text(2, request_state_name(*state));
  std::vector<journal_record> out;
  while (s.step()) out.push_back(read_record(s));
  return out;
}

}  // namespace

std::vector<journal_record> sqlite_journal::history(std::size_t last,
                                             std::optional<request_state> state) {
  return select_history(reader_, last, state);
}

void sqlite_journal::for_each_key(const std::function<void(std::string_view, std::string_view)>& visit) {
  sql_statement s(reader_,
                  "SELECT client, client_id FROM requests WHERE client IS NOT NULL "
                  "AND client_id IS NOT NULL AND state != 'refused'");
  while (s.step()) visit(s.text(0), s.text(1));
}

std::vector<journal_record> sqlite_journal::read_history(const std::string& path, std::size_t last,
                                                  std::optional<request_state> state) {
  if (!std::filesystem::exists(path)) throw journal_error("journal " + path + ": no such file");
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    close_db(db);
    throw journal_error("journal " + path + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(db, 2000);
  // The whole file is checked first (PRAGMA quick_check, a few seconds for a
  // GiB): a report from a damaged journal would mislead.
  std::string verdict;
  try {
    sql_statement check(db, "PRAGMA quick_check");
    verdict = check.step() ? check.text(0) : "no answer";
  } catch (const journal_error& e) {
    const int code = sqlite3_errcode(db);
    close_db(db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      throw journal_error("journal " + path +
                          ": not a usable SQLite database (corrupt?): " + e.what());
    }
    throw journal_error("journal " + path + ": cannot check it: " + e.what());
  }
  if (verdict != "ok") {
    close_db(db);
    throw journal_error("journal " + path +
                        ": failed its integrity check (PRAGMA quick_check: " + verdict + ")");
  }
  try {
    std::vector<journal_record> out = select_history(db, last, state);
    close_db(db);
    return out;
  } catch (const journal_error& e) {
    close_db(db);
    throw journal_error("journal " + path + ": cannot read it (not a carico journal?): " +
                        e.what());
  }
}

}  // namespace carico
