#include "broker/sqlite_journal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include "broker/sqlite_statement.hpp"

namespace carico {
namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
  number        INTEGER PRIMARY KEY,
  client        TEXT,
  client_id     TEXT,
  service       TEXT NOT NULL,
  bytes         INTEGER NOT NULL DEFAULT 0,
  state         TEXT NOT NULL,
  worker        TEXT,
  attempts      INTEGER NOT NULL DEFAULT 0,
  received_ms   INTEGER,
  dispatched_ms INTEGER,
  completed_ms  INTEGER,
  code          INTEGER,
  result        TEXT,
  owner         TEXT,
  reply_head    BLOB,
  reply_body    BLOB,
  request_head  BLOB,
  payload       BLOB
);
DROP INDEX IF EXISTS requests_by_key;
CREATE INDEX IF NOT EXISTS requests_keyed ON requests (client, client_id)
  WHERE client IS NOT NULL;
DROP INDEX IF EXISTS requests_unfinished;
)sql";

// meta.unfinished_from: every row numbered below it is finished, so a start
// looks for unfinished rows from there on (sqlite_journal::open_).
constexpr const char* unfinished_from_sql =
    "INSERT INTO meta (key, value) VALUES ('unfinished_from', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// Rows pruned per transaction, and rows (oldest first) looked at for it.
constexpr int prune_batch = 5000;
constexpr int prune_window = 20000;

}  // namespace

using namespace journal_sql;

namespace {

std::string os_error(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

// ------------------------------------------------------------------ opening

struct sqlite_journal::writer_statements {
  explicit writer_statements(sqlite3* db)
      : begin(db, "BEGIN"),
        commit(db, "COMMIT"),
        insert(
            db,
            "INSERT OR REPLACE INTO requests (number, client, client_id, service, bytes, "
            "state, worker, attempts, received_ms, dispatched_ms, completed_ms, code, result, "
            "reply_head, reply_body, request_head, payload, owner) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
            "?18)"),
        dispatch(db,
                 "UPDATE requests SET state = 'dispatched', worker = ?2, attempts = ?3, "
                 "dispatched_ms = ?4 WHERE number = ?1"),
        finish(db,
               "UPDATE requests SET state = ?2, worker = ?3, attempts = ?4, "
               "dispatched_ms = coalesce(?5, dispatched_ms), completed_ms = ?6, code = ?7, "
               "result = ?8, reply_head = ?9, reply_body = ?10, "
               "request_head = NULL, payload = NULL WHERE number = ?1"),
        high_water(db,
                   "INSERT INTO meta (key, value) VALUES ('max_number', ?1) "
                   "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"),
        reserve(db,
                "INSERT INTO meta (key, value) VALUES ('reserved_number', ?1) "
                "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"),
        unfinished_from(db, unfinished_from_sql),
        prune(db,
              "DELETE FROM requests WHERE number IN (SELECT number FROM "
              "(SELECT number, state, completed_ms FROM requests ORDER BY number LIMIT ?2) "
              "WHERE state IN ('done', 'failed', 'expired', 'refused') AND completed_ms < ?1 "
              "LIMIT ?3)"),
        prune_oldest(db,
                     "DELETE FROM requests WHERE number IN (SELECT number FROM requests "
                     "WHERE state IN ('done', 'failed', 'expired', 'refused') "
                     "ORDER BY number LIMIT ?1)"),
        page_count(db, "PRAGMA page_count"),
        freelist_count(db, "PRAGMA freelist_count") {}
  sql_statement begin;       // opens a batch
  sql_statement commit;      // ends a batch
  sql_statement insert;      // a whole row
  sql_statement dispatch;    // a row given to a worker
  sql_statement finish;      // a row answered: reply kept, payload dropped
  sql_statement high_water;  // meta.max_number, so numbers survive pruning
  sql_statement reserve;     // meta.reserved_number, see sqlite_journal::reserved()
  sql_statement unfinished_from;  // meta.unfinished_from, see sqlite_journal::open_
  sql_statement prune;       // old finished rows
  sql_statement prune_oldest;    // the oldest finished rows, however young
  sql_statement page_count;      // pages in the file, used or free
  sql_statement freelist_count;  // free pages in the file
};

namespace {

// The one value a PRAGMA statement returns; its statement is reset for the next time.
std::uint64_t read_count(sql_statement& s) {
  const std::uint64_t n = s.step() ? static_cast<std::uint64_t>(s.integer(0)) : 0;
  s.reset();
  return n;
}

}  // namespace

sqlite_journal::sqlite_journal(journal_options options, std::shared_ptr<spdlog::logger> logger)
    : journal(options, std::move(logger), options.path) {
  try {
    open_files();
    load_unfinished();
    writes_ = std::make_unique<writer_statements>(db_);
    // So that the next start looks from here even if this run dies early.
    writes_->unfinished_from.bind(1, open_.floor());
    writes_->unfinished_from.run();
    floor_written_ = open_.floor();
  } catch (const journal_error& e) {
    writes_.reset();
    close_db(reader_);
    close_db(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw journal_error("journal " + path() + ": " + e.what());
  }
  start_writer();
}

sqlite_journal::~sqlite_journal() {
  stop_writer();
  writes_.reset();
  // Every number this run used was posted, so once meta.max_number covers the
  // highest posted (even one whose rows a failed batch lost) the next run need
  // not skip the reservation. Both in one transaction; on failure it stays.
  if (db_ != nullptr) {
    try {
      exec(db_, "BEGIN");
      sql_statement high_water(db_, "INSERT INTO meta (key, value) VALUES ('max_number', ?1) "
                                    "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)");
      high_water.bind(1, max_posted_);
      high_water.run();
      sql_statement from(db_, unfinished_from_sql);
      from.bind(1, open_.floor());
      from.run();
      exec(db_, "DELETE FROM meta WHERE key = 'reserved_number'");
      exec(db_, "COMMIT");
    } catch (const journal_error& e) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      log_->warn("journal {}: numbers stay reserved up to {} ({})", path(), reserved(), e.what());
    }
  }
  close_db(reader_);
  close_db(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void sqlite_journal::open_files() {
  namespace fs = std::filesystem;
  const std::string& path = journal::path();
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw journal_error("is a directory, not a journal file");

  const std::string lock_path = path + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw journal_error(os_error("cannot create lock file " + lock_path));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      throw journal_error("in use by another broker (" + lock_path + " is locked)");
    }
    throw journal_error(os_error("cannot lock " + lock_path));
  }

  // NOMUTEX: each connection is used by one thread at a time (db_ by the
  // writer after open, reader_ by the broker's thread), so SQLite's own
  // per-call mutex is pure cost. So is its memory accounting, which takes a
  // global mutex on every allocation; it can only be turned off before
  // SQLite's first use in the process (later, the call fails harmlessly).
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) !=
      SQLITE_OK) {
    throw journal_error(std::string("cannot open: ") + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    // A new file gives pruned pages back to the file system (keep_under_bound);
    // on an existing file this changes nothing (it would take a VACUUM).
    exec(db_, "PRAGMA auto_vacuum = INCREMENTAL");
    sql_statement mode(db_, "PRAGMA journal_mode = WAL");
    if (!mode.step() || mode.text(0) != "wal") {
      throw journal_error("cannot switch to WAL mode (is the directory writable?)");
    }
  } catch (const journal_error& e) {
    const int code = sqlite3_errcode(db_);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      throw journal_error(std::string("not a usable SQLite database (corrupt?): ") + e.what() +
                          "; move it away or pass another --journal");
    }
    throw;
  }
  exec(db_, "PRAGMA synchronous = NORMAL");
  page_size_ = std::max<std::uint64_t>(pragma_value("PRAGMA page_size"), 512);
  can_shrink_ = pragma_value("PRAGMA auto_vacuum") == 2;
  if (options_.max_bytes > 0) {
    // The WAL takes a sixteenth of the bound, at most SQLite's usual 4 MiB:
    // checkpointed at that size and truncated back to it after.
    wal_budget_ = std::min<std::uint64_t>(std::uint64_t{4} << 20, options_.max_bytes / 16);
    const std::uint64_t pages = std::max<std::uint64_t>(16, wal_budget_ / page_size_);
    exec(db_, ("PRAGMA wal_autocheckpoint = " + std::to_string(pages)).c_str());
    exec(db_, ("PRAGMA journal_size_limit = " + std::to_string(wal_budget_)).c_str());
  }
  {
    sql_statement check(db_, "PRAGMA quick_check");
    std::string verdict = check.step() ? check.text(0) : "no answer";
    if (verdict != "ok") {
      throw journal_error("failed its integrity check (" + verdict +
                          "); move it away or pass another --journal");
    }
  }
  try {
    migrate();
  } catch (const journal_error& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw journal_error(std::string("cannot write to it: ") + e.what());
  }
  {
    sql_statement probe(db_, "INSERT INTO meta (key, value) VALUES ('opened_ms', ?1) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    probe.bind(1, unix_ms());
    try {
      probe.run();
    } catch (const journal_error& e) {
      throw journal_error(std::string("cannot write to it: ") + e.what());
    }
  }
  // A reservation left behind means the last run did not close cleanly: numbers
  // up to it may have reached a worker without a row, so this run starts above.
  sql_statement numbers(
      db_, "SELECT max(coalesce((SELECT max(number) FROM requests), 0), "
           "coalesce((SELECT value FROM meta WHERE key = 'max_number'), 0), "
           "coalesce((SELECT value FROM meta WHERE key = 'reserved_number'), 0))");
  numbers.step();
  const auto max_number = static_cast<std::uint64_t>(numbers.integer(0));
  const std::uint64_t reserving = max_number + reserve_block;
  {
    sql_statement high_water(db_, "INSERT INTO meta (key, value) VALUES ('max_number', ?1) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    high_water.bind(1, max_number);
    high_water.run();
    sql_statement reserve(db_, "INSERT INTO meta (key, value) VALUES ('reserved_number', ?1) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    reserve.bind(1, reserving);
    reserve.run();
  }
  set_numbers(max_number, reserving);

  if (sqlite3_open_v2(path.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    throw journal_error(std::string("cannot open for reading: ") +
                        (reader_ ? sqlite3_errmsg(reader_) : "out of memory"));
  }
  sqlite3_busy_timeout(reader_, 1000);
}

// From meta.unfinished_from on (the whole table in a file written before it
// existed), by number: no index is kept for this one query at each start.
void sqlite_journal::load_unfinished() {
  std::size_t count = 0;
  floor_written_ = pragma_value(
      "SELECT coalesce((SELECT value FROM meta WHERE key = 'unfinished_from'), 0)");
  open_ = open_numbers(first_number());
  sql_statement rows(db_, (std::string("SELECT ") + record_columns +
                           ", request_head, payload FROM requests "
                           "WHERE number >= ?1 AND state IN ('queued', 'dispatched') "
                           "ORDER BY number")
                              .c_str());
  rows.bind(1, floor_written_);
  while (rows.step()) {
    journal_unfinished u;
    u.record = read_record(rows);
    open_.open(u.record.number);
    u.head = rows.text(13);
    u.payload = rows.text(14);
    add_unfinished(std::move(u));
    ++count;
  }
  if (count > 0) {
    log_->warn("journal {}: {} unfinished requests from the last run will be dispatched again",
               path(), count);
  }
}

// Version 1 (no meta.schema_version) had the text service's count_a,
// stored_as and title as columns; version 2 keeps a reply's result map as
// JSON text in `result`, whatever the service put there. Old values are
// folded into `result` (so a migrated row's result may carry its old title),
// then the old columns go. One transaction: a failure leaves the file as it was.
void sqlite_journal::migrate() {
  exec(db_, "BEGIN IMMEDIATE");
  exec(db_, schema);
  {
    sql_statement version(db_, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (version.step() && version.integer(0) > schema_version) {
      throw journal_error("written by a newer carico (schema version " +
                          std::to_string(version.integer(0)) + ", this one knows " +
                          std::to_string(schema_version) + ")");
    }
  }
  const auto has_column = [&](const char* name) {
    sql_statement s(db_, "SELECT 1 FROM pragma_table_info('requests') WHERE name = ?1");
    s.bind_text(1, name);
    return s.step();
  };
  // A journal written before `owner` existed gains the column (NULL in its
  // old rows: documents sent before it have no recorded owner).
  if (!has_column("owner")) exec(db_, "ALTER TABLE requests ADD COLUMN owner TEXT");
  if (!has_column("result")) exec(db_, "ALTER TABLE requests ADD COLUMN result TEXT");
  if (has_column("count_a")) {
    exec(db_,
         "UPDATE requests SET result = (SELECT json_group_object(k, v) FROM ("
         "  SELECT 'count_a' AS k, count_a AS v WHERE count_a IS NOT NULL"
         "  UNION ALL SELECT 'stored_as', stored_as WHERE coalesce(stored_as, '') != ''"
         "  UNION ALL SELECT 'title', title WHERE coalesce(title, '') != ''))"
         " WHERE count_a IS NOT NULL OR coalesce(stored_as, '') != '' OR coalesce(title, '') != ''");
    exec(db_, "ALTER TABLE requests DROP COLUMN count_a");
    exec(db_, "ALTER TABLE requests DROP COLUMN stored_as");
    exec(db_, "ALTER TABLE requests DROP COLUMN title");
  }
  exec(db_, ("INSERT INTO meta (key, value) VALUES ('schema_version', " +
             std::to_string(schema_version) +
             ") ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .c_str());
  exec(db_, "COMMIT");
}

std::uint64_t sqlite_journal::disk_bytes() const {
  std::uint64_t total = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path() + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

// ------------------------------------------------------------------ writing

namespace {

// Whether the row is unfinished once `write` is committed.
bool leaves_unfinished(const row_write& write) {
  return write.what == row_write::kind::dispatch || !is_final(write.row().state);
}

}  // namespace

// meta.unfinished_from is written with each reservation (every
// reserve_block / 2 numbers), and in any batch that leaves a row below the
// value last written unfinished, so it is never above an unfinished row in
// what is committed. Its value here ignores what this batch finishes (it can
// only be lower than it might be), and open_ learns the batch once committed.
void sqlite_journal::commit_batch(const journal_batch& batch) {
  writer_statements& w = *writes_;
  std::uint64_t lowest_left = std::numeric_limits<std::uint64_t>::max();
  for (const row_write& write : batch.rows) {
    if (leaves_unfinished(write)) lowest_left = std::min(lowest_left, write.row().number);
  }
  const bool move_floor = batch.reserve != 0 || lowest_left < floor_written_;
  const std::uint64_t floor = std::min(open_.floor(), lowest_left & ~std::uint64_t{63});
  try {
    w.begin.run();
    for (const row_write& write : batch.rows) {
      const journal_record& row = write.row();
      switch (write.what) {
        case row_write::kind::insert: {
          sql_statement& s = w.insert;
          s.bind(1, row.number);
          s.bind_text(2, row.client);
          s.bind_text(3, row.client_id);
          s.bind_text(4, row.service);
          s.bind(5, row.bytes);
          s.bind_text(6, request_state_name(row.state));
          s.bind_text(7, row.worker);
          s.bind(8, row.attempts);
          s.bind_nonzero(9, row.received_ms);
          s.bind_nonzero(10, row.dispatched_ms);
          s.bind_nonzero(11, row.completed_ms);
          s.bind_nonzero(12, static_cast<std::int64_t>(row.code));
          s.bind_text(13, row.result);
          s.bind_blob(14, write.reply_head.data(), write.reply_head.size());
          s.bind_blob(15, write.reply_body.data(), write.reply_body.size());
          s.bind_blob(16, write.request_head.data(), write.request_head.size());
          s.bind_blob(17, write.payload.data(), write.payload.size());
          s.bind_text(18, row.owner);
          s.run();
          break;
        }
        case row_write::kind::finish: {
          sql_statement& s = w.finish;
          s.bind(1, row.number);
          s.bind_text(2, request_state_name(row.state));
          s.bind_text(3, row.worker);
          s.bind(4, row.attempts);
          s.bind_nonzero(5, write.dispatched_ms);
          s.bind_nonzero(6, row.completed_ms);
          s.bind_nonzero(7, static_cast<std::int64_t>(row.code));
          s.bind_text(8, row.result);
          s.bind_blob(9, write.reply_head.data(), write.reply_head.size());
          s.bind_blob(10, write.reply_body.data(), write.reply_body.size());
          s.run();
          break;
        }
        case row_write::kind::dispatch: {
          sql_statement& s = w.dispatch;
          s.bind(1, row.number);
          s.bind_text(2, row.worker);
          s.bind(3, row.attempts);
          s.bind_nonzero(4, row.dispatched_ms);
          s.run();
          break;
        }
      }
    }
    if (batch.high_water != 0) {
      w.high_water.bind(1, batch.high_water);
      w.high_water.run();
    }
    if (batch.reserve != 0) {
      w.reserve.bind(1, batch.reserve);
      w.reserve.run();
    }
    if (move_floor) {
      w.unfinished_from.bind(1, floor);
      w.unfinished_from.run();
    }
    w.commit.run();
  } catch (const journal_error&) {
    for (sql_statement* s : {&w.begin, &w.insert, &w.dispatch, &w.finish, &w.high_water,
                             &w.reserve, &w.unfinished_from, &w.commit}) {
      s->reset();
    }
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  if (move_floor) floor_written_ = floor;
  for (const row_write& write : batch.rows) {
    if (leaves_unfinished(write)) {
      open_.open(write.row().number);
    } else {
      open_.close(write.row().number);
    }
  }
}

std::uint64_t sqlite_journal::prune_before(std::int64_t cutoff_ms) {
  writer_statements& w = *writes_;
  std::uint64_t total = 0;
  try {
    for (int round = 0; round < 50; ++round) {
      w.prune.bind(1, cutoff_ms);
      w.prune.bind(2, std::int64_t{prune_window});
      w.prune.bind(3, std::int64_t{prune_batch});
      w.prune.run();
      const int deleted = sqlite3_changes(db_);
      total += static_cast<std::uint64_t>(deleted);
      if (deleted == 0) break;
    }
  } catch (const journal_error& e) {
    w.prune.reset();
    log_->warn("journal {}: pruning failed: {}", path(), e.what());
  }
  return total;
}

std::uint64_t sqlite_journal::pragma_value(const char* sql) {
  sql_statement s(db_, sql);
  return s.step() ? static_cast<std::uint64_t>(s.integer(0)) : 0;
}

// The budget: the WAL may reach twice wal_budget_ (checkpointed at one, and a
// batch or a reader may hold it a little past that), the shared-memory index
// a few pages; the file's used pages get the rest. Over that, the oldest
// finished rows go until a tenth of it is free again, so that this prunes in
// bursts rather than on every batch. Unfinished rows are never pruned.
void sqlite_journal::keep_under_bound() {
  const std::uint64_t shm_budget = 64 << 10;
  const std::uint64_t reserved_bytes = 2 * wal_budget_ + shm_budget;
  if (options_.max_bytes <= reserved_bytes) return;
  const std::uint64_t high = (options_.max_bytes - reserved_bytes) / page_size_;
  const std::uint64_t low = high - high / 10;
  writer_statements& w = *writes_;
  std::uint64_t pages = 0;
  std::uint64_t used = 0;
  std::uint64_t pruned = 0;
  bool nothing_left = false;  // no finished row left to prune
  try {
    pages = read_count(w.page_count);
    used = pages - std::min(pages, read_count(w.freelist_count));
    if (used > high) {
      for (int round = 0; round < 200 && used > low; ++round) {
        // Rows per round from the average row (pages / rows unknown: assume
        // at least 4 rows a page), at least 64.
        const std::uint64_t rows = std::max<std::uint64_t>(64, (used - low) * 4);
        w.prune_oldest.bind(1, static_cast<std::int64_t>(std::min<std::uint64_t>(rows, 2000)));
        w.prune_oldest.run();
        const int deleted = sqlite3_changes(db_);
        if (deleted == 0) {
          nothing_left = true;
          break;
        }
        pruned += static_cast<std::uint64_t>(deleted);
        used = pages - std::min(pages, read_count(w.freelist_count));
      }
    }
    // Free pages past the budget go back to the file system (a file made
    // before this version cannot: it stays as large as it grew).
    if (can_shrink_ && pages > high) {
      const std::uint64_t spare = read_count(w.freelist_count);
      const std::uint64_t give = std::min(spare, pages - high);
      if (give > 0) {
        exec(db_, ("PRAGMA incremental_vacuum(" + std::to_string(give) + ")").c_str());
      }
    }
  } catch (const journal_error& e) {
    for (sql_statement* s : {&w.prune_oldest, &w.page_count, &w.freelist_count}) s->reset();
    log_->warn("journal {}: keeping it under {} bytes failed: {}", path(),
               options_.max_bytes, e.what());
    return;
  }
  if (pruned > 0) {
    log_->info("journal {}: pruned the {} oldest finished requests to stay under {} bytes",
               path(), pruned, options_.max_bytes);
  }
  if (nothing_left && used > high) {
    if (!over_bound_logged_) {
      log_->warn(
          "journal {}: {} bytes of unfinished requests, over the bound of {} bytes "
          "(--journal-max-bytes); unfinished requests are never pruned",
          path(), used * page_size_, options_.max_bytes);
    }
    over_bound_logged_ = true;
  } else if (used <= high) {
    over_bound_logged_ = false;
  }
  // A WAL that a reader kept from being checkpointed grows past its budget:
  // checkpoint it without waiting for anyone (PASSIVE); the next write then
  // starts it over, truncated to journal_size_limit.
  std::error_code ec;
  const std::uintmax_t wal = std::filesystem::file_size(path() + "-wal", ec);
  if (!ec && wal > 2 * wal_budget_) {
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
}

}  // namespace carico
