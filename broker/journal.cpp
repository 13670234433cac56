#include "broker/journal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <unordered_map>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <msgpack.hpp>

#include "shared/logging.hpp"
#include "shared/map_writer.hpp"  // string_sink

namespace carico {
namespace {

// The columns of a journal_record, in the order read_record() expects.
constexpr const char* record_columns =
    "number, client, client_id, service, title, bytes, state, worker, attempts, received_ms, "
    "dispatched_ms, completed_ms, code, count_a, stored_as";

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
  title         TEXT,
  bytes         INTEGER NOT NULL DEFAULT 0,
  state         TEXT NOT NULL,
  worker        TEXT,
  attempts      INTEGER NOT NULL DEFAULT 0,
  received_ms   INTEGER,
  dispatched_ms INTEGER,
  completed_ms  INTEGER,
  code          INTEGER,
  count_a       INTEGER,
  stored_as     TEXT,
  owner         TEXT,
  reply_head    BLOB,
  reply_body    BLOB,
  request_head  BLOB,
  payload       BLOB
);
DROP INDEX IF EXISTS requests_by_key;
CREATE INDEX IF NOT EXISTS requests_keyed ON requests (client, client_id)
  WHERE client IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_unfinished ON requests (number)
  WHERE state IN ('queued', 'dispatched');
)sql";

// Rows pruned per transaction, and rows (oldest first) looked at for it.
constexpr int prune_batch = 5000;
constexpr int prune_window = 20000;

}  // namespace

namespace journal_sql {

// A prepared statement; throws journal_error on any failure. In a named
// namespace, not the anonymous one: journal::writer_statements holds some, and
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

}  // namespace journal_sql
using journal_sql::sql_statement;

namespace {

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw journal_error(message);
  }
}

journal_record read_record(const sql_statement& s) {
  journal_record r;
  r.number = static_cast<std::uint64_t>(s.integer(0));
  r.client = s.text(1);
  r.client_id = s.text(2);
  r.service = s.text(3);
  r.title = s.text(4);
  r.bytes = static_cast<std::uint64_t>(s.integer(5));
  r.state = parse_request_state(s.text(6)).value_or(request_state::failed);
  r.worker = s.text(7);
  r.attempts = static_cast<std::uint64_t>(s.integer(8));
  r.received_ms = s.integer(9);
  r.dispatched_ms = s.integer(10);
  r.completed_ms = s.integer(11);
  r.code = static_cast<std::uint64_t>(s.integer(12));
  if (!s.is_null(13)) r.count_a = static_cast<std::uint64_t>(s.integer(13));
  r.stored_as = s.text(14);
  return r;
}

std::string os_error(const std::string& what) { return what + ": " + std::strerror(errno); }

void close_db(sqlite3*& db) {
  if (db != nullptr) sqlite3_close_v2(db);
  db = nullptr;
}

}  // namespace

// ------------------------------------------------------------------ values

std::string_view request_state_name(request_state s) {
  switch (s) {
    case request_state::queued: return "queued";
    case request_state::dispatched: return "dispatched";
    case request_state::done: return "done";
    case request_state::failed: return "failed";
    case request_state::expired: return "expired";
    case request_state::refused: return "refused";
  }
  return "failed";
}

std::optional<request_state> parse_request_state(std::string_view name) {
  for (request_state s : {request_state::queued, request_state::dispatched, request_state::done,
                          request_state::failed, request_state::expired, request_state::refused}) {
    if (request_state_name(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 'd': unit = 86400; break;
    case 'h': unit = 3600; break;
    case 'm': unit = 60; break;
    case 's': unit = 1; break;
    default: unit = 0; break;
  }
  if (unit != 0) text.remove_suffix(1);
  if (unit == 0) unit = 1;
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return std::chrono::seconds(n * unit);
}

std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
  struct suffix {
    std::string_view name;  // as typed after the number
    std::uint64_t unit;     // bytes it stands for
  };
  static constexpr suffix suffixes[] = {
      {"TiB", 1ULL << 40}, {"GiB", 1ULL << 30},      {"MiB", 1ULL << 20},
      {"KiB", 1ULL << 10}, {"TB", 1000000000000ULL}, {"GB", 1000000000ULL},
      {"MB", 1000000ULL},  {"KB", 1000ULL},          {"kB", 1000ULL},
      {"T", 1ULL << 40},   {"G", 1ULL << 30},        {"M", 1ULL << 20},
      {"K", 1ULL << 10},   {"k", 1ULL << 10},        {"B", 1}};
  std::uint64_t unit = 1;
  for (const suffix& s : suffixes) {
    if (text.size() > s.name.size() && text.ends_with(s.name)) {
      unit = s.unit;
      text.remove_suffix(s.name.size());
      break;
    }
  }
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  constexpr std::uint64_t most = std::uint64_t{1} << 62;
  if (n > most / unit) return std::nullopt;
  return n * unit;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json journal_record::to_json() const {
  nlohmann::json out = {{"request", number},
                        {"service", service},
                        {"state", request_state_name(state)},
                        {"attempts", attempts},
                        {"bytes", bytes}};
  if (!client.empty()) out["client"] = client;
  if (!client_id.empty()) {
    out["id"] = nlohmann::json::parse(client_id, nullptr, false);
    if (out["id"].is_discarded()) out["id"] = client_id;
  }
  if (!title.empty()) out["title"] = title;
  out["worker"] = worker;
  if (received_ms != 0) out["received_ms"] = received_ms;
  if (dispatched_ms != 0) out["dispatched_ms"] = dispatched_ms;
  if (completed_ms != 0) out["completed_ms"] = completed_ms;
  if (code != 0) out["code"] = code;
  if (count_a) out["count_a"] = *count_a;
  if (!stored_as.empty()) out["stored_as"] = stored_as;
  return out;
}

std::string encode_frames(const std::vector<zmq::message_t>& frames) {
  if (frames.empty()) return {};
  // Packed straight into the string, reserved for the longest headers (5 bytes
  // each): one allocation, where an sbuffer would start with 8 KiB and copy.
  std::string blob;
  std::size_t most = 5;
  for (const zmq::message_t& f : frames) most += 5 + f.size();
  blob.reserve(most);
  string_sink sink{blob};
  msgpack::packer<string_sink> packer(sink);
  packer.pack_array(static_cast<std::uint32_t>(frames.size()));
  for (const zmq::message_t& f : frames) {
    packer.pack_bin(static_cast<std::uint32_t>(f.size()));
    packer.pack_bin_body(static_cast<const char*>(f.data()), static_cast<std::uint32_t>(f.size()));
  }
  return blob;
}

std::vector<std::string> decode_frames(std::string_view blob) {
  std::vector<std::string> out;
  if (blob.empty()) return out;
  try {
    msgpack::object_handle handle = msgpack::unpack(blob.data(), blob.size());
    const msgpack::object& array = handle.get();
    if (array.type != msgpack::type::ARRAY) return out;
    for (std::uint32_t i = 0; i < array.via.array.size; ++i) {
      const msgpack::object& f = array.via.array.ptr[i];
      if (f.type == msgpack::type::BIN) out.emplace_back(f.via.bin.ptr, f.via.bin.size);
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

// ------------------------------------------------------------------ opening

struct journal::writer_statements {
  explicit writer_statements(sqlite3* db)
      : begin(db, "BEGIN"),
        commit(db, "COMMIT"),
        insert(
            db,
            "INSERT OR REPLACE INTO requests (number, client, client_id, service, title, bytes, "
            "state, worker, attempts, received_ms, dispatched_ms, completed_ms, code, count_a, "
            "stored_as, reply_head, reply_body, request_head, payload, owner) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
            "?18, ?19, ?20)"),
        dispatch(db,
                 "UPDATE requests SET state = 'dispatched', worker = ?2, attempts = ?3, "
                 "dispatched_ms = ?4 WHERE number = ?1"),
        finish(db,
               "UPDATE requests SET state = ?2, worker = ?3, attempts = ?4, "
               "dispatched_ms = coalesce(?5, dispatched_ms), completed_ms = ?6, code = ?7, "
               "count_a = ?8, stored_as = ?9, reply_head = ?10, reply_body = ?11, "
               "request_head = NULL, payload = NULL WHERE number = ?1"),
        high_water(db,
                   "INSERT INTO meta (key, value) VALUES ('max_number', ?1) "
                   "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"),
        reserve(db,
                "INSERT INTO meta (key, value) VALUES ('reserved_number', ?1) "
                "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"),
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
  sql_statement reserve;     // meta.reserved_number, see journal::reserved()
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

journal::journal(journal_options options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)), log_(logger ? std::move(logger) : null_logger()) {
  try {
    open_files();
    load_unfinished();
    writes_ = std::make_unique<writer_statements>(db_);
  } catch (const journal_error& e) {
    writes_.reset();
    close_db(reader_);
    close_db(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw journal_error("journal " + options_.path + ": " + e.what());
  }
  next_prune_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  health_.since_ms = unix_ms();
  writer_ = std::thread([this] { writer_loop(); });
}

journal::~journal() {
  journal_event stop;
  stop.what = journal_event::kind::stop;
  post(std::move(stop));
  if (writer_.joinable()) writer_.join();
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
      exec(db_, "DELETE FROM meta WHERE key = 'reserved_number'");
      exec(db_, "COMMIT");
    } catch (const journal_error& e) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      log_->warn("journal {}: numbers stay reserved up to {} ({})", options_.path,
                 reserved_.load(), e.what());
    }
  }
  close_db(reader_);
  close_db(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void journal::open_files() {
  namespace fs = std::filesystem;
  const std::string& path = options_.path;
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
    exec(db_, schema);
    // In place: a journal written before `owner` existed gains the column (NULL
    // in its old rows: documents sent before it have no recorded owner).
    sql_statement has_owner(db_, "SELECT 1 FROM pragma_table_info('requests') WHERE name = 'owner'");
    if (!has_owner.step()) exec(db_, "ALTER TABLE requests ADD COLUMN owner TEXT");
  } catch (const journal_error& e) {
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
  max_number_ = static_cast<std::uint64_t>(numbers.integer(0));
  first_number_ = max_number_ + 1;
  reserving_ = max_number_ + reserve_block;
  {
    sql_statement high_water(db_, "INSERT INTO meta (key, value) VALUES ('max_number', ?1) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    high_water.bind(1, max_number_);
    high_water.run();
    sql_statement reserve(db_, "INSERT INTO meta (key, value) VALUES ('reserved_number', ?1) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    reserve.bind(1, reserving_);
    reserve.run();
  }
  reserved_.store(reserving_, std::memory_order_release);

  if (sqlite3_open_v2(path.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    throw journal_error(std::string("cannot open for reading: ") +
                        (reader_ ? sqlite3_errmsg(reader_) : "out of memory"));
  }
  sqlite3_busy_timeout(reader_, 1000);
}

void journal::load_unfinished() {
  sql_statement rows(db_, (std::string("SELECT ") + record_columns +
                           ", request_head, payload FROM requests "
                           "WHERE state IN ('queued', 'dispatched') ORDER BY number")
                              .c_str());
  while (rows.step()) {
    journal_unfinished u;
    u.record = read_record(rows);
    u.head = rows.text(15);
    u.payload = rows.text(16);
    unfinished_.push_back(std::move(u));
  }
  if (!unfinished_.empty()) {
    log_->warn("journal {}: {} unfinished requests from the last run will be dispatched again",
               options_.path, unfinished_.size());
  }
}

std::vector<journal_unfinished> journal::take_unfinished() { return std::move(unfinished_); }

// ------------------------------------------------------------------ writing

std::uint64_t journal::post(journal_event&& event) {
  const std::uint64_t seq = ++posted_;
  event.seq = seq;
  max_posted_ = std::max(max_posted_, event.row.number);
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(event));
  }
  wake_.notify_one();
  return seq;
}

bool journal::flush() {
  const std::uint64_t target = posted_;
  std::unique_lock lock(mutex_);
  ++flushes_wanted_;
  wake_.notify_one();
  flushed_.wait(lock, [&] {
    return (committed() >= target && flushes_done_ >= flushes_wanted_) || !writable();
  });
  return committed() >= target;
}

journal_health journal::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

std::uint64_t journal::disk_bytes() const {
  std::uint64_t total = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(options_.path + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

void journal::note_write_failed(const std::string& error) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    ++health_.attempts;
    health_.error = error;
    if (health_.writable) {
      first = true;
      health_.writable = false;
      health_.since_ms = unix_ms();
      writable_.store(false, std::memory_order_release);
    }
  }
  if (!first) return;
  flushed_.notify_all();  // a flush() stops waiting for what cannot come
  log_->error(
      "journal {} unavailable: cannot write ({}); replies wait for their outcome, new "
      "requests are refused (503 journal unavailable), retrying every {} ms",
      options_.path, error, options_.retry_every.count());
  if (options_.on_commit) options_.on_commit();
}

void journal::note_write_succeeded() {
  if (writable()) return;
  journal_health was;
  {
    std::lock_guard lock(mutex_);
    was = health_;
    health_ = journal_health{};
    health_.since_ms = unix_ms();
    writable_.store(true, std::memory_order_release);
  }
  log_->warn(
      "journal {} available again after {} ms and {} failed writes: everything kept "
      "meanwhile is committed, serving again",
      options_.path, unix_ms() - was.since_ms, was.attempts);
}

// Dispatch notes gate nothing (the broker waits only for `received` and
// `finished`), so a batch's dispatch notes whose request saw nothing else in
// it are carried to the next batch, where the request's answer usually is:
// the two fold into one UPDATE. A note is carried once at most, and never
// past a flush(), a stop, an idle writer or a failed write.
//
// A batch that fails stays in `batch` (carried notes first): while the
// journal is not writable the writer wakes every retry_every (or for a stop),
// adds what was posted meanwhile and tries the whole of it again. At a stop
// it keeps trying for stop_grace, then gives up (the replies those events
// gate were never sent).
void journal::writer_loop() {
  using clock = std::chrono::steady_clock;
  std::vector<journal_event> batch;
  std::vector<journal_event> carried;  // dispatch notes held back one batch
  clock::time_point next_retry{};      // while not writable
  std::optional<clock::time_point> give_up_at;  // while stopping on a failing journal
  bool stopping = false;
  for (;;) {
    std::uint64_t flushes = 0;
    {
      std::unique_lock lock(mutex_);
      if (!writable()) {
        wake_.wait_until(lock, next_retry, [&] {
          return !queue_.empty() && queue_.back().what == journal_event::kind::stop;
        });
      } else {
        const auto deadline =
            carried.empty() ? next_prune_
                            : std::min(next_prune_, clock::now() + std::chrono::milliseconds(20));
        wake_.wait_until(lock, deadline,
                         [&] { return !queue_.empty() || flushes_done_ < flushes_wanted_; });
      }
      if (batch.empty()) {
        batch.swap(queue_);
      } else {
        std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
        queue_.clear();
      }
      flushes = flushes_wanted_;
    }
    stopping = !batch.empty() && batch.back().what == journal_event::kind::stop;
    const bool everything = stopping || flushes > flushes_done_ || batch.empty() || !writable();
    if (!batch.empty() || !carried.empty()) {
      const std::uint64_t last = batch.empty() ? committed() : batch.back().seq;
      std::vector<journal_event> held;
      std::string error;
      if (!write_batch(carried, batch, everything ? nullptr : &held, error)) {
        // Keep all of it, in order, for the retry: carried notes first.
        if (!carried.empty()) {
          std::move(batch.begin(), batch.end(), std::back_inserter(carried));
          batch.swap(carried);
          carried.clear();
        }
        note_write_failed(error);
        next_retry = clock::now() + options_.retry_every;
        if (stopping) {
          if (!give_up_at) give_up_at = clock::now() + options_.stop_grace;
          if (clock::now() >= *give_up_at) {
            log_->error(
                "journal {}: stopping with {} events never written ({}); the replies "
                "they gate were not sent",
                options_.path, batch.size() - 1, error);
            break;
          }
        }
        std::lock_guard lock(mutex_);
        health_.waiting = batch.size();
        continue;
      }
      note_write_succeeded();
      carried = std::move(held);
      batch.clear();
      // After a stall (a 5 s busy wait, say) a batch can be huge; vectors keep
      // their capacity, so let that one go instead of holding it for the run.
      if (batch.capacity() > 65536) batch = std::vector<journal_event>();
      {
        std::lock_guard lock(mutex_);
        committed_.store(std::max(last, committed()), std::memory_order_release);
        if (everything) flushes_done_ = flushes;
      }
      flushed_.notify_all();
      if (options_.on_commit) options_.on_commit();
      if (options_.max_bytes > 0) keep_under_bound();  // two cached reads when under
    } else if (flushes > flushes_done_) {
      {
        std::lock_guard lock(mutex_);
        flushes_done_ = flushes;
      }
      flushed_.notify_all();
    }
    if (stopping) break;
    if (clock::now() >= next_prune_) {
      prune();
      next_prune_ = clock::now() + options_.prune_every;
    }
  }
}

bool journal::write_batch(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                          std::vector<journal_event>* hold, std::string& error) {
  // Fold the batch into one statement per request: a request received,
  // dispatched and answered within one batch is a single INSERT without payload.
  struct folded {
    journal_event* insert{nullptr};    // received or refused
    journal_event* dispatch{nullptr};  // the last dispatch
    journal_event* finish{nullptr};    // finished or refused
    bool was_carried{false};           // its dispatch note waited one batch already
  };
  std::unordered_map<std::uint64_t, folded> rows;
  std::vector<std::uint64_t> order;
  rows.reserve(carried.size() + batch.size());
  std::uint64_t batch_max = 0;
  auto fold = [&](journal_event& e, bool from_carried) {
    if (e.what == journal_event::kind::stop) return;
    auto [it, fresh] = rows.try_emplace(e.row.number);
    if (fresh) order.push_back(e.row.number);
    folded& f = it->second;
    switch (e.what) {
      case journal_event::kind::received: f.insert = &e; break;
      case journal_event::kind::dispatched:
        f.dispatch = &e;
        f.was_carried = from_carried;
        break;
      case journal_event::kind::finished: f.finish = &e; break;
      case journal_event::kind::refused: f.insert = f.finish = &e; break;
      case journal_event::kind::stop: break;
    }
    batch_max = std::max(batch_max, e.row.number);
  };
  for (journal_event& e : carried) fold(e, true);
  for (journal_event& e : batch) fold(e, false);
  // Held notes are moved out only once the rest is committed: a failed
  // transaction leaves every event where it was, for the retry.
  std::vector<journal_event*> held;
  if (hold != nullptr) {
    std::erase_if(order, [&](std::uint64_t number) {
      folded& f = rows[number];
      if (f.insert != nullptr || f.finish != nullptr || f.was_carried) return false;
      held.push_back(f.dispatch);
      return true;
    });
  }
  const auto move_held = [&] {
    for (journal_event* e : held) hold->push_back(std::move(*e));
  };
  if (order.empty()) {
    move_held();
    return true;
  }

  writer_statements& w = *writes_;
  const auto began = std::chrono::steady_clock::now();
  try {
    w.begin.run();
    for (std::uint64_t number : order) {
      folded& f = rows[number];
      if (f.insert != nullptr) {
        journal_record row = f.insert->row;
        if (f.dispatch != nullptr) {
          row.state = request_state::dispatched;
          row.worker = f.dispatch->row.worker;
          row.attempts = f.dispatch->row.attempts;
          row.dispatched_ms = f.dispatch->row.dispatched_ms;
        }
        if (f.finish != nullptr && f.finish != f.insert) {
          const journal_record& done = f.finish->row;
          row.state = done.state;
          row.worker = done.worker;
          row.attempts = done.attempts;
          row.completed_ms = done.completed_ms;
          row.code = done.code;
          row.count_a = done.count_a;
          row.stored_as = done.stored_as;
        }
        sql_statement& s = w.insert;
        s.bind(1, row.number);
        s.bind_text(2, row.client);
        s.bind_text(3, row.client_id);
        s.bind_text(4, row.service);
        s.bind_text(5, row.title);
        s.bind(6, row.bytes);
        s.bind_text(7, request_state_name(row.state));
        s.bind_text(8, row.worker);
        s.bind(9, row.attempts);
        s.bind_nonzero(10, row.received_ms);
        s.bind_nonzero(11, row.dispatched_ms);
        s.bind_nonzero(12, row.completed_ms);
        s.bind_nonzero(13, static_cast<std::int64_t>(row.code));
        if (row.count_a) s.bind(14, *row.count_a);
        s.bind_text(15, row.stored_as);
        s.bind_text(20, row.owner);
        if (f.finish != nullptr) {
          s.bind_blob(16, f.finish->head.data(), f.finish->head.size());
          s.bind_blob(17, f.finish->body.data(), f.finish->body.size());
        } else {
          s.bind_blob(18, f.insert->head.data(), f.insert->head.size());
          s.bind_blob(19, f.insert->payload.data(), f.insert->payload.size());
        }
        s.run();
      } else if (f.finish != nullptr) {
        const journal_record& done = f.finish->row;
        sql_statement& s = w.finish;
        s.bind(1, done.number);
        s.bind_text(2, request_state_name(done.state));
        s.bind_text(3, done.worker);
        s.bind(4, done.attempts);
        if (f.dispatch != nullptr) s.bind_nonzero(5, f.dispatch->row.dispatched_ms);
        s.bind_nonzero(6, done.completed_ms);
        s.bind_nonzero(7, static_cast<std::int64_t>(done.code));
        if (done.count_a) s.bind(8, *done.count_a);
        s.bind_text(9, done.stored_as);
        s.bind_blob(10, f.finish->head.data(), f.finish->head.size());
        s.bind_blob(11, f.finish->body.data(), f.finish->body.size());
        s.run();
      } else if (f.dispatch != nullptr) {
        const journal_record& d = f.dispatch->row;
        sql_statement& s = w.dispatch;
        s.bind(1, d.number);
        s.bind_text(2, d.worker);
        s.bind(3, d.attempts);
        s.bind_nonzero(4, d.dispatched_ms);
        s.run();
      }
    }
    if (batch_max > max_number_) {
      w.high_water.bind(1, batch_max);
      w.high_water.run();
    }
    if (batch_max + reserve_block / 2 > reserving_) {
      reserving_ = batch_max + reserve_block;
      w.reserve.bind(1, reserving_);
      w.reserve.run();
    }
    w.commit.run();
    max_number_ = std::max(max_number_, batch_max);  // only what the file now holds
    reserved_.store(reserving_, std::memory_order_release);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
    std::lock_guard lock(latency_mutex_);
    commit_seconds_.observe(took.count());
  } catch (const journal_error& e) {
    for (sql_statement* s :
         {&w.begin, &w.insert, &w.dispatch, &w.finish, &w.high_water, &w.reserve, &w.commit}) {
      s->reset();
    }
    reserving_ = reserved_.load(std::memory_order_relaxed);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    error = e.what();
    return false;
  }
  move_held();
  return true;
}

duration_histogram journal::commit_latency() const {
  std::lock_guard lock(latency_mutex_);
  return commit_seconds_;
}

void journal::prune() {
  const std::int64_t cutoff = unix_ms() - options_.keep.count();
  writer_statements& w = *writes_;
  std::uint64_t total = 0;
  try {
    for (int round = 0; round < 50; ++round) {
      w.prune.bind(1, cutoff);
      w.prune.bind(2, std::int64_t{prune_window});
      w.prune.bind(3, std::int64_t{prune_batch});
      w.prune.run();
      const int deleted = sqlite3_changes(db_);
      total += static_cast<std::uint64_t>(deleted);
      if (deleted == 0) break;
    }
  } catch (const journal_error& e) {
    w.prune.reset();
    log_->warn("journal {}: pruning failed: {}", options_.path, e.what());
  }
  if (total > 0) log_->info("journal {}: pruned {} finished requests", options_.path, total);
}

std::uint64_t journal::pragma_value(const char* sql) {
  sql_statement s(db_, sql);
  return s.step() ? static_cast<std::uint64_t>(s.integer(0)) : 0;
}

// The budget: the WAL may reach twice wal_budget_ (checkpointed at one, and a
// batch or a reader may hold it a little past that), the shared-memory index
// a few pages; the file's used pages get the rest. Over that, the oldest
// finished rows go until a tenth of it is free again, so that this prunes in
// bursts rather than on every batch. Unfinished rows are never pruned.
void journal::keep_under_bound() {
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
    log_->warn("journal {}: keeping it under {} bytes failed: {}", options_.path,
               options_.max_bytes, e.what());
    return;
  }
  if (pruned > 0) {
    log_->info("journal {}: pruned the {} oldest finished requests to stay under {} bytes",
               options_.path, pruned, options_.max_bytes);
  }
  if (nothing_left && used > high) {
    if (!over_bound_logged_) {
      log_->warn(
          "journal {}: {} bytes of unfinished requests, over the bound of {} bytes "
          "(--journal-max-bytes); unfinished requests are never pruned",
          options_.path, used * page_size_, options_.max_bytes);
    }
    over_bound_logged_ = true;
  } else if (used <= high) {
    over_bound_logged_ = false;
  }
  // A WAL that a reader kept from being checkpointed grows past its budget:
  // checkpoint it without waiting for anyone (PASSIVE); the next write then
  // starts it over, truncated to journal_size_limit.
  std::error_code ec;
  const std::uintmax_t wal = std::filesystem::file_size(options_.path + "-wal", ec);
  if (!ec && wal > 2 * wal_budget_) {
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
}

// ------------------------------------------------------------------ reading

std::optional<journal_record> journal::find(std::uint64_t number) {
  sql_statement s(reader_,
                  (std::string("SELECT ") + record_columns + " FROM requests WHERE number = ?1")
                      .c_str());
  s.bind(1, number);
  if (!s.step()) return std::nullopt;
  return read_record(s);
}

std::optional<std::string> journal::owner_of(std::uint64_t number) {
  sql_statement s(reader_, "SELECT coalesce(owner, '') FROM requests WHERE number = ?1");
  s.bind(1, number);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

std::vector<journal_record> journal::stored(std::size_t last, std::optional<std::string> owner) {
  std::string sql = std::string("SELECT ") + record_columns +
                    " FROM requests WHERE state = 'done' AND coalesce(stored_as, '') != ''";
  if (owner) sql += " AND coalesce(owner, '') = ?2";
  sql += " ORDER BY number DESC LIMIT ?1";
  sql_statement s(reader_, sql.c_str());
  s.bind(1, static_cast<std::uint64_t>(last));
  if (owner) s.bind_text(2, *owner);
  std::vector<journal_record> out;
  while (s.step()) out.push_back(read_record(s));
  return out;
}

std::optional<journal_record> journal::find(std::string_view client, std::string_view client_id) {
  sql_statement s(reader_, (std::string("SELECT ") + record_columns +
                            " FROM requests WHERE client = ?1 AND client_id = ?2 "
                            "ORDER BY number DESC LIMIT 1")
                               .c_str());
  s.bind_text(1, client);
  s.bind_text(2, client_id);
  if (!s.step()) return std::nullopt;
  return read_record(s);
}

std::optional<cached_reply> journal::find_reply(std::string_view client,
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

std::vector<journal_record> journal::history(std::size_t last,
                                             std::optional<request_state> state) {
  return select_history(reader_, last, state);
}

void journal::for_each_key(const std::function<void(std::string_view, std::string_view)>& visit) {
  sql_statement s(reader_,
                  "SELECT client, client_id FROM requests WHERE client IS NOT NULL "
                  "AND client_id IS NOT NULL AND state != 'refused'");
  while (s.step()) visit(s.text(0), s.text(1));
}

std::vector<journal_record> journal::read_history(const std::string& path, std::size_t last,
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
