// How a SQLite journal finds its unfinished rows at a start without an index
// on them: open_numbers against a plain model, and meta.unfinished_from
// through reservations, finishes, a row opened below it, a crash (the files
// copied while the journal is open) and a file written before it existed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "broker/journal.hpp"
#include "broker/open_numbers.hpp"
#include "tests/support/journal_events.hpp"
#include "tests/support/scratch_files.hpp"

using namespace carico;
using namespace carico::test;
namespace fs = std::filesystem;

namespace {

// Runs sql on the file with a connection of its own; the first column of
// its first row, or -1 when it returns none.
std::int64_t query(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
  const int rc = sqlite3_step(s);
  const std::int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  REQUIRE((rc == SQLITE_ROW || rc == SQLITE_DONE));
  return value;
}

std::int64_t unfinished_from(const std::string& path) {
  return query(path, "SELECT value FROM meta WHERE key = 'unfinished_from'");
}

// The file as a crash would leave it: its database and WAL copied now, the
// journal still open, into `to`.
void copy_as_crashed(const std::string& from, const std::string& to) {
  fs::copy_file(from, to);
  if (fs::exists(from + "-wal")) fs::copy_file(from + "-wal", to + "-wal");
}

// The numbers a journal opened on path reloads as unfinished.
std::vector<std::uint64_t> reloaded(const std::string& path) {
  auto j = open_journal({.path = path});
  std::vector<std::uint64_t> numbers;
  for (const journal_unfinished& u : j->take_unfinished()) numbers.push_back(u.record.number);
  return numbers;
}

void answer(journal& j, std::uint64_t number) { j.post(finished_event(number, 200, "r")); }
void receive(journal& j, std::uint64_t number) {
  j.post(received_event(number, std::to_string(number), "p"));
}

}  // namespace

TEST_CASE("open_numbers: its floor is at most the lowest open number, and close to it",
          "[journal]") {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 random(seed);
    open_numbers open(1000);
    std::set<std::uint64_t> model;
    std::uint64_t next = 1000;
    for (int step = 0; step < 50000; ++step) {
      const std::uint64_t roll = random() % 100;
      if (roll < 50) {
        model.insert(next);
        open.open(next);
        next += 1 + random() % 3;  // some numbers never get a row
      } else if (roll < 52 && next > 1200) {
        // A number from the past opened again (a reloaded request).
        const std::uint64_t old = next - 1 - random() % 200;
        model.insert(old);
        open.open(old);
      } else if (!model.empty()) {
        // Mostly the oldest; sometimes one from the middle, or one never opened.
        std::uint64_t n = *model.begin();
        if (roll >= 90) {
          auto it = model.lower_bound(n + random() % 300);
          n = it == model.end() ? n : *it;
        } else if (roll >= 85) {
          n = next + 5;
        }
        model.erase(n);
        open.close(n);
      }
      INFO("seed " << seed << ", step " << step);
      REQUIRE(open.size() == model.size());
      REQUIRE(open.floor() % 64 == 0);
      if (!model.empty()) {
        REQUIRE(open.floor() <= *model.begin());
        REQUIRE(*model.begin() - open.floor() < 64);
      }
    }
  }
}

TEST_CASE("open_numbers: a number left open while many pass is kept apart, in bounded memory",
          "[journal]") {
  open_numbers open;
  open.open(5);
  const std::uint64_t passing = 3 * open_numbers::window_numbers;
  for (std::uint64_t n = 100; n < 100 + passing; ++n) {
    open.open(n);
    if (n >= 110) open.close(n - 10);  // ten in flight
  }
  CHECK(open.size() == 11);
  CHECK(open.stragglers() == 1);  // 5, and nothing else left the window
  CHECK(open.floor() == 0);
  // An old number opened again joins the stragglers; the floor follows it.
  open.open(3);
  CHECK(open.floor() == 0);
  open.close(5);
  CHECK(open.floor() == 0);
  open.close(3);
  CHECK(open.stragglers() == 0);
  CHECK(open.floor() <= 100 + passing - 10);
  CHECK(100 + passing - 10 - open.floor() < 64);
  // Nothing open: a number far above starts the window over.
  for (std::uint64_t n = 100 + passing - 10; n < 100 + passing; ++n) open.close(n);
  CHECK(open.size() == 0);
  open.open(10'000'000);
  CHECK(open.floor() == 10'000'000 - 10'000'000 % 64);
}

TEST_CASE("a start finds every unfinished row from meta.unfinished_from, crash or not",
          "[journal]") {
  scratch_dir dir("journal-floor");
  const std::string path = dir / "j.db";
  {
    auto j = open_journal({.path = path});
    receive(*j, 1);  // unfinished through most of the test: the floor stays at or below it
    for (std::uint64_t n = 2; n <= 200; ++n) {
      receive(*j, n);
      answer(*j, n);
    }
    j->flush();
    CHECK(unfinished_from(path) <= 1);

    // 1 answered; 40,000 to 40,010 received, all but 40,005 answered; the
    // number 40,010 moves the reservation, and the floor with it.
    answer(*j, 1);
    for (std::uint64_t n = 40000; n <= 40010; ++n) receive(*j, n);
    j->flush();
    for (std::uint64_t n = 40000; n <= 40010; ++n) {
      if (n != 40005) answer(*j, n);
    }
    j->flush();
    receive(*j, 80000);  // the next reservation: the floor just below 40,005
    j->flush();
    CHECK(unfinished_from(path) <= 40005);
    CHECK(unfinished_from(path) > 40005 - 64);
    copy_as_crashed(path, dir / "crash1.db");

    // A row opened below the floor (as a reloaded request is) takes it down at once.
    receive(*j, 150);
    j->flush();
    CHECK(unfinished_from(path) <= 150);
    copy_as_crashed(path, dir / "crash2.db");
  }
  CHECK(reloaded(dir / "crash1.db") == std::vector<std::uint64_t>{40005, 80000});
  CHECK(reloaded(dir / "crash2.db") == std::vector<std::uint64_t>{150, 40005, 80000});
  // A clean stop writes the floor too.
  CHECK(unfinished_from(path) <= 150);
  CHECK(reloaded(path) == std::vector<std::uint64_t>{150, 40005, 80000});

  // A file from before unfinished_from: the whole table is looked at.
  REQUIRE(query(path, "DELETE FROM meta WHERE key = 'unfinished_from'") == -1);
  CHECK(reloaded(path) == std::vector<std::uint64_t>{150, 40005, 80000});
  // ... and the start writes it, just below the lowest unfinished row.
  CHECK(unfinished_from(path) == 128);
}

TEST_CASE("no unfinished row is ever below meta.unfinished_from: random traffic, crashes, restarts",
          "[journal]") {
  scratch_dir dir("journal-floor");
  const std::string path = dir / "j.db";
  const char* below =
      "SELECT count(*) FROM requests WHERE state IN ('queued', 'dispatched') "
      "AND number < (SELECT value FROM meta WHERE key = 'unfinished_from')";
  std::mt19937_64 random(11);
  std::set<std::uint64_t> unfinished;  // the model
  int crashes = 0;
  for (int run = 0; run < 3; ++run) {
    auto j = open_journal({.path = path});
    std::set<std::uint64_t> reloaded_now;
    for (const journal_unfinished& u : j->take_unfinished()) reloaded_now.insert(u.record.number);
    REQUIRE(reloaded_now == unfinished);
    std::uint64_t next = j->first_number();
    // An unfinished number, anywhere from the oldest to the newest.
    const auto any_unfinished = [&] {
      auto it = unfinished.lower_bound(random() % next);
      return it == unfinished.end() ? unfinished.begin() : it;
    };
    for (int step = 0; step < 30; ++step) {
      for (int event = 0; event < 100; ++event) {
        const std::uint64_t roll = random() % 100;
        if (roll < 40 || unfinished.empty()) {
          receive(*j, next);
          unfinished.insert(next);
          // Now and then a jump past a reservation (every 32,768 numbers).
          next += roll < 2 ? 20000 : 1 + random() % 2;
        } else if (roll < 60) {
          j->post(dispatched_event(*any_unfinished(), "w1"));
        } else if (roll < 63) {
          // Written again, as a reloaded request or a retried batch writes it.
          receive(*j, *any_unfinished());
        } else if (roll < 97) {
          // Mostly the oldest answered; some long-lived ones stay behind.
          const auto it = roll < 80 ? unfinished.begin() : any_unfinished();
          if (*it % 97 == 0 && roll < 90) continue;  // one in 97 lives long
          j->post(finished_event(*it, roll < 93 ? 200 : 503, "r"));
          unfinished.erase(it);
        }
      }
      j->flush();
      REQUIRE(query(path, below) == 0);
      if (step % 10 == 9) {
        const std::string copy = dir / ("crash" + std::to_string(++crashes) + ".db");
        copy_as_crashed(path, copy);
        const std::vector<std::uint64_t> numbers = reloaded(copy);
        REQUIRE(std::set<std::uint64_t>(numbers.begin(), numbers.end()) == unfinished);
        REQUIRE(query(copy, below) == 0);
      }
    }
  }
}
