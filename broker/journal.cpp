#include "broker/journal.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

#include "broker/pg_journal.hpp"
#include "broker/sqlite_journal.hpp"
#include "shared/logging.hpp"

namespace carico {

bool is_postgresql_uri(std::string_view path) {
  return path.starts_with("postgresql://") || path.starts_with("postgres://");
}

std::unique_ptr<journal> open_journal(journal_options options,
                                      std::shared_ptr<spdlog::logger> logger) {
  if (is_postgresql_uri(options.path)) {
    return std::make_unique<pg_journal>(std::move(options), std::move(logger));
  }
  return std::make_unique<sqlite_journal>(std::move(options), std::move(logger));
}

std::vector<journal_record> read_journal_history(const std::string& path, std::size_t last,
                                                 std::optional<request_state> state) {
  if (is_postgresql_uri(path)) return pg_journal::read_history(path, last, state);
  return sqlite_journal::read_history(path, last, state);
}

journal::journal(journal_options options, std::shared_ptr<spdlog::logger> logger,
                 std::string name)
    : options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      name_(std::move(name)) {}

journal::~journal() {
  // A backend that forgot stop_writer() would have its virtual functions
  // called by the writer while it is being destroyed.
  if (writer_.joinable()) std::terminate();
}

void journal::set_numbers(std::uint64_t max_number, std::uint64_t reserving) {
  max_number_ = max_number;
  first_number_ = max_number + 1;
  reserving_ = reserving;
  reserved_.store(reserving, std::memory_order_release);
}

void journal::start_writer() {
  next_prune_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  health_.since_ms = unix_ms();
  writer_ = std::thread([this] { writer_loop(); });
}

void journal::stop_writer() {
  if (!writer_.joinable()) return;
  journal_event stop;
  stop.what = journal_event::kind::stop;
  post(std::move(stop));
  hand_over();
  writer_.join();
}

void journal::notify() {
  std::lock_guard lock(callback_mutex_);
  if (options_.on_commit) options_.on_commit();
}

void journal::set_on_commit(std::function<void()> callback) {
  std::lock_guard lock(callback_mutex_);
  options_.on_commit = std::move(callback);
}

void journal::note_fenced(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (fenced_.load(std::memory_order_relaxed)) return;
    health_.writable = false;
    health_.error = why;
    health_.since_ms = unix_ms();
    writable_.store(false, std::memory_order_release);
    fenced_.store(true, std::memory_order_release);
  }
  flushed_.notify_all();
  log_->critical("journal {}: fenced, this broker may no longer write it: {}", name_, why);
  notify();
}

std::uint64_t journal::post(journal_event&& event) {
  const std::uint64_t seq = ++posted_;
  event.seq = seq;
  max_posted_ = std::max(max_posted_, event.row.number);
  if (deferred_) {
    pending_.push_back(std::move(event));
    return seq;
  }
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(event));
  }
  wake_.notify_one();
  return seq;
}

void journal::hand_over() {
  if (pending_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      queue_.swap(pending_);
    } else {
      std::move(pending_.begin(), pending_.end(), std::back_inserter(queue_));
    }
  }
  pending_.clear();
  wake_.notify_one();
}

bool journal::flush() {
  hand_over();
  const std::uint64_t target = posted_;
  std::unique_lock lock(mutex_);
  ++flushes_wanted_;
  wake_.notify_one();
  flushed_.wait(lock, [&] {
    return (committed() >= target && flushes_done_ >= flushes_wanted_) || !writable() ||
           fenced();
  });
  return committed() >= target;
}

journal_health journal::health() const {
  std::lock_guard lock(mutex_);
  return health_;
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
      name_, error, options_.retry_every.count());
  notify();
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
      name_, unix_ms() - was.since_ms, was.attempts);
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
  clock::time_point next_check = clock::now() + options_.liveness_every;  // check_alive()
  for (;;) {
    if (fenced()) {
      // Nothing may be committed any more: what is posted is dropped, and a
      // stop (maybe in the batch that failed) ends the writer at once, with
      // no grace: every write would fail.
      if (!stopping) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] {
          return !queue_.empty() && queue_.back().what == journal_event::kind::stop;
        });
        queue_.clear();
      }
      break;
    }
    std::uint64_t flushes = 0;
    {
      std::unique_lock lock(mutex_);
      if (!writable()) {
        wake_.wait_until(lock, next_retry, [&] {
          return !queue_.empty() && queue_.back().what == journal_event::kind::stop;
        });
      } else {
        auto deadline =
            carried.empty() ? next_prune_
                            : std::min(next_prune_, clock::now() + std::chrono::milliseconds(20));
        if (checks_alive()) deadline = std::min(deadline, next_check);
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
        if (fenced()) continue;  // final: see the top of the loop
        note_write_failed(error);
        next_retry = clock::now() + options_.retry_every;
        if (stopping) {
          if (!give_up_at) give_up_at = clock::now() + options_.stop_grace;
          if (clock::now() >= *give_up_at) {
            log_->error(
                "journal {}: stopping with {} events never written ({}); the replies "
                "they gate were not sent",
                name_, batch.size() - 1, error);
            break;
          }
        }
        std::lock_guard lock(mutex_);
        health_.waiting = batch.size();
        continue;
      }
      note_write_succeeded();
      next_check = clock::now() + options_.liveness_every;
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
      notify();
      if (options_.max_bytes > 0) {
        try {
          keep_under_bound();  // two cached reads when under
        } catch (const journal_fenced& e) {
          note_fenced(e.what());
        }
      }
    } else if (flushes > flushes_done_) {
      {
        std::lock_guard lock(mutex_);
        flushes_done_ = flushes;
      }
      flushed_.notify_all();
    }
    if (stopping) break;
    try {
      if (checks_alive() && writable() && clock::now() >= next_check) {
        check_alive();
        next_check = clock::now() + options_.liveness_every;
      }
      if (clock::now() >= next_prune_) {
        prune();
        next_prune_ = clock::now() + options_.prune_every;
      }
    } catch (const journal_fenced& e) {
      note_fenced(e.what());
    }
  }
}

bool journal::write_batch(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                          std::vector<journal_event>* hold, std::string& error) {
  for (journal_event& e : batch) {
    // A result already there was rendered before (a batch written again after a failure).
    if (e.what != journal_event::kind::finished || !e.row.result.empty()) continue;
    if (!e.head.empty()) e.row.result = result_json_of(e.head);
  }
  std::vector<journal_event*> held;
  std::uint64_t batch_max = 0;
  const std::int64_t hold_after_ms = hold != nullptr
                                        ? unix_ms() - dispatch_note_wait_ms
                                        : std::numeric_limits<std::int64_t>::max();
  journal_batch b = fold_events(carried, batch, hold_after_ms, held, batch_max);
  // Held notes are moved out only once the rest is committed: a failed
  // transaction leaves every event where it was, for the retry.
  const auto move_held = [&] {
    for (journal_event* e : held) hold->push_back(std::move(*e));
  };
  if (b.rows.empty()) {
    move_held();
    return true;
  }
  // meta.max_number moves only with the reservation: while this run holds a
  // reservation, it (above every number written) is what a next run starts
  // above, and a clean close writes the exact maximum. So a batch touches
  // the meta table once per reserve_block / 2 numbers, not every time.
  std::uint64_t reserving = reserving_;
  if (batch_max + reserve_block / 2 > reserving) {
    reserving = batch_max + reserve_block;
    b.reserve = reserving;
    if (batch_max > max_number_) b.high_water = batch_max;
  }
  const auto began = std::chrono::steady_clock::now();
  try {
    commit_batch(b);
  } catch (const journal_fenced& e) {
    note_fenced(e.what());
    error = e.what();
    return false;
  } catch (const journal_error& e) {
    error = e.what();
    return false;
  }
  max_number_ = std::max(max_number_, batch_max);  // only what the journal now holds
  reserving_ = reserving;
  reserved_.store(reserving_, std::memory_order_release);
  {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
    std::lock_guard lock(latency_mutex_);
    commit_seconds_.observe(took.count());
  }
  move_held();
  return true;
}

duration_histogram journal::commit_latency() const {
  std::lock_guard lock(latency_mutex_);
  return commit_seconds_;
}

void journal::prune() {
  const std::uint64_t total = prune_before(unix_ms() - options_.keep.count());
  if (total > 0) log_->info("journal {}: pruned {} finished requests", name_, total);
}

}  // namespace carico

