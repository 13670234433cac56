// A prepared SQLite statement and the helpers sqlite_journal's files share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "broker/journal_record.hpp"

namespace carico {
namespace journal_sql {

// A prepared statement; throws journal_error on any failure. In a named
// namespace, not the anonymous one: sqlite_journal::writer_statements holds
// some, and
// GCC warns (-Wsubobject-linkage) when that is compiled in a unity build.
class sql_statement {
 public:
  sql_statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw journal_error(std::string("cannot prepare statement: ") + sqlite3_errmsg(db));
    }
  }
  ~sql_statement() { sqlite3_finalize(stmt_); }
  sql_statement(const sql_statement&) = delete;
  sql_statement& operator=(const sql_statement&) = delete;

  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind(int i, std::uint64_t v) { bind(i, static_cast<std::int64_t>(v)); }
  // Binds text that stays valid until the statement is reset; an empty string is NULL.
  void bind_text(int i, std::string_view v) {
    if (v.empty()) return bind_null(i);
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  // Binds bytes that stay valid until the statement is reset; empty is NULL.
  void bind_blob(int i, const void* data, std::size_t size) {
    if (size == 0) return bind_null(i);
    check(sqlite3_bind_blob64(stmt_, i, data, size, SQLITE_STATIC));
  }
  // Binds a time or count where 0 means unknown.
  void bind_nonzero(int i, std::int64_t v) {
    if (v == 0) return bind_null(i);
    bind(i, v);
  }
  void bind_null(int i) { check(sqlite3_bind_null(stmt_, i)); }

  // True for a row, false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw journal_error(sqlite3_errmsg(db_));
  }
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  bool is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string text(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    const int n = sqlite3_column_bytes(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw journal_error(std::string("cannot bind: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;                   // its connection
  sqlite3_stmt* stmt_{nullptr};   // the prepared statement
};

// The columns of a journal_record, in the order read_record() expects.
inline constexpr const char* record_columns =
    "number, client, client_id, service, bytes, state, worker, attempts, received_ms, "
    "dispatched_ms, completed_ms, code, result";

// Runs SQL without results; throws journal_error.
inline void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw journal_error(message);
  }
}

inline journal_record read_record(const sql_statement& s) {
  journal_record r;
  r.number = static_cast<std::uint64_t>(s.integer(0));
  r.client = s.text(1);
  r.client_id = s.text(2);
  r.service = s.text(3);
  r.bytes = static_cast<std::uint64_t>(s.integer(4));
  r.state = parse_request_state(s.text(5)).value_or(request_state::failed);
  r.worker = s.text(6);
  r.attempts = static_cast<std::uint64_t>(s.integer(7));
  r.received_ms = s.integer(8);
  r.dispatched_ms = s.integer(9);
  r.completed_ms = s.integer(10);
  r.code = static_cast<std::uint64_t>(s.integer(11));
  r.result = s.text(12);
  return r;
}

inline void close_db(sqlite3*& db) {
  if (db != nullptr) sqlite3_close_v2(db);
  db = nullptr;
}

}  // namespace journal_sql
}  // namespace carico
