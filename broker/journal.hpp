// The broker's request journal: one row per request, written by a background
// thread in group commits, so that requests survive a broker restart and a
// resend of a request already answered gets the very same reply. Two
// backends implement it: sqlite_journal (a file, the default) and pg_journal
// (PostgreSQL, shared by active and standby brokers); open_journal() picks one.
//
//   auto j = carico::open_journal({.path = "carico-journal.db"}, log);  // throws journal_error
//   for (auto& u : j->take_unfinished()) requeue(u);           // once, before serving
//   std::uint64_t seq = j->post(std::move(event));             // never waits on disk
//   if (j->committed() >= seq) { /* the event is committed */ }
//
// post() is called from one thread (the broker's); the lookups use a second,
// read-only connection and are meant for that same thread. The writer thread
// calls options.on_commit after every transaction, when writable() changes
// and when the journal is fenced.
//
// A write that fails (disk full, I/O error) loses nothing: the writer keeps
// the batch, retries it every retry_every, and committed() stays where it was
// until a retry succeeds; writable() is false meanwhile. A journal that is
// fenced (PostgreSQL: another broker took over) never commits again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "broker/duration_histogram.hpp"
#include "broker/journal_batch.hpp"
#include "broker/journal_record.hpp"
#include "broker/reply_cache.hpp"

namespace carico {

class journal {
 public:
  // Commits everything posted, then stops the writer (each backend's
  // destructor calls stop_writer() first); a journal that cannot be written
  // gets stop_grace more tries, then what it holds is given up.
  virtual ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  // The SQLite path or the PostgreSQL URI (its password left out).
  const std::string& path() const { return name_; }
  // The first request number this run may use: above every number ever used.
  std::uint64_t first_number() const { return first_number_; }
  // Numbers up to this one are reserved in the journal (its meta table,
  // committed): should the broker die, the next run starts above them. So a
  // request numbered at most reserved() may reach a worker before its own row
  // is committed and its number can still never be used twice. The writer
  // moves the reservation reserve_block ahead of the numbers it writes; a
  // clean close drops it, so numbers stay dense across clean restarts.
  std::uint64_t reserved() const { return reserved_.load(std::memory_order_acquire); }
  static constexpr std::uint64_t reserve_block = 65536;
  // How long a dispatch note may wait for its request's answer, to be written
  // with it as one statement instead of two. It only steers a restart (a
  // request found dispatched goes back to the same worker first), so a crash
  // within this time costs that preference, nothing else; an idle writer and
  // flush() write every note at once.
  static constexpr std::int64_t dispatch_note_wait_ms = 100;
  // The unfinished requests found at open, oldest first; empty after the first call.
  std::vector<journal_unfinished> take_unfinished() { return std::move(unfinished_); }

  // Queues an event for the writer; returns its sequence number. Never blocks on disk.
  std::uint64_t post(journal_event&& event);
  // For a thread that posts in bursts (the broker's loop): from now on post()
  // keeps events in a list of the poster's own, and hand_over() passes them
  // all to the writer under one lock and one wake-up, instead of one of each
  // per event. The poster must call hand_over() before it waits for a commit
  // (the broker: at the end of each pass); flush() and closing do it themselves.
  void defer_posts() { deferred_ = true; }
  void hand_over();
  // The highest sequence number committed; it does not move while a write
  // fails, nor ever again once fenced. Dispatch notes may trail it by up to
  // dispatch_note_wait_ms (they gate nothing); a flush() writes them too.
  std::uint64_t committed() const { return committed_.load(std::memory_order_acquire); }
  // The highest sequence number posted.
  std::uint64_t posted() const { return posted_; }
  // Blocks until everything posted so far is committed, dispatch notes
  // included; returns false at once, or as soon as a write fails, while the
  // journal is not writable (nothing is committed then).
  bool flush();
  // False from a failed write until a retry succeeds, and for ever once
  // fenced; a cheap load.
  bool writable() const { return writable_.load(std::memory_order_acquire); }
  // True once this journal may no longer write (PostgreSQL: another broker
  // took over, or leadership or the connection was lost): the broker must
  // stop serving at once. Why: health().error. A cheap load.
  bool fenced() const { return fenced_.load(std::memory_order_acquire); }
  journal_health health() const;
  // Replaces options.on_commit (the broker's, on a journal main.cpp opened);
  // from any thread.
  void set_on_commit(std::function<void()> callback);
  // Bytes the journal takes on disk now (SQLite: file, WAL, index; PostgreSQL:
  // the tables as last measured by the writer).
  virtual std::uint64_t disk_bytes() const = 0;
  // For mmi.stats: {"backend": "sqlite"|"postgresql", ...} (PostgreSQL adds
  // "term" and "active").
  virtual nlohmann::json describe() const = 0;
  // For the HTTP port (broker_monitor), from any thread: the seconds each
  // write transaction took.
  duration_histogram commit_latency() const;

  // Lookups on the committed rows (read connection; the posting thread only).
  virtual std::optional<journal_record> find(std::uint64_t number) = 0;
  virtual std::optional<journal_record> find(std::string_view client,
                                             std::string_view client_id) = 0;
  // The owner recorded for request `number` ("" for none); nothing when no row.
  virtual std::optional<std::string> owner_of(std::uint64_t number) = 0;
  // The newest `last` requests answered 200 whose result has a non-empty
  // string `field`, newest first; with owner, only that owner's.
  virtual std::vector<journal_record> done_with(std::string_view field, std::size_t last,
                                                std::optional<std::string> owner) = 0;
  // The reply of a finished request (refused ones excluded), by its key.
  virtual std::optional<cached_reply> find_reply(std::string_view client,
                                                 std::string_view client_id) = 0;
  // The newest `last` rows, newest first, optionally of one state only.
  virtual std::vector<journal_record> history(
      std::size_t last, std::optional<request_state> state = std::nullopt) = 0;
  // Every (client, client_id) key in the journal, for the broker's key filter.
  virtual void for_each_key(
      const std::function<void(std::string_view, std::string_view)>& visit) = 0;

 protected:
  journal(journal_options options, std::shared_ptr<spdlog::logger> logger, std::string name);

  // For the backend's constructor, once it holds the journal and has read it:
  // numbers above `max_number` are this run's, up to the reservation it wrote.
  void set_numbers(std::uint64_t max_number, std::uint64_t reserving);
  void add_unfinished(journal_unfinished&& u) { unfinished_.push_back(std::move(u)); }
  // Starts the writer thread (end of the backend's constructor); stops it
  // after writing what was posted (start of the backend's destructor).
  void start_writer();
  void stop_writer();
  // Writer thread: marks the journal fenced (logged once, on_commit called).
  void note_fenced(const std::string& why);

  // ---- what a backend implements; writer thread only
  // Writes one batch in one transaction; throws journal_error (nothing
  // written, retried later) or journal_fenced (nothing written, ever again).
  virtual void commit_batch(const journal_batch& batch) = 0;
  // Deletes finished rows completed before cutoff_ms; returns how many.
  virtual std::uint64_t prune_before(std::int64_t cutoff_ms) = 0;
  // Keeps the journal under options.max_bytes (called after commits).
  virtual void keep_under_bound() = 0;
  // Called when the writer has been idle for options.liveness_every: checks
  // that it may still write (throws journal_fenced if not). Default: nothing.
  virtual void check_alive() {}
  // Whether check_alive() does anything (so an idle writer wakes for it).
  virtual bool checks_alive() const { return false; }

  journal_options options_;               // as configured
  std::shared_ptr<spdlog::logger> log_;   // never null

 private:
  void writer_loop();
  // Writes carried then batch in one transaction; with hold, dispatch notes
  // that may wait for their answer (see fold_events) are moved there instead
  // of written. Returns
  // false when the transaction failed (why in error): nothing moved or written.
  bool write_batch(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                   std::vector<journal_event>* hold, std::string& error);
  // Records a failed write (logged once per streak) or a success after some.
  void note_write_failed(const std::string& error);
  void note_write_succeeded();
  void prune();
  void notify();

  std::string name_;                      // see path()
  std::uint64_t first_number_{1};         // see first_number()
  std::uint64_t max_number_{0};           // highest number written (writer thread)
  std::uint64_t reserving_{0};            // reservation written, maybe not committed (writer)
  std::atomic<std::uint64_t> reserved_{0};  // reservation committed, see reserved()
  std::vector<journal_unfinished> unfinished_;  // loaded at open

  mutable std::mutex mutex_;              // guards queue_, health_
  std::condition_variable wake_;          // signals queue_ not empty
  std::condition_variable flushed_;       // signals committed_ moved
  std::vector<journal_event> queue_;      // posted, not yet taken by the writer
  bool deferred_{false};                  // see defer_posts() (posting thread)
  std::vector<journal_event> pending_;    // posted, not yet handed over (posting thread)
  std::uint64_t posted_{0};               // last seq handed out (posting thread)
  std::atomic<std::uint64_t> committed_{0};  // last seq committed (dispatch notes may trail)
  std::uint64_t flushes_wanted_{0};       // flush() calls made (guarded by mutex_)
  std::uint64_t flushes_done_{0};         // flush() calls the writer has fully served
  std::atomic<bool> writable_{true};      // see writable(); changed under mutex_
  std::atomic<bool> fenced_{false};       // see fenced(); set under mutex_
  journal_health health_;                 // see health() (guarded by mutex_)
  std::mutex callback_mutex_;             // guards options_.on_commit
  mutable std::mutex latency_mutex_;      // guards commit_seconds_
  duration_histogram commit_seconds_;     // see commit_latency() (writer thread writes)
  std::chrono::steady_clock::time_point next_prune_;  // writer thread
  std::thread writer_;                    // runs writer_loop()

 protected:
  std::uint64_t max_posted_{0};           // highest request number posted (posting thread)
};

// A PostgreSQL connection URI (postgresql://… or postgres://…)?
bool is_postgresql_uri(std::string_view path);
// Opens the journal `options.path` names: PostgreSQL for a URI (waiting as a
// standby until this broker holds leadership), else a SQLite file. Throws
// journal_error saying what is wrong.
std::unique_ptr<journal> open_journal(journal_options options,
                                      std::shared_ptr<spdlog::logger> logger = nullptr);
// Rows of a journal opened read-only, for `carico-broker journal`: works while
// a broker runs. Throws journal_error.
std::vector<journal_record> read_journal_history(const std::string& path, std::size_t last,
                                                 std::optional<request_state> state);

}  // namespace carico
