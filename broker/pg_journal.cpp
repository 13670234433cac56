#include "broker/pg_journal.hpp"

#include <algorithm>
#include <thread>

#include "broker/pg_journal_sql.hpp"

namespace carico {

namespace {

constexpr const char* pg_schema = R"sql(
CREATE TABLE IF NOT EXISTS carico_meta (
  key   text PRIMARY KEY,
  value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS carico_requests (
  number        bigint PRIMARY KEY,
  client        text,
  client_id     text,
  service       text NOT NULL,
  bytes         bigint NOT NULL DEFAULT 0,
  state         text NOT NULL,
  worker        text,
  attempts      bigint NOT NULL DEFAULT 0,
  received_ms   bigint,
  dispatched_ms bigint,
  completed_ms  bigint,
  code          bigint,
  result        text,
  owner         text,
  reply_head    bytea,
  reply_body    bytea,
  request_head  bytea,
  payload       bytea
);
CREATE INDEX IF NOT EXISTS carico_requests_keyed ON carico_requests (client, client_id)
  WHERE client IS NOT NULL;
CREATE INDEX IF NOT EXISTS carico_requests_unfinished ON carico_requests (number)
  WHERE state IN ('queued', 'dispatched');
INSERT INTO carico_meta (key, value) VALUES ('term', 0) ON CONFLICT (key) DO NOTHING;
)sql";

constexpr const char* insert_sql =
    "INSERT INTO carico_requests (number, client, client_id, service, bytes, state, worker, "
    "attempts, received_ms, dispatched_ms, completed_ms, code, result, reply_head, reply_body, "
    "request_head, payload, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
    "$13, $14, $15, $16, $17, $18) ON CONFLICT (number) DO UPDATE SET client = EXCLUDED.client, "
    "client_id = EXCLUDED.client_id, service = EXCLUDED.service, bytes = EXCLUDED.bytes, "
    "state = EXCLUDED.state, worker = EXCLUDED.worker, attempts = EXCLUDED.attempts, "
    "received_ms = EXCLUDED.received_ms, dispatched_ms = EXCLUDED.dispatched_ms, "
    "completed_ms = EXCLUDED.completed_ms, code = EXCLUDED.code, result = EXCLUDED.result, "
    "reply_head = EXCLUDED.reply_head, reply_body = EXCLUDED.reply_body, "
    "request_head = EXCLUDED.request_head, payload = EXCLUDED.payload, owner = EXCLUDED.owner";

constexpr const char* finish_sql =
    "UPDATE carico_requests SET state = $2, worker = $3, attempts = $4, "
    "dispatched_ms = coalesce($5, dispatched_ms), completed_ms = $6, code = $7, result = $8, "
    "reply_head = $9, reply_body = $10, request_head = NULL, payload = NULL WHERE number = $1";

constexpr const char* dispatch_sql =
    "UPDATE carico_requests SET state = 'dispatched', worker = $2, attempts = $3, "
    "dispatched_ms = $4 WHERE number = $1";

// meta key := greatest(its value, $1)
constexpr const char* raise_meta_sql =
    "INSERT INTO carico_meta (key, value) VALUES ($1, $2) "
    "ON CONFLICT (key) DO UPDATE SET value = greatest(carico_meta.value, EXCLUDED.value)";

// Deletes the oldest finished rows (at most `limit`) that also match `also`.
std::string delete_oldest_finished(const char* also, const char* limit) {
  return std::string(
             "DELETE FROM carico_requests WHERE number IN (SELECT number FROM carico_requests "
             "WHERE state IN ('done', 'failed', 'expired', 'refused') ") +
         also + " ORDER BY number LIMIT " + limit + ")";
}

void raise_meta(pg_connection& c, const char* key, std::uint64_t value) {
  pg_params p;
  p.add(std::string_view(key)).add(value);
  c.exec(raise_meta_sql, p);
}

}  // namespace

// ------------------------------------------------------------------ opening

pg_journal::pg_journal(journal_options options, std::shared_ptr<spdlog::logger> logger)
    : journal(options, std::move(logger), redact_uri(options.path)) {
  try {
    writer_ = std::make_unique<pg_connection>(options_.path);
    // Durability is not weakened whatever the server's default: a commit
    // returns once its WAL is flushed.
    writer_->exec("SET synchronous_commit = on");
    create_schema();
    wait_for_leadership();
    take_term();
    load_unfinished();
    reader_ = std::make_unique<pg_connection>(options_.path);
    measure_size();
  } catch (const journal_error& e) {
    reader_.reset();
    writer_.reset();  // closing the connection frees the lock
    throw journal_error("journal " + path() + ": " + e.what());
  }
  start_writer();
}

pg_journal::~pg_journal() {
  stop_writer();
  // As sqlite_journal: meta.max_number covers every number posted, and the
  // reservation goes, so numbers stay dense across a clean handover. Not
  // when fenced: another broker owns the journal now.
  if (writer_ && !fenced()) {
    try {
      under_term([&] {
        raise_meta(*writer_, "max_number", max_posted_);
        writer_->exec("DELETE FROM carico_meta WHERE key = 'reserved_number'");
      });
    } catch (const journal_error& e) {
      log_->warn("journal {}: numbers stay reserved up to {} ({})", path(), reserved(), e.what());
    }
  }
  reader_.reset();
  writer_.reset();  // frees the lock: a standby takes over within its retry
}

void pg_journal::create_schema() {
  pg_connection& c = *writer_;
  try {
    c.exec("BEGIN");
    // Two brokers starting together would race on CREATE TABLE IF NOT EXISTS.
    c.exec(("SELECT pg_advisory_xact_lock(" + std::to_string(schema_lock) + ")").c_str());
    pg_rows existing = c.exec(
        "SELECT CASE WHEN to_regclass('carico_meta') IS NULL THEN 0 ELSE 1 END");
    if (existing.integer(0, 0) == 1) {
      pg_rows v = c.exec("SELECT value FROM carico_meta WHERE key = 'schema_version'");
      const std::int64_t version = v.rows() == 1 ? v.integer(0, 0) : 0;
      if (version > schema_version) {
        throw journal_error("written by a newer carico (schema version " + v.text(0, 0) +
                            ", this one knows " + std::to_string(schema_version) + ")");
      }
      if (version == schema_version) {
        // Nothing to do; no DDL either: CREATE INDEX, even IF NOT EXISTS,
        // locks the table against the active broker's writes.
        c.exec("COMMIT");
        return;
      }
    }
    c.exec(pg_schema);
    pg_params p;
    p.add(std::string_view("schema_version")).add(schema_version);
    c.exec("INSERT INTO carico_meta (key, value) VALUES ($1, $2) "
           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
           p);
    c.exec("COMMIT");
  } catch (const journal_error& e) {
    if (c.ok()) c.exec("ROLLBACK");
    throw journal_error(std::string("cannot create its schema: ") + e.what());
  }
}

void pg_journal::wait_for_leadership() {
  using clock = std::chrono::steady_clock;
  const std::string sql = "SELECT pg_try_advisory_lock(" + std::to_string(leader_lock) + ")";
  bool said = false;
  for (;;) {
    if (options_.keep_waiting && !options_.keep_waiting()) {
      throw journal_error("stopped while standby");
    }
    try {
      if (!writer_->ok()) {
        if (!writer_->reset()) throw journal_error("connection lost");
        writer_->exec("SET synchronous_commit = on");  // a new session: set again
      }
      if (writer_->exec(sql.c_str()).text(0, 0) == "t") break;
    } catch (const journal_error& e) {
      log_->warn("journal {}: standby: cannot try for leadership ({}); trying again", path(),
                 e.what());
    }
    if (!said) {
      log_->info("journal {}: standby: another broker is active; trying for leadership every "
                 "{} ms",
                 path(), options_.standby_retry.count());
      said = true;
    }
    // Short steps, so that keep_waiting (a stop signal) is seen at once.
    const auto until = clock::now() + options_.standby_retry;
    while (clock::now() < until) {
      if (options_.keep_waiting && !options_.keep_waiting()) {
        throw journal_error("stopped while standby");
      }
      std::this_thread::sleep_for(std::min<clock::duration>(std::chrono::milliseconds(20),
                                                             until - clock::now()));
    }
  }
}

void pg_journal::take_term() {
  pg_connection& c = *writer_;
  try {
    c.exec("BEGIN");
    term_ = c.exec("UPDATE carico_meta SET value = value + 1 WHERE key = 'term' RETURNING value")
                .integer(0, 0);
    // A reservation left behind means the last active did not close cleanly:
    // numbers up to it may have reached a worker without a row.
    const auto max_number = static_cast<std::uint64_t>(
        c.exec("SELECT greatest((SELECT coalesce(max(number), 0) FROM carico_requests), "
               "(SELECT coalesce(max(value), 0) FROM carico_meta WHERE key IN "
               "('max_number', 'reserved_number')))")
            .integer(0, 0));
    const std::uint64_t reserving = max_number + reserve_block;
    raise_meta(c, "max_number", max_number);
    raise_meta(c, "reserved_number", reserving);
    c.exec("COMMIT");
    set_numbers(max_number, reserving);
  } catch (const journal_error& e) {
    if (c.ok()) c.exec("ROLLBACK");
    throw journal_error(std::string("cannot take a term: ") + e.what());
  }
  log_->info("journal {}: active, term {} (leadership lock held by server process {})", path(),
             term_, c.backend_pid());
}

void pg_journal::load_unfinished() {
  pg_rows rows = writer_->exec(
      (std::string("SELECT ") + pg_sql::record_columns +
       ", request_head, payload FROM carico_requests WHERE state IN ('queued', 'dispatched') "
       "ORDER BY number")
          .c_str());
  for (int i = 0; i < rows.rows(); ++i) {
    journal_unfinished u;
    u.record = pg_sql::read_record(rows, i);
    u.head = rows.bytes(i, pg_sql::record_column_count);
    u.payload = rows.bytes(i, pg_sql::record_column_count + 1);
    add_unfinished(std::move(u));
  }
  if (rows.rows() > 0) {
    log_->warn("journal {}: {} unfinished requests will be dispatched again", path(),
               rows.rows());
  }
}

nlohmann::json pg_journal::describe() const {
  return {{"backend", "postgresql"}, {"term", term_}, {"active", !fenced()}};
}

// ------------------------------------------------------------------ writing

template <class Body>
void pg_journal::under_term(Body&& body) {
  pg_connection& c = *writer_;
  bool committing = false;
  try {
    c.exec("BEGIN");
    pg_rows t = c.exec("SELECT value FROM carico_meta WHERE key = 'term' FOR SHARE");
    const std::int64_t current = t.rows() == 1 ? t.integer(0, 0) : -1;
    if (current != term_) {
      c.exec("ROLLBACK");
      throw journal_fenced("term " + std::to_string(term_) + " is over: another broker took term " +
                           std::to_string(current));
    }
    body();
    committing = true;
    c.exec("COMMIT");
  } catch (const journal_fenced&) {
    throw;
  } catch (const journal_error& e) {
    if (!c.ok()) throw journal_fenced(std::string("connection to PostgreSQL lost: ") + e.what());
    if (committing) {
      // The server answered COMMIT with an error: nothing was committed.
      throw journal_error(e.what());
    }
    try {
      c.exec("ROLLBACK");
    } catch (const journal_error&) {
      if (!c.ok()) throw journal_fenced(std::string("connection to PostgreSQL lost: ") + e.what());
    }
    throw;
  }
}

void pg_journal::commit_batch(const journal_batch& batch) {
  under_term([&] {
    pg_connection& c = *writer_;
    for (const row_write& w : batch.rows) {
      const journal_record& row = w.row();
      pg_params p;
      p.add(row.number);
      switch (w.what) {
        case row_write::kind::insert:
          p.add(row.client).add(row.client_id).add(row.service).add(row.bytes);
          p.add(request_state_name(row.state)).add(row.worker).add(row.attempts);
          p.add_nonzero(row.received_ms).add_nonzero(row.dispatched_ms);
          p.add_nonzero(row.completed_ms).add_nonzero(static_cast<std::int64_t>(row.code));
          p.add(row.result).add_bytes(w.reply_head).add_bytes(w.reply_body);
          p.add_bytes(w.request_head).add_bytes(w.payload).add(row.owner);
          c.exec(insert_sql, p);
          break;
        case row_write::kind::finish:
          p.add(request_state_name(row.state)).add(row.worker).add(row.attempts);
          p.add_nonzero(w.dispatched_ms).add_nonzero(row.completed_ms);
          p.add_nonzero(static_cast<std::int64_t>(row.code)).add(row.result);
          p.add_bytes(w.reply_head).add_bytes(w.reply_body);
          c.exec(finish_sql, p);
          break;
        case row_write::kind::dispatch:
          p.add(row.worker).add(row.attempts).add_nonzero(row.dispatched_ms);
          c.exec(dispatch_sql, p);
          break;
      }
    }
    if (batch.high_water != 0) raise_meta(c, "max_number", batch.high_water);
    if (batch.reserve != 0) raise_meta(c, "reserved_number", batch.reserve);
  });
}

std::uint64_t pg_journal::prune_before(std::int64_t cutoff_ms) {
  std::uint64_t total = 0;
  try {
    for (int round = 0; round < 50; ++round) {
      std::uint64_t deleted = 0;
      under_term([&] {
        pg_params p;
        p.add(cutoff_ms);
        deleted = writer_->exec(delete_oldest_finished("AND completed_ms < $1", "5000").c_str(), p)
                      .affected();
      });
      total += deleted;
      if (deleted == 0) break;
    }
  } catch (const journal_fenced&) {
    throw;
  } catch (const journal_error& e) {
    log_->warn("journal {}: pruning failed: {}", path(), e.what());
  }
  return total;
}

void pg_journal::measure_size() {
  pg_rows r = writer_->exec(
      "SELECT pg_total_relation_size('carico_requests') + pg_total_relation_size('carico_meta'), "
      "(SELECT reltuples FROM pg_class WHERE oid = 'carico_requests'::regclass)");
  bytes_.store(static_cast<std::uint64_t>(r.integer(0, 0)), std::memory_order_release);
}

// PostgreSQL does not give a table's pages back when rows go (autovacuum
// makes them reusable), so the size cannot fall after a prune: over the bound,
// the oldest finished rows worth the excess plus a tenth of the bound go
// (by their stored sizes), and the next prune waits until the size has grown
// another tenth past that — that is, until the reusable space is used up. So
// the tables stay within about 1.1 × max_bytes once autovacuum keeps up.
void pg_journal::keep_under_bound() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_measure_) return;
  next_measure_ = now + std::chrono::seconds(1);
  try {
    measure_size();
    const std::uint64_t size = disk_bytes();
    if (size <= options_.max_bytes || size < bound_pruned_at_ + options_.max_bytes / 10) return;
    // The oldest finished rows whose sizes (as stored: compressed, TOAST
    // included, plus a row's overhead) add up to the excess plus a tenth.
    const std::uint64_t excess = size - options_.max_bytes + options_.max_bytes / 10;
    std::uint64_t deleted = 0;
    under_term([&] {
      pg_params p;
      p.add(excess);
      deleted = writer_->exec(
                            "DELETE FROM carico_requests WHERE number IN (SELECT number FROM "
                            "(SELECT number, sum(row_bytes) OVER (ORDER BY number) - row_bytes "
                            "AS before FROM (SELECT number, 120 + coalesce(pg_column_size(result), 0) "
                            "+ coalesce(pg_column_size(reply_head), 0) "
                            "+ coalesce(pg_column_size(reply_body), 0) "
                            "+ coalesce(pg_column_size(request_head), 0) "
                            "+ coalesce(pg_column_size(payload), 0) AS row_bytes "
                            "FROM carico_requests WHERE state IN ('done', 'failed', 'expired', "
                            "'refused') ORDER BY number LIMIT 200000) sized) running "
                            "WHERE before < $1)",
                            p)
                    .affected();
    });
    bound_pruned_at_ = size;
    if (deleted > 0) {
      log_->info("journal {}: pruned the {} oldest finished requests to stay under {} bytes",
                 path(), deleted, options_.max_bytes);
    } else {
      log_->warn("journal {}: {} bytes, over the bound of {} bytes (--journal-max-bytes), and "
                 "no finished request left to prune",
                 path(), size, options_.max_bytes);
    }
  } catch (const journal_fenced&) {
    throw;
  } catch (const journal_error& e) {
    if (!writer_->ok()) throw journal_fenced(std::string("connection to PostgreSQL lost: ") + e.what());
    log_->warn("journal {}: keeping it under {} bytes failed: {}", path(), options_.max_bytes,
               e.what());
  }
}

// A round trip on the writer connection: it fails when the server ended the
// session (pg_terminate_backend, a restart) or the network is gone, and the
// lock went with the session. The term row says whether another broker took
// over by other means (a session-less pooler, an operator's UPDATE).
void pg_journal::check_alive() {
  std::int64_t current = -1;
  try {
    pg_rows t = writer_->exec("SELECT value FROM carico_meta WHERE key = 'term'");
    current = t.rows() == 1 ? t.integer(0, 0) : -1;
  } catch (const journal_error& e) {
    if (!writer_->ok()) throw journal_fenced(std::string("connection to PostgreSQL lost: ") + e.what());
    log_->warn("journal {}: liveness check failed: {}", path(), e.what());
    return;
  }
  if (current != term_) {
    throw journal_fenced("term " + std::to_string(term_) + " is over: another broker took term " +
                         std::to_string(current));
  }
}

}  // namespace carico
