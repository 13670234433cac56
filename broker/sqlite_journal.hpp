// The journal in one SQLite file (WAL mode), the default: a flock on
// PATH.lock keeps it to one broker; a second, read-only connection serves
// the lookups. See journal.hpp for the promises.
#pragma once

#include <memory>

#include "broker/journal.hpp"
#include "broker/open_numbers.hpp"

struct sqlite3;

namespace carico {

class sqlite_journal final : public journal {
 public:
  // Opens (or creates, or migrates in place) the file, takes its lock, checks
  // it and loads the unfinished requests. Throws journal_error saying what is wrong.
  explicit sqlite_journal(journal_options options,
                          std::shared_ptr<spdlog::logger> logger = nullptr);
  ~sqlite_journal() override;

  std::uint64_t disk_bytes() const override;
  nlohmann::json describe() const override { return {{"backend", "sqlite"}}; }

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

  // Rows of a journal file opened read-only; does not take the lock, so it
  // works while a broker runs. Throws journal_error.
  static std::vector<journal_record> read_history(const std::string& path, std::size_t last,
                                                  std::optional<request_state> state);
  // The schema version this code writes (meta.schema_version).
  static constexpr int schema_version = 2;

 protected:
  void commit_batch(const journal_batch& batch) override;
  std::uint64_t prune_before(std::int64_t cutoff_ms) override;
  // Prunes the oldest finished rows while the file's used pages are over
  // their budget, gives freed pages back when it can, and truncates a WAL
  // that outgrew its budget; a few milliseconds at most, on the writer thread.
  void keep_under_bound() override;

 private:
  void open_files();
  // Creates the schema or brings an older file to schema_version, in place.
  void migrate();
  void load_unfinished();
  std::uint64_t pragma_value(const char* sql);

  int lock_fd_{-1};                       // flock on PATH.lock: one broker per file
  sqlite3* db_{nullptr};                  // writer connection (writer thread after open)
  sqlite3* reader_{nullptr};              // read connection (posting thread)
  struct writer_statements;
  std::unique_ptr<writer_statements> writes_;  // prepared on db_, used by the writer thread
  std::uint64_t wal_budget_{0};           // bytes the WAL may use (0: SQLite's defaults)
  std::uint64_t page_size_{4096};         // the file's page size
  bool can_shrink_{false};                // auto_vacuum = incremental: freed pages can go
  bool over_bound_logged_{false};         // "cannot prune enough" said once
  // The unfinished rows' numbers (writer thread after open; the destructor
  // after the writer stops), and the meta.unfinished_from last committed.
  open_numbers open_;
  std::uint64_t floor_written_{0};
};

}  // namespace carico
