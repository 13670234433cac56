// The PostgreSQL journal's own promises, on a real server (tests/support/
// pg_server): one active journal per database, a new term at each takeover,
// fencing of a stale term or a lost connection, numbers never reused. The
// promises it shares with the SQLite journal are in test_journal.cpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <random>
#include <string>

#include "broker/pg_journal.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/pg_server.hpp"

using namespace carico;
using namespace carico::test;
using namespace std::chrono_literals;

namespace {

journal_event received(std::uint64_t number) {
  journal_event e;
  e.what = journal_event::kind::received;
  e.row.number = number;
  e.row.client = "tester";
  e.row.client_id = std::to_string(number);
  e.row.service = "text";
  e.row.received_ms = unix_ms();
  const std::string payload = "payload " + std::to_string(number);
  e.payload = zmq::message_t(payload.data(), payload.size());
  return e;
}

journal_event finished(std::uint64_t number) {
  journal_event e;
  e.what = journal_event::kind::finished;
  e.row.number = number;
  e.row.state = request_state::done;
  e.row.worker = "w1";
  e.row.attempts = 1;
  e.row.completed_ms = unix_ms();
  e.row.code = 200;
  e.head = "reply " + std::to_string(number);
  return e;
}

// Opens a journal on another thread (it waits while standby); tries counts
// its tries for leadership, give_up ends the wait.
struct standby_opening {
  std::atomic<int> tries{0};
  std::atomic<bool> give_up{false};
  std::future<std::unique_ptr<pg_journal>> opened;
  explicit standby_opening(const std::string& uri) {
    opened = std::async(std::launch::async, [this, uri] {
      return std::make_unique<pg_journal>(journal_options{
          .path = uri, .keep_waiting = [this] {
            ++tries;
            return !give_up.load();
          }});
    });
  }
};

}  // namespace

TEST_CASE("one active journal per database: the other waits as a standby, then takes a new term",
          "[journal][pg]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  auto active = std::make_unique<pg_journal>(journal_options{.path = uri});
  const std::int64_t first_term = active->term();
  CHECK(first_term >= 1);
  CHECK(active->describe()["backend"] == "postgresql");
  CHECK(active->describe()["active"] == true);
  active->post(received(active->first_number()));
  REQUIRE(active->flush());

  standby_opening standby(uri);
  // It keeps trying (every 500 ms) and does not become active.
  CHECK(standby.opened.wait_for(1200ms) == std::future_status::timeout);
  CHECK(standby.tries.load() >= 2);

  // The active closes: the standby takes over within about a second, under a
  // new term, with the unfinished request reloaded.
  const auto closed = std::chrono::steady_clock::now();
  active.reset();
  REQUIRE(standby.opened.wait_for(3s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - closed;
  CHECK(took < 1500ms);
  std::unique_ptr<pg_journal> next = standby.opened.get();
  CHECK(next->term() == first_term + 1);
  CHECK(next->first_number() == 2);  // a clean handover keeps numbers dense
  const std::vector<journal_unfinished> unfinished = next->take_unfinished();
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].payload == "payload 1");

  SECTION("a standby stops waiting when told to (SIGTERM while standby)") {
    standby_opening other(uri);
    CHECK(other.opened.wait_for(700ms) == std::future_status::timeout);
    other.give_up = true;
    REQUIRE(other.opened.wait_for(1s) == std::future_status::ready);
    CHECK_THROWS_AS(other.opened.get(), journal_error);
  }
}

TEST_CASE("a write under a stale term fails: the journal is fenced and committed() never moves",
          "[journal][pg]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  std::atomic<int> signals{0};
  pg_journal j({.path = uri, .on_commit = [&] { ++signals; }});
  j.post(received(1));
  REQUIRE(j.flush());
  const std::uint64_t committed = j.committed();

  // Another broker took the next term without this one's lock having gone
  // (as through a pooler that does not keep sessions): the term row moved.
  const std::string db = uri.substr(uri.rfind('/') + 1);
  server.exec(db, "UPDATE carico_meta SET value = value + 1 WHERE key = 'term'");
  j.post(finished(1));
  REQUIRE(eventually([&] { return j.fenced(); }, 2000ms));
  CHECK(signals.load() >= 2);  // the broker is woken to see it
  CHECK_FALSE(j.writable());
  CHECK(j.committed() == committed);
  CHECK_FALSE(j.flush());  // at once: nothing can be committed any more
  CHECK(j.committed() == committed);
  CHECK(j.health().error.find("term") != std::string::npos);
  CHECK(j.describe()["active"] == false);
  const std::optional<journal_record> row = j.find(1);
  REQUIRE(row);
  CHECK(row->state == request_state::queued);  // the answer was never committed
}

TEST_CASE("the writer's session ended by the server: fenced within a second, a standby takes over",
          "[journal][pg]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  auto old = std::make_unique<pg_journal>(journal_options{.path = uri});
  old->post(received(old->first_number()));
  REQUIRE(old->flush());
  const std::uint64_t reserved = old->reserved();
  const std::uint64_t committed = old->committed();
  standby_opening standby(uri);
  CHECK(standby.opened.wait_for(600ms) == std::future_status::timeout);

  // Idle, the old writer finds out by its liveness check (every 250 ms).
  const auto cut = std::chrono::steady_clock::now();
  server.terminate_backend(old->writer_pid());
  REQUIRE(eventually([&] { return old->fenced(); }, 2000ms));
  CHECK(std::chrono::steady_clock::now() - cut < 1000ms);
  CHECK(old->health().error.find("connection") != std::string::npos);

  // The lock went with the session: the standby is active within its retry.
  REQUIRE(standby.opened.wait_for(2s) == std::future_status::ready);
  std::unique_ptr<pg_journal> next = standby.opened.get();
  CHECK(next->term() == old->term() + 1);
  // The old run did not close cleanly: every number it had reserved is skipped.
  CHECK(next->first_number() == reserved + 1);
  CHECK(next->take_unfinished().size() == 1);

  // The old one never commits again, even what it is given now; and closing
  // it neither hangs nor touches the new term's journal.
  old->post(finished(1));
  CHECK_FALSE(old->flush());
  CHECK(old->committed() == committed);
  const auto closing = std::chrono::steady_clock::now();
  old.reset();
  CHECK(std::chrono::steady_clock::now() - closing < 1000ms);
  next->post(received(next->first_number()));
  REQUIRE(next->flush());
  CHECK(next->find(1)->state == request_state::queued);
  CHECK(next->reserved() == reserved + journal::reserve_block);  // its own, above the old one's
}

TEST_CASE("mmi.stats says the journal's backend, its term and that it is active",
          "[journal][pg]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.journal_path = uri;
  running_broker broker(context, options);
  fake_client c(context, broker.frontend());
  const nlohmann::json journal = mmi_stats(c)["journal"];
  CHECK(journal["backend"] == "postgresql");
  CHECK(journal["term"] == 1);
  CHECK(journal["active"] == true);
}

TEST_CASE("the PostgreSQL journal prunes its oldest finished rows past max_bytes",
          "[journal][pg][bounds]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  pg_journal j({.path = uri, .max_bytes = std::uint64_t{1} << 20});
  j.post(received(1));  // unfinished: never pruned
  std::mt19937 random(7);
  std::uint64_t n = 2;
  for (; n <= 200; ++n) {
    j.post(received(n));
    journal_event done = finished(n);
    done.head.resize(16 << 10);  // 16 KiB that do not compress: 3 MiB in all
    for (char& c : done.head) c = static_cast<char>(random());
    j.post(std::move(done));
  }
  REQUIRE(j.flush());
  // The size is measured at most once a second, after a commit: keep committing.
  CHECK(eventually(
      [&] {
        j.post(received(n++));
        return !j.find(2);
      },
      5000ms));
  CHECK(j.find(1));    // unfinished rows stay
  CHECK(j.find(200));  // the newest finished ones too
  CHECK(j.disk_bytes() > 0);
}

TEST_CASE("a PostgreSQL journal written by a newer carico is refused with a clear error",
          "[journal][pg]") {
  pg_server& server = pg_server::shared();
  const std::string uri = server.create_database();
  { pg_journal j({.path = uri}); }
  server.exec(uri.substr(uri.rfind('/') + 1),
              "UPDATE carico_meta SET value = 99 WHERE key = 'schema_version'");
  try {
    pg_journal j({.path = uri});
    FAIL("opened a journal of schema version 99");
  } catch (const journal_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("written by a newer carico (schema version 99"));
  }
}
