// The broker's request journal: one SQLite row per request, written by a
// background thread in group commits, so that requests survive a broker restart
// and a resend of a request already answered gets the very same reply.
//
//   carico::journal j({.path = "carico-journal.db"}, log);   // throws journal_error
//   for (auto& u : j.take_unfinished()) requeue(u);            // once, before serving
//   std::uint64_t seq = j.post(std::move(event));              // never waits on disk
//   if (j.committed() >= seq) { /* the event is in the file */ }
//
// post() is called from one thread (the broker's); the lookups use a second,
// read-only connection and are meant for that same thread. The writer thread
// calls options.on_commit after every transaction and when writable() changes.
//
// A write that fails (disk full, I/O error) loses nothing: the writer keeps
// the batch, retries it every retry_every, and committed() stays where it was
// until a retry succeeds; writable() is false meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "broker/duration_histogram.hpp"
#include "broker/reply_cache.hpp"

struct sqlite3;

namespace carico {

// A journal that cannot be used: corrupt, locked by another broker, unwritable.
class journal_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class request_state { queued, dispatched, done, failed, expired, refused };
std::string_view request_state_name(request_state s);
std::optional<request_state> parse_request_state(std::string_view name);
// done, failed, expired and refused rows are final.
inline bool is_final(request_state s) {
  return s != request_state::queued && s != request_state::dispatched;
}

// "7d", "12h", "30m", "45s" or plain seconds; nothing for anything else.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// "1GiB", "8MiB", "512KiB" (also "1G", "8M", "512K"), "10MB" (decimal) or plain
// bytes; nothing for anything else or more than 2^62.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

// Milliseconds since the Unix epoch, as the journal stores times.
std::int64_t unix_ms();
// The steady-clock time of an event `then_ms` (unix ms) ago, given that now is
// `now` and `now_ms`; never later than now (the wall clock may have stepped).
inline std::chrono::steady_clock::time_point steady_time_of(
    std::int64_t then_ms, std::chrono::steady_clock::time_point now, std::int64_t now_ms) {
  return now - std::chrono::milliseconds(now_ms > then_ms ? now_ms - then_ms : 0);
}

// One request as the journal (or mmi.request) describes it.
struct journal_record {
  std::uint64_t number{0};            // the broker's request number
  std::string client;                 // header `client`, empty if none
  std::string client_id;              // header `id` as JSON text, empty if none
  std::string service;                // the service asked for
  std::string title;                  // header `title`, empty if none
  std::uint64_t bytes{0};             // payload size
  request_state state{request_state::queued};  // where it is
  std::string worker;                 // the worker that last held it
  std::uint64_t attempts{0};          // workers given it
  std::int64_t received_ms{0};        // unix ms; 0 when unknown
  std::int64_t dispatched_ms{0};      // unix ms of the last dispatch; 0 when never
  std::int64_t completed_ms{0};       // unix ms of the answer; 0 while unanswered
  std::uint64_t code{0};              // reply code; 0 while unanswered
  std::optional<std::uint64_t> count_a;  // result.count_a, when the reply had one
  std::string stored_as;              // result.stored_as, when the reply had one
  std::string owner;                  // the client's ZAP User-Id (its name on the
                                      // --curve allow list); empty without curve. Written
                                      // with the row, read by owner_of(), not by find()

  // The `mmi.request` / `--json` form: absent values are left out.
  nlohmann::json to_json() const;
};

// An unfinished request reloaded at start, to be queued again.
struct journal_unfinished {
  journal_record record;  // its row
  std::string head;       // the encoded request header, as forwarded to workers
  std::string payload;    // the client's payload
};

// A finished request's reply, for a resend of the same (client, id).
// One change to the journal, posted by the broker and applied by the writer.
struct journal_event {
  enum class kind : std::uint8_t { received, dispatched, finished, refused, stop };
  kind what{kind::received};          // which change
  std::uint64_t seq{0};               // set by post(): position in the stream
  journal_record row;                 // the fields this kind sets
  std::string head;                   // received: request header; finished: reply header
  std::string body;                   // finished: reply frames 4.., see encode_frames()
  zmq::message_t payload;             // received: a copy sharing the client's buffer
};

// Frames packed into one blob (a MessagePack array of bin) and back.
std::string encode_frames(const std::vector<zmq::message_t>& frames);
std::vector<std::string> decode_frames(std::string_view blob);

struct journal_options {
  std::string path{};  // the SQLite file
  // Finished rows kept this long, and how often that is applied.
  std::chrono::milliseconds keep = std::chrono::hours(24 * 7);
  std::chrono::milliseconds prune_every = std::chrono::minutes(1);
  // The file, its WAL and its shared-memory index stay under this (the
  // oldest finished rows are pruned, see keep_under_bound); 0: no bound.
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  // How often a write that failed is tried again, and for how long at a stop.
  std::chrono::milliseconds retry_every = std::chrono::milliseconds(200);
  std::chrono::milliseconds stop_grace = std::chrono::seconds(2);
  // Writer thread: after each commit and each change of writable().
  std::function<void()> on_commit{};
};

// Whether the journal can be written, for mmi.stats.
struct journal_health {
  bool writable{true};        // the last write succeeded
  std::string error;          // why the last write failed, while not writable
  std::int64_t since_ms{0};   // unix ms of the last change (or of the open)
  std::uint64_t attempts{0};  // failed writes in this streak
  std::uint64_t waiting{0};   // events kept for the next retry
};

class journal {
 public:
  // Opens (or creates) the file, takes its lock, checks it and loads the
  // unfinished requests. Throws journal_error saying what is wrong.
  journal(journal_options options, std::shared_ptr<spdlog::logger> logger = nullptr);
  // Commits everything posted, then stops the writer; a journal that cannot
  // be written gets stop_grace more tries, then what it holds is given up.
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  const std::string& path() const { return options_.path; }
  // The first request number this run may use: above every number ever used.
  std::uint64_t first_number() const { return first_number_; }
  // Numbers up to this one are reserved in the file (meta.reserved_number,
  // committed): should the broker die, the next run starts above them. So a
  // request numbered at most reserved() may reach a worker before its own row
  // is committed and its number can still never be used twice. The writer
  // moves the reservation reserve_block ahead of the numbers it writes; a
  // clean close drops it, so numbers stay dense across clean restarts.
  std::uint64_t reserved() const { return reserved_.load(std::memory_order_acquire); }
  static constexpr std::uint64_t reserve_block = 65536;
  // The unfinished requests found at open, oldest first; empty after the first call.
  std::vector<journal_unfinished> take_unfinished();

  // Queues an event for the writer; returns its sequence number. Never blocks on disk.
  std::uint64_t post(journal_event&& event);
  // The highest sequence number committed to the file; it does not move while
  // a write fails. Dispatch notes may trail it by one batch (they gate
  // nothing); a flush() writes them too.
  std::uint64_t committed() const { return committed_.load(std::memory_order_acquire); }
  // The highest sequence number posted.
  std::uint64_t posted() const { return posted_; }
  // Blocks until everything posted so far is committed, dispatch notes
  // included; returns false at once, or as soon as a write fails, while the
  // journal is not writable (nothing is committed then).
  bool flush();
  // False from a failed write until a retry succeeds; a cheap load.
  bool writable() const { return writable_.load(std::memory_order_acquire); }
  journal_health health() const;
  // Bytes of the file, its WAL and its shared-memory index on disk now.
  std::uint64_t disk_bytes() const;
  // For the HTTP port (broker_monitor), from any thread: the seconds each
  // write transaction took.
  duration_histogram commit_latency() const;

  // Lookups on the committed rows (read connection; the posting thread only).
  std::optional<journal_record> find(std::uint64_t number);
  std::optional<journal_record> find(std::string_view client, std::string_view client_id);
  // The owner recorded for request `number` ("" for none); nothing when no row.
  std::optional<std::string> owner_of(std::uint64_t number);
  // The newest `last` requests answered 200 with a stored file, newest first;
  // with owner, only that owner's.
  std::vector<journal_record> stored(std::size_t last, std::optional<std::string> owner);
  // The reply of a finished request (refused ones excluded), by its key.
  std::optional<cached_reply> find_reply(std::string_view client, std::string_view client_id);
  // The newest `last` rows, newest first, optionally of one state only.
  std::vector<journal_record> history(std::size_t last,
                                      std::optional<request_state> state = std::nullopt);
  // Every (client, client_id) key in the file, for the broker's key filter.
  void for_each_key(const std::function<void(std::string_view, std::string_view)>& visit);

  // Rows of a journal file opened read-only, for `carico-broker journal`; does
  // not take the lock, so it works while a broker runs. Throws journal_error.
  static std::vector<journal_record> read_history(const std::string& path, std::size_t last,
                                                  std::optional<request_state> state);

 private:
  void open_files();
  void load_unfinished();
  void writer_loop();
  // Writes carried then batch in one transaction; with hold, dispatch notes
  // that may wait one more batch are moved there instead of written. Returns
  // false when the transaction failed (why in error): nothing moved or written.
  bool write_batch(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                   std::vector<journal_event>* hold, std::string& error);
  // Records a failed write (logged once per streak) or a success after some.
  void note_write_failed(const std::string& error);
  void note_write_succeeded();
  void prune();
  // Prunes the oldest finished rows while the file's used pages are over
  // their budget, gives freed pages back when it can, and truncates a WAL
  // that outgrew its budget; a few milliseconds at most, on the writer thread.
  void keep_under_bound();
  std::uint64_t pragma_value(const char* sql);

  journal_options options_;               // as configured
  std::shared_ptr<spdlog::logger> log_;   // never null
  int lock_fd_{-1};                       // flock on PATH.lock: one broker per file
  sqlite3* db_{nullptr};                  // writer connection (writer thread after open)
  sqlite3* reader_{nullptr};              // read connection (posting thread)
  std::uint64_t first_number_{1};         // see first_number()
  std::uint64_t max_number_{0};           // highest number written (writer thread)
  std::uint64_t reserving_{0};            // reservation written, maybe not committed (writer)
  std::atomic<std::uint64_t> reserved_{0};  // reservation committed, see reserved()
  struct writer_statements;
  std::unique_ptr<writer_statements> writes_;  // prepared on db_, used by the writer thread
  std::vector<journal_unfinished> unfinished_;  // loaded at open

  mutable std::mutex mutex_;              // guards queue_, health_
  std::condition_variable wake_;          // signals queue_ not empty
  std::condition_variable flushed_;       // signals committed_ moved
  std::vector<journal_event> queue_;      // posted, not yet taken by the writer
  std::uint64_t posted_{0};               // last seq handed out (posting thread)
  std::uint64_t max_posted_{0};           // highest request number posted (posting thread)
  std::atomic<std::uint64_t> committed_{0};  // last seq committed (dispatch notes may trail)
  std::uint64_t flushes_wanted_{0};       // flush() calls made (guarded by mutex_)
  std::uint64_t flushes_done_{0};         // flush() calls the writer has fully served
  std::atomic<bool> writable_{true};      // see writable(); changed under mutex_
  journal_health health_;                 // see health() (guarded by mutex_)
  mutable std::mutex latency_mutex_;      // guards commit_seconds_
  duration_histogram commit_seconds_;     // see commit_latency() (writer thread writes)
  std::chrono::steady_clock::time_point next_prune_;  // writer thread
  std::uint64_t wal_budget_{0};           // bytes the WAL may use (0: SQLite's defaults)
  std::uint64_t page_size_{4096};         // the file's page size
  bool can_shrink_{false};                // auto_vacuum = incremental: freed pages can go
  bool over_bound_logged_{false};         // "cannot prune enough" said once
  std::thread writer_;                    // runs writer_loop()
};

}  // namespace carico
