// One libpq connection, with what pg_journal needs of it: statements with
// parameters (text, or binary for bytea), their results as strings, and
// whether the connection still stands. Throws journal_error on any failure.
//
// libpq rather than libpqxx: the journal needs a handful of calls (connect
// with defaults the URI may override, parameters, PQstatus to tell a lost
// connection from a failed statement), and libpq's C API says exactly which
// call can fail how; libpqxx would add a second library and its exception
// hierarchy over the same calls.
//
//   pg_connection c("postgresql://carico@db/carico");
//   pg_params p;
//   p.add(7).add("text").add_bytes(blob);
//   pg_result r = c.exec("SELECT ... WHERE a = $1 ...", p);
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/journal_record.hpp"

struct pg_conn;
struct pg_result;

namespace carico {

// Parameters for one statement, $1 first. Empty strings and zero from
// add_nonzero() are NULL, as the SQLite backend binds them.
class pg_params {
 public:
  pg_params& add(std::int64_t v);
  pg_params& add(std::uint64_t v) { return add(static_cast<std::int64_t>(v)); }
  pg_params& add_nonzero(std::int64_t v);
  pg_params& add(std::string_view text);
  pg_params& add_bytes(std::string_view bytes);  // bytea, sent binary
  pg_params& add_null();

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::deque<std::string> storage_;   // numbers as text (stable addresses)
  std::vector<const char*> values_;   // per parameter; null for NULL
  std::vector<int> lengths_;          // per parameter
  std::vector<int> formats_;          // 0 text, 1 binary
};

// A statement's result (text format), owned.
class pg_rows {
 public:
  explicit pg_rows(::pg_result* r) : r_(r) {}
  ~pg_rows();
  pg_rows(pg_rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  pg_rows& operator=(pg_rows&&) = delete;
  pg_rows(const pg_rows&) = delete;

  int rows() const;
  bool is_null(int row, int col) const;
  std::string text(int row, int col) const;  // "" for NULL
  std::int64_t integer(int row, int col) const;  // 0 for NULL or not a number
  std::string bytes(int row, int col) const;  // a bytea column, unescaped
  std::uint64_t affected() const;             // rows a DELETE/UPDATE touched

 private:
  ::pg_result* r_;  // null after a move
};

class pg_connection {
 public:
  // Connects to a libpq URI; throws journal_error with libpq's reason.
  explicit pg_connection(const std::string& uri);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  // Runs sql (with params); throws journal_error with the server's message.
  pg_rows exec(const char* sql);
  pg_rows exec(const char* sql, const pg_params& params);
  // Whether the connection still stands (after a failure: lost, or just a
  // failed statement). A statement that failed with a connection exception or
  // a server shutdown (SQLSTATE 08xxx, 57P01-57P03) counts as lost at once.
  bool ok() const;
  // Tries to connect again (a standby whose server restarted); true when up.
  bool reset();
  // The server process serving this connection (pg_backend_pid()).
  int backend_pid() const;

 private:
  // Throws journal_error for a failed result, noting a session's end in lost_.
  pg_rows checked(::pg_result* r);

  pg_conn* conn_{nullptr};  // the libpq connection
  bool lost_{false};        // a statement said the session is over
};

// uri with its password, if any, replaced by "***", for logs and mmi.stats.
std::string redact_uri(std::string_view uri);

}  // namespace carico
