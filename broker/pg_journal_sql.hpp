// What pg_journal's files share: the record's columns and how a row reads back.
#pragma once

#include "broker/journal_record.hpp"
#include "broker/pg_connection.hpp"

namespace carico::pg_sql {

// The columns of a journal_record, in the order read_record() expects.
inline constexpr const char* record_columns =
    "number, client, client_id, service, bytes, state, worker, attempts, received_ms, "
    "dispatched_ms, completed_ms, code, result";
inline constexpr int record_column_count = 13;

inline journal_record read_record(const pg_rows& r, int i) {
  journal_record out;
  out.number = static_cast<std::uint64_t>(r.integer(i, 0));
  out.client = r.text(i, 1);
  out.client_id = r.text(i, 2);
  out.service = r.text(i, 3);
  out.bytes = static_cast<std::uint64_t>(r.integer(i, 4));
  out.state = parse_request_state(r.text(i, 5)).value_or(request_state::failed);
  out.worker = r.text(i, 6);
  out.attempts = static_cast<std::uint64_t>(r.integer(i, 7));
  out.received_ms = r.integer(i, 8);
  out.dispatched_ms = r.integer(i, 9);
  out.completed_ms = r.integer(i, 10);
  out.code = static_cast<std::uint64_t>(r.integer(i, 11));
  out.result = r.text(i, 12);
  return out;
}

inline std::vector<journal_record> read_records(const pg_rows& r) {
  std::vector<journal_record> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_record(r, i));
  return out;
}

}  // namespace carico::pg_sql
