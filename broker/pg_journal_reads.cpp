// pg_journal's lookups (read connection) and the offline report's reader.
#include "broker/pg_journal.hpp"
#include "broker/pg_journal_sql.hpp"

namespace carico {

namespace {

std::string select_records(const char* where) {
  return std::string("SELECT ") + pg_sql::record_columns + " FROM carico_requests " + where;
}

std::vector<journal_record> select_pg_history(pg_connection& c, std::size_t last,
                                           std::optional<request_state> state) {
  pg_params p;
  p.add(static_cast<std::uint64_t>(last));
  if (state) p.add(request_state_name(*state));
  const char* where = state ? "WHERE state = $2 ORDER BY number DESC LIMIT $1"
                            : "ORDER BY number DESC LIMIT $1";
  return pg_sql::read_records(c.exec(select_records(where).c_str(), p));
}

}  // namespace

std::optional<journal_record> pg_journal::find(std::uint64_t number) {
  pg_params p;
  p.add(number);
  pg_rows r = reader_->exec(select_records("WHERE number = $1").c_str(), p);
  if (r.rows() == 0) return std::nullopt;
  return pg_sql::read_record(r, 0);
}

std::optional<journal_record> pg_journal::find(std::string_view client,
                                               std::string_view client_id) {
  pg_params p;
  p.add(client).add(client_id);
  pg_rows r = reader_->exec(
      select_records("WHERE client = $1 AND client_id = $2 ORDER BY number DESC LIMIT 1").c_str(),
      p);
  if (r.rows() == 0) return std::nullopt;
  return pg_sql::read_record(r, 0);
}

std::optional<std::string> pg_journal::owner_of(std::uint64_t number) {
  pg_params p;
  p.add(number);
  pg_rows r = reader_->exec("SELECT coalesce(owner, '') FROM carico_requests WHERE number = $1", p);
  if (r.rows() == 0) return std::nullopt;
  return r.text(0, 0);
}

std::vector<journal_record> pg_journal::done_with(std::string_view field, std::size_t last,
                                                  std::optional<std::string> owner) {
  pg_params p;
  p.add(static_cast<std::uint64_t>(last)).add(field);
  if (owner) p.add(std::string_view(*owner));
  // result is JSON text written by the broker; a row whose result does not
  // parse as a JSON object has no such field.
  std::string where =
      "WHERE state = 'done' AND result LIKE '{%' "
      "AND coalesce(result::jsonb ->> $2, '') != ''";
  if (owner) where += " AND coalesce(owner, '') = coalesce($3, '')";
  where += " ORDER BY number DESC LIMIT $1";
  return pg_sql::read_records(reader_->exec(select_records(where.c_str()).c_str(), p));
}

std::optional<cached_reply> pg_journal::find_reply(std::string_view client,
                                                   std::string_view client_id) {
  pg_params p;
  p.add(client).add(client_id);
  pg_rows r = reader_->exec(
      "SELECT number, service, reply_head, reply_body FROM carico_requests "
      "WHERE client = $1 AND client_id = $2 AND state IN ('done', 'failed', 'expired') "
      "AND reply_head IS NOT NULL ORDER BY number DESC LIMIT 1",
      p);
  if (r.rows() == 0) return std::nullopt;
  cached_reply out;
  out.number = static_cast<std::uint64_t>(r.integer(0, 0));
  out.service = r.text(0, 1);
  out.head = r.bytes(0, 2);
  out.body = r.bytes(0, 3);
  return out;
}

std::vector<journal_record> pg_journal::history(std::size_t last,
                                                std::optional<request_state> state) {
  return select_pg_history(*reader_, last, state);
}

void pg_journal::for_each_key(
    const std::function<void(std::string_view, std::string_view)>& visit) {
  pg_rows r = reader_->exec(
      "SELECT client, client_id FROM carico_requests WHERE client IS NOT NULL "
      "AND client_id IS NOT NULL AND state != 'refused'");
  for (int i = 0; i < r.rows(); ++i) visit(r.text(i, 0), r.text(i, 1));
}

std::vector<journal_record> pg_journal::read_history(const std::string& uri, std::size_t last,
                                                     std::optional<request_state> state) {
  try {
    pg_connection c(uri);
    if (c.exec("SELECT to_regclass('carico_requests') IS NULL").text(0, 0) == "t") {
      throw journal_error("no carico journal in this database");
    }
    return select_pg_history(c, last, state);
  } catch (const journal_error& e) {
    throw journal_error("journal " + redact_uri(uri) + ": " + e.what());
  }
}

}  // namespace carico
