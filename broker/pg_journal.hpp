// The journal in PostgreSQL, shared by any number of brokers of which one is
// active: the one whose writer connection holds the journal's session
// advisory lock. Opening one waits as a standby until it gets the lock, then
// takes a new term, reloads the unfinished requests and returns.
//
// Fencing: every write transaction first reads the term row FOR SHARE and
// goes on only under this journal's own term; the new leader's
// `UPDATE … SET value = value + 1` on that row waits for the old leader's
// transaction in flight and is seen by every later one, so an old leader's
// transaction either commits before the new term exists (and the new leader,
// reading after its term commits, reloads what it wrote) or fails. A journal
// whose term is gone, whose connection is lost (the lock with it) or whose
// COMMIT's outcome is unknown is fenced: it never commits again, so no reply
// it holds can leave. An idle writer checks connection and term every
// liveness_every. See docs/ha.md.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "broker/journal.hpp"
#include "broker/pg_connection.hpp"

namespace carico {

class pg_journal final : public journal {
 public:
  // Connects, creates or migrates the schema, waits as a standby until this
  // broker holds leadership (options.keep_waiting may give up), takes a new
  // term and loads the unfinished requests. Throws journal_error.
  explicit pg_journal(journal_options options, std::shared_ptr<spdlog::logger> logger = nullptr);
  ~pg_journal() override;

  // This journal's term: greater than every earlier active's.
  std::int64_t term() const { return term_; }
  // The server process of the writer connection (for tests and logs).
  int writer_pid() const { return writer_->backend_pid(); }

  std::uint64_t disk_bytes() const override { return bytes_.load(std::memory_order_acquire); }
  nlohmann::json describe() const override;

  std::optional<journal_record> find(std::uint64_t number) override;
  std::optional<journal_record> find(std::string_view client,
                                     std::string_view client_id) override;
  std::optional<std::string> owner_of(std::uint64_t number) override;
  std::vector<journal_record> done_with(std::string_view field, std::size_t last,
                                        std::optional<std::string> owner) override;
  std::optional<cached_reply> find_reply(std::string_view client,
                                         std::string_view client_id) override;
  std::vector<journal_record> history(std::size_t last,
                                      std::optional<request_state> state) override;
  void for_each_key(const std::function<void(std::string_view, std::string_view)>& visit) override;

  // Rows of a PostgreSQL journal, read without taking leadership. Throws journal_error.
  static std::vector<journal_record> read_history(const std::string& uri, std::size_t last,
                                                  std::optional<request_state> state);
  // The schema version this code writes (carico_meta.schema_version).
  static constexpr std::int64_t schema_version = 1;
  // The advisory lock whose holder is the active broker (per database).
  static constexpr std::int64_t leader_lock = 0x63617269636f4a31;  // "caricoJ1"
  // Held for a moment while the schema is created or migrated.
  static constexpr std::int64_t schema_lock = 0x63617269636f5331;  // "caricoS1"

 protected:
  void commit_batch(const journal_batch& batch) override;
  std::uint64_t prune_before(std::int64_t cutoff_ms) override;
  void keep_under_bound() override;
  void check_alive() override;
  bool checks_alive() const override { return true; }

 private:
  void create_schema();
  void wait_for_leadership();
  // One transaction: term + 1, the numbers above every one used, a reservation.
  void take_term();
  void load_unfinished();
  // Runs body in a transaction under this journal's term. Throws
  // journal_fenced (stale term, lost connection, unknown COMMIT outcome) or
  // journal_error (rolled back, may be retried).
  template <class Body>
  void under_term(Body&& body);
  void measure_size();

  std::unique_ptr<pg_connection> writer_;  // holds the lock; writer thread after open
  std::unique_ptr<pg_connection> reader_;  // lookups (posting thread)
  std::int64_t term_{0};                   // see term()
  std::atomic<std::uint64_t> bytes_{0};    // see disk_bytes() (writer thread measures)
  std::chrono::steady_clock::time_point next_measure_{};  // writer thread
  std::uint64_t bound_pruned_at_{0};       // size when the bound last pruned (writer)
};

}  // namespace carico
