#include "broker/pg_connection.hpp"

#include <cstdlib>

#include <libpq-fe.h>

namespace carico {

// ------------------------------------------------------------------ parameters

pg_params& pg_params::add(std::int64_t v) {
  const std::string& s = storage_.emplace_back(std::to_string(v));
  values_.push_back(s.c_str());
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

pg_params& pg_params::add_nonzero(std::int64_t v) { return v == 0 ? add_null() : add(v); }

pg_params& pg_params::add(std::string_view text) {
  if (text.empty()) return add_null();
  // Text parameters must end in NUL: kept in storage_.
  const std::string& s = storage_.emplace_back(text);
  values_.push_back(s.c_str());
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

pg_params& pg_params::add_bytes(std::string_view bytes) {
  if (bytes.empty()) return add_null();
  values_.push_back(bytes.data());
  lengths_.push_back(static_cast<int>(bytes.size()));
  formats_.push_back(1);
  return *this;
}

pg_params& pg_params::add_null() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

// ------------------------------------------------------------------ results

pg_rows::~pg_rows() {
  if (r_ != nullptr) PQclear(r_);
}

int pg_rows::rows() const { return PQntuples(r_); }

bool pg_rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }

std::string pg_rows::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
}

std::int64_t pg_rows::integer(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}

std::string pg_rows::bytes(int row, int col) const {
  if (is_null(row, col)) return {};
  std::size_t n = 0;
  unsigned char* raw =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
  if (raw == nullptr) throw journal_error("cannot decode a bytea value");
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

std::uint64_t pg_rows::affected() const {
  const char* n = PQcmdTuples(r_);
  return n != nullptr && *n != '\0' ? std::strtoull(n, nullptr, 10) : 0;
}

// ------------------------------------------------------------------ connection

pg_connection::pg_connection(const std::string& uri) {
  // Defaults first, the URI last: whatever the URI sets wins. Keepalives and
  // a TCP user timeout let a dead server or network show as an error within
  // seconds instead of a statement that waits for ever.
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                        "application_name", "dbname", nullptr};
  const char* values[] = {"5", "1", "5", "2", "2", "5000", "carico-broker", uri.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (conn_ == nullptr) throw journal_error("cannot connect: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn_);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    PQfinish(conn_);
    conn_ = nullptr;
    throw journal_error("cannot connect: " + why);
  }
  // The server's notices ("relation already exists, skipping") are no news:
  // libpq would print them to stderr.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
}

pg_connection::~pg_connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

namespace {

// Whether a failed statement's SQLSTATE says the session is over: a
// connection exception (class 08), or the server shutting down or starting
// (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now).
// libpq still reports CONNECTION_OK until it reads the server's EOF.
bool ends_session(const PGresult* r) {
  if (r == nullptr) return true;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (state == nullptr) return false;
  const std::string_view s(state);
  return s.substr(0, 2) == "08" || s == "57P01" || s == "57P02" || s == "57P03";
}

}  // namespace

pg_rows pg_connection::checked(PGresult* r) {
  pg_rows rows(r);
  const ExecStatusType status = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return rows;
  if (ends_session(r)) lost_ = true;
  std::string why = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  if (why.empty()) why = PQerrorMessage(conn_);
  throw journal_error(why);
}

pg_rows pg_connection::exec(const char* sql) { return checked(PQexec(conn_, sql)); }

pg_rows pg_connection::exec(const char* sql, const pg_params& p) {
  return checked(
      PQexecParams(conn_, sql, p.size(), nullptr, p.values(), p.lengths(), p.formats(), 0));
}

bool pg_connection::ok() const { return !lost_ && PQstatus(conn_) == CONNECTION_OK; }

bool pg_connection::reset() {
  PQreset(conn_);
  lost_ = false;
  return ok();
}

int pg_connection::backend_pid() const { return PQbackendPID(conn_); }

std::string redact_uri(std::string_view uri) {
  const std::size_t scheme = uri.find("://");
  if (scheme == std::string_view::npos) return std::string(uri);
  const std::size_t start = scheme + 3;
  const std::size_t at = uri.find('@', start);
  const std::size_t slash = uri.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(uri);
  }
  const std::size_t colon = uri.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(uri);
  return std::string(uri.substr(0, colon + 1)) + "***" + std::string(uri.substr(at));
}

}  // namespace carico
