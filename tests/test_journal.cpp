// The request journal on its own (temp files), and the broker with a journal:
// restarts, resends while in flight and after the answer, bad journal files.
#include <catch2/catch.hpp>

#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <sqlite3.h>
#include <sys/resource.h>

#include "broker/journal.hpp"
#include "broker/journal_batch.hpp"
#include "broker/journal_report.hpp"
#include "broker/reply_cache.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/journal_events.hpp"
#include "tests/support/pg_server.hpp"
#include "worker/document_store.hpp"
#include "worker/text_handler.hpp"
#include "worker/worker.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Both journal backends, for a test case that runs against each:
//   temp_dir dir(EACH_BACKEND);  ...  dir.journal_at("j.db")
#define EACH_BACKEND GENERATE(as<std::string>{}, "sqlite", "postgresql")

// A fresh directory under the system temp dir, removed on destruction; with
// backend "postgresql", its journals are databases on the test's server.
struct temp_dir {
  fs::path path;
  std::string backend;                          // "sqlite" or "postgresql"
  std::map<std::string, std::string> databases;  // journal name -> its database's URI
  explicit temp_dir(std::string of = "sqlite") : backend(std::move(of)) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("carico-test-journal-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  // The journal `name`: a file here, or a database of its own (the same one
  // for the same name) on the shared PostgreSQL server.
  std::string journal_at(const std::string& name) {
    if (backend == "sqlite") return file(name);
    std::string& uri = databases[name];
    if (uri.empty()) uri = pg_server::shared().create_database();
    return uri;
  }
};

std::string error_of(const std::function<void()>& open) {
  try {
    open();
  } catch (const journal_error& e) {
    return e.what();
  }
  return "no error";
}

broker_options journaled(const std::string& path) {
  broker_options o = fast_broker_options();
  o.journal_path = path;
  return o;
}

json keyed(const std::string& client, std::uint64_t id) {
  return {{"client", client}, {"id", id}, {"title", "t" + std::to_string(id)}};
}

}  // namespace

TEST_CASE("a dispatch note may trail one batch but always reaches the file", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  auto j = open_journal({.path = dir.journal_at("j.db")});
  j->post(received_event(1, "1", "one"));
  j->post(received_event(2, "2", "two"));
  j->flush();

  SECTION("alone, it is written once the writer is idle, without a flush") {
    const std::uint64_t seq = j->post(dispatched_event(1, "w1"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::optional<journal_record> row;
    while (std::chrono::steady_clock::now() < deadline) {
      row = j->find(1);
      if (row && row->state == request_state::dispatched) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(j->committed() >= seq);
    REQUIRE(row);
    CHECK(row->state == request_state::dispatched);
    CHECK(row->worker == "w1");
  }
  SECTION("followed by the answer, both end in the row") {
    j->post(dispatched_event(2, "w2"));
    j->post(finished_event(2, 200, "reply"));
    j->flush();
    auto row = j->find(2);
    REQUIRE(row);
    CHECK(row->state == request_state::done);
    CHECK(row->worker == "w1");  // the answer's worker
    CHECK(row->dispatched_ms > 0);
    CHECK(row->code == 200u);
  }
  SECTION("a flush writes it even when nothing follows") {
    j->post(dispatched_event(2, "w2"));
    j->flush();
    auto row = j->find(2);
    REQUIRE(row);
    CHECK(row->state == request_state::dispatched);
    CHECK(row->worker == "w2");
  }
}

TEST_CASE("a dispatch note waits for its answer through batches, then alone", "[journal]") {
  // fold_events as the writer calls it: notes made after hold_after_ms wait.
  const std::int64_t now = unix_ms();
  const std::int64_t hold_after = now - journal::dispatch_note_wait_ms;
  std::vector<journal_event> carried;
  std::vector<journal_event> batch;
  std::vector<journal_event*> held;
  std::uint64_t batch_max = 0;
  const auto kinds = [](const journal_batch& b) {
    std::vector<std::pair<std::uint64_t, row_write::kind>> out;
    for (const row_write& w : b.rows) out.emplace_back(w.row().number, w.what);
    return out;
  };
  using rk = row_write::kind;
  using rows = std::vector<std::pair<std::uint64_t, rk>>;

  SECTION("a new note alone waits; one older than the wait is written") {
    batch.push_back(dispatched_event(1, "w1"));
    batch.push_back(dispatched_event(2, "w1"));
    batch.back().row.dispatched_ms = hold_after;  // as old as a note may get
    const journal_batch b = fold_events(carried, batch, hold_after, held, batch_max);
    CHECK(kinds(b) == rows{{2, rk::dispatch}});
    REQUIRE(held.size() == 1);
    CHECK(held[0]->row.number == 1);
  }
  SECTION("a carried note joins the answer of a later batch: one statement") {
    carried.push_back(dispatched_event(1, "w2"));
    carried.push_back(dispatched_event(2, "w2"));
    batch.push_back(finished_event(1, 200, "reply"));
    batch.push_back(received_event(3, "3", "three"));
    const journal_batch b = fold_events(carried, batch, hold_after, held, batch_max);
    CHECK(kinds(b) == rows{{1, rk::finish}, {3, rk::insert}});
    CHECK(b.rows[0].dispatched_ms == carried[0].row.dispatched_ms);
    REQUIRE(held.size() == 1);  // 2 waits on, a batch later
    CHECK(held[0]->row.number == 2);
    CHECK(batch_max == 3);
  }
  SECTION("a carried note past the wait is written alone") {
    carried.push_back(dispatched_event(1, "w2"));
    carried.back().row.dispatched_ms = hold_after - 1;
    batch.push_back(received_event(3, "3", "three"));
    const journal_batch b = fold_events(carried, batch, hold_after, held, batch_max);
    CHECK(kinds(b) == rows{{3, rk::insert}, {1, rk::dispatch}});
    CHECK(held.empty());
  }
  SECTION("a note dated ahead of the clock (the clock was set back) is written alone") {
    carried.push_back(dispatched_event(1, "w2"));
    carried.back().row.dispatched_ms = now + 3600 * 1000;
    batch.push_back(received_event(3, "3", "three"));
    const journal_batch b = fold_events(carried, batch, hold_after, held, batch_max);
    CHECK(kinds(b) == rows{{3, rk::insert}, {1, rk::dispatch}});
    CHECK(held.empty());
  }
  SECTION("a later dispatch of the same request replaces the carried note") {
    carried.push_back(dispatched_event(1, "w1"));
    batch.push_back(dispatched_event(1, "w2"));
    const journal_batch b = fold_events(carried, batch, hold_after, held, batch_max);
    CHECK(b.rows.empty());
    REQUIRE(held.size() == 1);
    CHECK(held[0]->row.worker == "w2");
  }
  SECTION("holding nothing (a flush, an idle writer) writes every note") {
    carried.push_back(dispatched_event(1, "w1"));
    batch.push_back(dispatched_event(2, "w2"));
    const journal_batch b = fold_events(carried, batch, std::numeric_limits<std::int64_t>::max(),
                                        held, batch_max);
    CHECK(kinds(b) == rows{{2, rk::dispatch}, {1, rk::dispatch}});
    CHECK(held.empty());
  }
}

TEST_CASE("deferred posts reach the writer when handed over, or with a flush", "[journal]") {
  temp_dir dir;
  auto j = open_journal({.path = dir.file("j.db")});
  j->defer_posts();
  const std::uint64_t first = j->post(received_event(1, "1", "one"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(j->committed() < first);  // still the poster's own
  CHECK_FALSE(j->find(1));
  j->hand_over();
  CHECK(eventually([&] { return j->committed() >= first; }));
  CHECK(j->find(1));
  const std::uint64_t second = j->post(received_event(2, "2", "two"));
  CHECK(j->flush());
  CHECK(j->committed() >= second);
  CHECK(j->find(2));
  j->post(received_event(3, "3", "three"));  // closing hands it over too
  const std::string path = j->path();
  j.reset();
  auto again = open_journal({.path = path});
  CHECK(again->take_unfinished().size() == 3);
}

TEST_CASE("journal rows are written, reloaded and finished", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  const std::string path = dir.journal_at("j.db");
  {
    auto j = open_journal({.path = path});
    CHECK(j->first_number() == 1);
    CHECK(j->take_unfinished().empty());
    j->post(received_event(1, "1", "payload one"));
    j->post(received_event(2, "2", "payload two"));
    journal_event d;
    d.what = journal_event::kind::dispatched;
    d.row.number = 2;
    d.row.worker = "w1";
    d.row.attempts = 1;
    d.row.dispatched_ms = unix_ms();
    j->post(std::move(d));
    j->post(received_event(3, "3", "payload three"));
    j->post(finished_event(3, 200, "reply three"));  // same batch or not: same outcome
    j->flush();
    CHECK(j->committed() == j->posted());
    auto row = j->find(2);
    REQUIRE(row);
    CHECK(row->state == request_state::dispatched);
    CHECK(row->worker == "w1");
  }
  {
    auto j = open_journal({.path = path});
    CHECK(j->first_number() == 4);  // numbers continue across a reopen
    std::vector<journal_unfinished> unfinished = j->take_unfinished();
    REQUIRE(unfinished.size() == 2);
    CHECK(unfinished[0].record.number == 1);
    CHECK(unfinished[0].record.state == request_state::queued);
    CHECK(unfinished[0].payload == "payload one");
    CHECK(unfinished[1].record.number == 2);
    CHECK(unfinished[1].record.state == request_state::dispatched);
    CHECK(unfinished[1].record.attempts == 1);
    CHECK(unfinished[1].payload == "payload two");
    header_result head = header::decode(unfinished[1].head.data(), unfinished[1].head.size());
    REQUIRE(head);
    CHECK(head.value->get_string("title") == std::optional<std::string_view>("doc 2"));

    auto done = j->find(3);
    REQUIRE(done);
    CHECK(done->state == request_state::done);
    CHECK(done->code == 200);
    CHECK(json::parse(done->result)["count_a"] == 3);
    CHECK(done->result_string("stored_as") == "3-doc.json");
    auto reply = j->find_reply("tester", "3");
    REQUIRE(reply);
    CHECK(reply->number == 3);
    CHECK(reply->head == "reply three");
    CHECK_FALSE(j->find_reply("tester", "1"));  // unanswered: no reply yet
    CHECK(j->find("tester", "1")->number == 1);

    j->post(finished_event(1, 500, "reply one"));
    j->post(finished_event(2, 200, "reply two"));
  }
  auto j = open_journal({.path = path});
  CHECK(j->take_unfinished().empty());
  CHECK(j->find(1)->state == request_state::failed);
  std::vector<journal_record> last = j->history(2);
  REQUIRE(last.size() == 2);
  CHECK(last[0].number == 3);
  CHECK(last[1].number == 2);
  CHECK(j->history(10, request_state::failed).size() == 1);
  CHECK(read_journal_history(path, 10, std::nullopt).size() == 3);
}

TEST_CASE("journal prunes old finished rows but never reuses their numbers", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  const std::string path = dir.journal_at("j.db");
  {
    auto j = open_journal({.path = path, .keep = 1ms, .prune_every = 10ms});
    j->post(received_event(1, "1", "a"));
    j->post(received_event(2, "2", "b"));
    j->post(finished_event(2, 200, "r"));
    j->flush();
    CHECK(eventually([&] { return !j->find(2); }));
    CHECK(j->find(1));  // unfinished rows stay
  }
  auto j = open_journal({.path = path});
  CHECK(j->first_number() == 3);
}

TEST_CASE("numbers reserved by a run that died are never used again", "[journal]") {
  temp_dir dir;
  const std::string path = dir.file("j.db");
  const std::string crashed = dir.file("crashed.db");
  std::uint64_t reserved = 0;
  {
    auto j = open_journal({.path = path});
    CHECK(j->first_number() == 1);
    reserved = j->reserved();
    CHECK(reserved == journal::reserve_block);  // reserved at open, before any row
    j->post(received_event(1, "1", "a"));
    j->flush();
    // The file as a kill -9 would leave it now: copied with its WAL while open.
    fs::copy_file(path, crashed);
    fs::copy_file(path + "-wal", crashed + "-wal");
  }
  {
    auto j = open_journal({.path = path});
    CHECK(j->first_number() == 2);  // closed cleanly: dense numbers
  }
  {
    auto j = open_journal({.path = crashed});
    // Numbers up to the dead run's reservation may have reached a worker without a row.
    CHECK(j->first_number() == reserved + 1);
    CHECK(j->reserved() == reserved + journal::reserve_block);
    REQUIRE(j->take_unfinished().size() == 1);
  }
  auto j = open_journal({.path = crashed});
  CHECK(j->first_number() == reserved + 1);  // the skipped numbers stay skipped

  SECTION("the reservation moves ahead of the numbers written") {
    const std::uint64_t far = j->reserved() - journal::reserve_block / 2 + 1;
    j->post(received_event(far, "far", "b"));
    j->flush();
    CHECK(j->reserved() == far + journal::reserve_block);
  }
}

namespace {

// Files this process writes may not grow past their current size (a disk
// that is full for this journal, as SQLite sees it: EFBIG) until destroyed.
class frozen_file_sizes {
 public:
  explicit frozen_file_sizes(std::uintmax_t limit) {
    std::signal(SIGXFSZ, SIG_IGN);  // over the file size limit: EFBIG, not a signal
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_) == 0);
    rlimit tight = old_;
    tight.rlim_cur = limit;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &tight) == 0);
  }
  ~frozen_file_sizes() { thaw(); }
  void thaw() {
    if (thawed_) return;
    thawed_ = true;
    setrlimit(RLIMIT_FSIZE, &old_);
  }

 private:
  rlimit old_{};        // the limit before
  bool thawed_{false};  // restored already
};

}  // namespace

TEST_CASE("a write that fails is kept and retried until it succeeds; nothing is lost",
          "[journal][faults]") {
  temp_dir dir;
  const std::string path = dir.file("j.db");
  std::atomic<int> signals{0};
  {
    auto j = open_journal({.path = path, .on_commit = [&] { ++signals; }});
    for (std::uint64_t n = 1; n <= 3; ++n) j->post(received_event(n, std::to_string(n), "a"));
    REQUIRE(j->flush());
    CHECK(j->writable());
    CHECK(j->health().writable);
    const std::uint64_t committed_before = j->committed();

    frozen_file_sizes full(fs::file_size(path + "-wal"));  // the WAL may not grow
    const auto failed_at = std::chrono::steady_clock::now();
    for (std::uint64_t n = 4; n <= 6; ++n) {
      j->post(received_event(n, std::to_string(n), std::string(3000, 'p')));
    }
    CHECK_FALSE(j->flush());  // returns, though nothing could be committed
    CHECK_FALSE(j->writable());
    CHECK(j->committed() == committed_before);
    journal_health h = j->health();
    CHECK_FALSE(h.writable);
    CHECK_FALSE(h.error.empty());
    CHECK(h.since_ms > 0);
    j->post(finished_event(1, 200, "r"));  // posted meanwhile: kept with the rest
    // It probes every retry_every (200 ms): a few attempts, not a busy loop.
    CHECK(eventually([&] { return j->health().attempts >= 3; }, 3000ms));
    const auto elapsed = std::chrono::steady_clock::now() - failed_at;
    CHECK(j->health().attempts <= static_cast<std::uint64_t>(elapsed / 200ms) + 2);
    CHECK(j->health().waiting == 4);
    CHECK(j->committed() == committed_before);
    CHECK_FALSE(j->find(4));

    full.thaw();  // space again: the next probe commits everything kept
    const auto freed_at = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return j->writable(); }, 2000ms));
    INFO("healed after " << (std::chrono::steady_clock::now() - freed_at) / 1ms << " ms");
    CHECK(j->committed() == j->posted());
    CHECK(j->health().writable);
    CHECK(j->health().error.empty());
    CHECK(j->flush());
    for (std::uint64_t n = 4; n <= 6; ++n) CHECK(j->find(n));
    CHECK(j->find(1)->state == request_state::done);
  }
  auto j = open_journal({.path = path});
  CHECK(j->first_number() == 7);
  CHECK(j->take_unfinished().size() == 5);  // 2 to 6: none lost, 1 finished
}

TEST_CASE("a journal that cannot be written refuses new requests and heals by itself",
          "[journal][faults]") {
  temp_dir dir;
  zmq::context_t context;
  const std::string path = dir.file("j.db");
  running_broker broker(context, journaled(path));
  fake_worker w(context,
                {.endpoint = broker.backend(), .name = "w1", .capacity = 4, .auto_reply = false});
  fake_client c(context, broker.frontend());
  fake_client stock(context, broker.frontend());
  REQUIRE(wait_for_workers(c, 1).size() == 1);
  CHECK(mmi_stats(c)["journal"]["state"] == "ok");

  c.send("text", keyed("c1", 1), "doc one");
  REQUIRE(w.wait_requests(1));  // its row is committed before a worker sees it
  std::optional<frozen_file_sizes> full;
  full.emplace(fs::file_size(path + "-wal"));
  w.reply(w.requests()[0].number);
  CHECK_FALSE(c.recv(400ms));  // its outcome cannot be committed: the reply waits
  json stats = mmi_stats(c);
  CHECK(stats["journal"]["state"] == "unavailable");
  CHECK_FALSE(stats["journal"]["error"].get<std::string>().empty());

  auto refused = c.call("text", keyed("c1", 2), "doc two");
  REQUIRE(refused);
  CHECK(refused->code() == 503);
  CHECK(refused->head["error"] == "journal unavailable");
  CHECK(refused->head["id"] == 2);
  stock.send_plain("text", "stock doc");  // MDP/0.1 has no error reply: nothing
  CHECK_FALSE(stock.recv(200ms));
  CHECK(w.requests().size() == 1);  // nothing new reached the worker
  stats = mmi_stats(c);
  CHECK(stats["journal"]["refused"] == 2);

  full.reset();  // space again
  const auto freed_at = std::chrono::steady_clock::now();
  auto held = c.recv(2000ms);
  REQUIRE(held);
  INFO("the held reply left " << (std::chrono::steady_clock::now() - freed_at) / 1ms
                              << " ms after the space came back");
  CHECK(held->code() == 200);
  CHECK(held->head["id"] == 1);
  CHECK(mmi_stats(c)["journal"]["state"] == "ok");
  c.send("text", keyed("c1", 2), "doc two");  // served again, no restart
  REQUIRE(w.wait_requests(2));
  w.reply(w.requests()[1].number);
  auto served = c.recv();
  REQUIRE(served);
  CHECK(served->code() == 200);
  CHECK(served->head["id"] == 2);
}

TEST_CASE("the journal stays under --journal-max-bytes: oldest finished rows go first",
          "[journal][bounds]") {
  temp_dir dir;
  const std::string path = dir.file("j.db");
  constexpr std::uint64_t bound = 1 << 20;
  auto j = open_journal({.path = path, .max_bytes = bound});
  // Two requests never finish: they must survive every prune.
  j->post(received_event(1, "1", "unfinished one"));
  j->post(received_event(2, "2", "unfinished two"));
  std::uint64_t most = 0;
  const std::string payload(300, 'x');
  std::uint64_t n = 3;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 250; ++i, ++n) {
      j->post(received_event(n, std::to_string(n), payload));
      j->post(finished_event(n, 200, std::string(100, 'r')));
    }
    j->flush();
    most = std::max(most, j->disk_bytes());
  }
  INFO("most " << most << " bytes for a bound of " << bound);
  CHECK(most <= bound * 5 / 4);
  CHECK(j->find(1));
  CHECK(j->find(2));
  CHECK_FALSE(j->find(3));  // the oldest finished went
  CHECK(j->find(n - 1));    // the newest stayed
  CHECK(j->history(1).front().number == n - 1);
}

TEST_CASE("carico-broker journal on a damaged file says so and exits non-zero",
          "[journal][faults]") {
  temp_dir dir;
  std::ostringstream out;
  std::ostringstream err;
  SECTION("not SQLite at all") {
    const std::string path = dir.file("junk.db");
    std::ofstream(path) << std::string(8192, 'x');
    CHECK(print_journal(path, 20, "", false, out, err) != 0);
    CHECK_THAT(err.str(), Catch::Contains("junk.db") && Catch::Contains("not a usable SQLite"));
  }
  SECTION("SQLite with damaged pages") {
    const std::string path = dir.file("damaged.db");
    {
      auto j = open_journal({.path = path});
      for (std::uint64_t n = 1; n <= 300; ++n) {
        j->post(received_event(n, std::to_string(n), std::string(500, 'p')));
      }
      j->flush();
    }  // a clean close checkpoints the WAL into the file
    const std::uintmax_t size = fs::file_size(path);
    REQUIRE(size > 16 * 4096);
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(4 * 4096);
      const std::string garbage(8 * 4096, '\xa5');
      f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    CHECK(print_journal(path, 20, "", false, out, err) != 0);
    CHECK_THAT(err.str(), Catch::Contains("damaged.db") &&
                              (Catch::Contains("integrity check") || Catch::Contains("corrupt")));
    CHECK(out.str().empty());
  }
}

TEST_CASE("journal on: an unkeyed request is not held for its row, a keyed one is",
          "[journal]") {
  temp_dir dir;
  zmq::context_t context;
  const std::string path = dir.file("j.db");
  running_broker broker(context, journaled(path));
  fake_worker w(context,
                {.endpoint = broker.backend(), .name = "w1", .capacity = 2, .auto_reply = false});
  fake_client c(context, broker.frontend());
  REQUIRE(wait_for_workers(c, 1).size() == 1);

  // Another connection holds SQLite's write lock: the journal commits nothing.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &blocker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  c.send("text", json{{"id", 1}, {"title", "unkeyed"}}, "doc");
  REQUIRE(w.wait_requests(1));  // its number is reserved: straight to the worker
  c.send("text", keyed("c1", 2), "doc");
  CHECK_FALSE(w.wait_requests(2, 300ms));  // keyed: waits for its row
  w.reply(w.requests()[0].number);
  CHECK_FALSE(c.recv(200ms));  // every reply waits for its outcome's commit
  REQUIRE(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(blocker);

  auto reply = c.recv();
  REQUIRE(reply);
  CHECK(reply->code() == 200);
  CHECK(reply->head["id"] == 1);
  REQUIRE(w.wait_requests(2));
  CHECK(w.requests()[1].number == w.requests()[0].number + 1);
}

TEST_CASE("reply frames round trip through encode_frames at every header width", "[journal]") {
  for (std::size_t count : {std::size_t{1}, std::size_t{15}, std::size_t{16}}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256},
                             std::size_t{65535}, std::size_t{65536}}) {
      std::vector<zmq::message_t> frames;
      std::vector<std::string> expected;
      for (std::size_t i = 0; i < count; ++i) {
        expected.push_back(std::string(size, static_cast<char>('a' + i % 26)));
        frames.emplace_back(expected.back().data(), expected.back().size());
      }
      const std::string blob = encode_frames(frames);
      CHECK(decode_frames(blob) == expected);
    }
  }
  CHECK(encode_frames({}).empty());
  CHECK(decode_frames("").empty());
}

TEST_CASE("a bad journal is a clear error at start", "[journal]") {
  temp_dir dir;
  SECTION("corrupt file") {
    const std::string path = dir.file("corrupt.db");
    std::ofstream(path) << std::string(8192, 'x');
    CHECK_THAT(error_of([&] { auto j = open_journal({.path = path}); }),
               Catch::Contains("corrupt.db") && Catch::Contains("not a usable SQLite database"));
    zmq::context_t context;
    CHECK_THROWS_AS(broker(context, journaled(path)), journal_error);
  }
  SECTION("unwritable path") {
    CHECK_THAT(error_of([&] { auto j = open_journal({.path = "/nonexistent-carico-dir/j.db"}); }),
               Catch::Contains("cannot create lock file") && Catch::Contains("No such file"));
    CHECK_THAT(error_of([&] { auto j = open_journal({.path = dir.path.string()}); }),
               Catch::Contains("is a directory"));
  }
  SECTION("in use by another broker") {
    const std::string path = dir.file("busy.db");
    auto first = open_journal({.path = path});
    CHECK_THAT(error_of([&] { auto second = open_journal({.path = path}); }),
               Catch::Contains("in use by another broker"));
  }
  SECTION("written by a newer carico") {
    const std::string path = dir.file("newer.db");
    { auto j = open_journal({.path = path}); }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema_version'", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_THAT(error_of([&] { auto j = open_journal({.path = path}); }),
               Catch::Contains("written by a newer carico (schema version 99"));
  }
  SECTION("durations") {
    CHECK(parse_duration("7d") == std::chrono::seconds(7 * 86400));
    CHECK(parse_duration("12h") == std::chrono::seconds(12 * 3600));
    CHECK(parse_duration("30m") == std::chrono::seconds(1800));
    CHECK(parse_duration("45") == std::chrono::seconds(45));
    CHECK_FALSE(parse_duration("7w"));
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("-1s"));
  }
  SECTION("byte sizes") {
    CHECK(parse_byte_size("1GiB") == std::uint64_t{1} << 30);
    CHECK(parse_byte_size("8MiB") == std::uint64_t{8} << 20);
    CHECK(parse_byte_size("8M") == std::uint64_t{8} << 20);
    CHECK(parse_byte_size("512KiB") == std::uint64_t{512} << 10);
    CHECK(parse_byte_size("10MB") == std::uint64_t{10000000});
    CHECK(parse_byte_size("4096") == std::uint64_t{4096});
    CHECK_FALSE(parse_byte_size(""));
    CHECK_FALSE(parse_byte_size("MiB"));
    CHECK_FALSE(parse_byte_size("1.5GiB"));
    CHECK_FALSE(parse_byte_size("-1M"));
    CHECK_FALSE(parse_byte_size("8XB"));
    CHECK_FALSE(parse_byte_size("99999999999TiB"));
  }
}

TEST_CASE("a resend while in flight waits for the same outcome", "[journal][exactly-once]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  for (const std::string& path : {dir.journal_at("j.db"), std::string()}) {
    DYNAMIC_SECTION("journal " << (path.empty() ? "none" : "on")) {
      running_broker broker(context, journaled(path));
      fake_worker w(context, {.endpoint = broker.backend(), .name = "w1", .auto_reply = false});
      fake_client first(context, broker.frontend());
      fake_client second(context, broker.frontend());
      REQUIRE(wait_for_workers(first, 1).size() == 1);

      first.send("text", keyed("c1", 7), "doc");
      REQUIRE(w.wait_requests(1));
      first.send("text", keyed("c1", 7), "doc");   // the same client again
      second.send("text", keyed("c1", 7), "doc");  // another socket, same key
      CHECK(eventually([&] { return mmi_stats(first)["resends"] == 2; }));
      const std::uint64_t number = w.requests()[0].number;
      w.reply(number);
      auto a = first.recv();
      auto b = second.recv();
      REQUIRE(a);
      REQUIRE(b);
      CHECK(a->code() == 200);
      CHECK(a->head["request"] == number);
      CHECK(b->head["request"] == number);
      CHECK(a->head["id"] == 7);
      CHECK(b->head["result"] == a->head["result"]);
      CHECK_FALSE(first.recv(100ms));  // one reply per socket
      CHECK(w.requests().size() == 1);
    }
  }
}

TEST_CASE("a resend after the answer gets the same reply without execution",
          "[journal][exactly-once]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  const std::string path = dir.journal_at("j.db");
  json first_reply;
  {
    running_broker broker(context, journaled(path));
    fake_worker w(context, {.endpoint = broker.backend(), .name = "w1"});
    fake_client c(context, broker.frontend());
    REQUIRE(wait_for_workers(c, 1).size() == 1);
    auto a = c.call("text", keyed("c1", 1), "doc one");
    REQUIRE(a);
    REQUIRE(a->code() == 200);
    first_reply = a->head;
    auto again = c.call("text", keyed("c1", 1), "doc one");
    REQUIRE(again);
    CHECK(again->head == first_reply);
    auto other = c.call("text", keyed("c2", 1), "doc one");  // another client: a new request
    REQUIRE(other);
    CHECK(other->head["request"] != first_reply["request"]);
    CHECK(w.requests().size() == 2);

    auto record = c.call("mmi.request", {{"of_client", "c1"}, {"of_id", 1}}, "");
    REQUIRE(record);
    CHECK(record->code() == 200);
    CHECK(record->head["result"]["state"] == "done");
    CHECK(record->head["result"]["request"] == first_reply["request"]);
    CHECK(record->head["result"]["worker"] == "w1");
    auto by_number = c.call("mmi.request", {{"of_request", first_reply["request"]}}, "");
    REQUIRE(by_number);
    CHECK(by_number->head["result"]["code"] == 200);
    auto missing = c.call("mmi.request", {{"of_request", 999999}}, "");
    REQUIRE(missing);
    CHECK(missing->code() == 404);
    auto history = c.call("mmi.history", {{"last", 5}}, "");
    REQUIRE(history);
    REQUIRE(history->head["result"]["requests"].size() == 2);
    CHECK(history->head["result"]["requests"][0]["request"] == other->head["request"]);
  }
  // A new broker on the same journal: the memory is gone, the journal answers.
  running_broker broker(context, journaled(path));
  fake_worker w(context, {.endpoint = broker.backend(), .name = "w2"});
  fake_client c(context, broker.frontend());
  REQUIRE(wait_for_workers(c, 1).size() == 1);
  auto again = c.call("text", keyed("c1", 1), "doc one");
  REQUIRE(again);
  CHECK(again->head == first_reply);
  auto fresh = c.call("text", keyed("c1", 2), "doc two");
  REQUIRE(fresh);
  CHECK(fresh->head["request"].get<std::uint64_t>() > first_reply["request"].get<std::uint64_t>());
  CHECK(w.requests().size() == 1);
}

TEST_CASE("a text worker's result summary is in the journal row", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  const std::string path = dir.journal_at("j.db");
  running_broker broker(context, journaled(path));
  worker w(context,
           {.connect = broker.backend(), .service = "text", .name = "t1", .heartbeat_ms = 50},
           text_handler(std::make_shared<document_store>(dir.file("store"), false), 0));
  std::thread runner([&] { w.run(); });
  fake_client c(context, broker.frontend());
  REQUIRE(wait_for_workers(c, 1).size() == 1);
  auto a = c.call("text", keyed("c1", 7), R"({"titolo": "Banane", "contenuto": "Anna mangia"})");
  w.stop();
  runner.join();
  REQUIRE(a);
  REQUIRE(a->code() == 200);
  auto record = c.call("mmi.request", {{"of_client", "c1"}, {"of_id", 7}}, "");
  REQUIRE(record);
  CHECK(record->head["result"]["result"]["count_a"] == 4);
  CHECK(record->head["result"]["result"]["stored_as"] == a->head["result"]["stored_as"]);
  CHECK(record->head["result"]["result"]["stored_as"].get<std::string>().ends_with("-Banane.json"));
}

TEST_CASE("a result map with a repeated key: the journal row keeps the last value", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  running_broker broker(context, journaled(dir.journal_at("j.db")));
  fake_worker w(context, {.endpoint = broker.backend(), .name = "w1", .auto_reply = false});
  fake_client c(context, broker.frontend());
  REQUIRE(wait_for_workers(c, 1).size() == 1);
  c.send("text", keyed("c1", 9), "doc");
  REQUIRE(w.wait_requests(1));
  const received_request got = w.requests()[0];
  // {"request": N, "result": {"count_a": 1, "count_a": 5, "stored_as": "x"}}: the
  // result map is read by header::decode's path, where the last value wins.
  std::vector<std::uint8_t> request = json::to_msgpack(json{{"request", got.number}});
  std::string head(request.begin(), request.end());
  head[0] = static_cast<char>(0x82);  // one more entry: result
  const char result[] = "\xa6result\x83\xa7" "count_a\x01\xa7" "count_a\x05\xa9stored_as\xa1x";
  head.append(result, sizeof result - 1);
  w.send_raw({"", std::string(worker_ext_signature), "\x03", got.address, "", head, "done"});
  auto reply = c.recv();
  REQUIRE(reply);
  CHECK(reply->code() == 200);
  auto record = c.call("mmi.request", {{"of_client", "c1"}, {"of_id", 9}}, "");
  REQUIRE(record);
  REQUIRE(record->code() == 200);
  CHECK(record->head["result"]["result"]["count_a"] == 5);
  CHECK(record->head["result"]["result"]["stored_as"] == "x");
}

TEST_CASE("unfinished requests are dispatched again after a restart", "[journal]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  const std::string path = dir.journal_at("j.db");
  std::set<std::uint64_t> numbers;
  {
    broker_options options = journaled(path);
    running_broker broker(context, options);
    fake_worker w(context, {.endpoint = broker.backend(), .name = "w1", .auto_reply = false});
    fake_client c(context, broker.frontend());
    REQUIRE(wait_for_workers(c, 1).size() == 1);
    for (std::uint64_t id = 1; id <= 3; ++id) c.send("text", keyed("c1", id), "doc");
    REQUIRE(w.wait_requests(1));  // one dispatched, two queued behind it
    for (const received_request& r : w.requests()) numbers.insert(r.number);
    CHECK(eventually([&] {
      auto h = c.call("mmi.history", json::object(), "");
      return h && h->head["result"]["requests"].size() == 3;
    }));
  }  // the broker stops with three requests unanswered

  running_broker broker(context, journaled(path));
  fake_client c(context, broker.frontend());
  SECTION("another worker gets them all; the held one once w1 is given up on") {
    fake_worker w(context, {.endpoint = broker.backend(), .name = "w2", .capacity = 3});
    REQUIRE(w.wait_requests(2));
    CHECK(w.requests().size() == 2);  // the held one waits for w1 (2 x 250 ms)
    for (const received_request& r : w.requests()) CHECK(numbers.count(r.number) == 0);
    REQUIRE(w.wait_requests(3));
    CHECK(w.requests()[2].number == *numbers.begin());
    CHECK(w.requests()[2].attempt == 2);
  }
  SECTION("the same worker comes back: it gets the request it held at once") {
    fake_worker w(context, {.endpoint = broker.backend(), .name = "w1", .capacity = 3});
    REQUIRE(w.wait_requests(3));
    std::vector<received_request> seen = w.requests();
    CHECK(seen[0].number == *numbers.begin());
    std::set<std::uint64_t> again;
    for (const received_request& r : seen) again.insert(r.number);
    CHECK(again.size() == 3);
    for (const received_request& r : seen) {
      CHECK(r.attempt == (numbers.count(r.number) ? 2u : 1u));
    }
    // The client comes back with a resend: it gets the outcome under the old number.
    auto resend = c.call("text", keyed("c1", 1), "doc");
    REQUIRE(resend);
    CHECK(resend->code() == 200);
    CHECK(again.count(resend->head["request"].get<std::uint64_t>()) == 1);
    auto next = c.call("text", keyed("c1", 4), "doc");
    REQUIRE(next);
    CHECK(next->head["request"].get<std::uint64_t>() > *again.rbegin());
    CHECK(w.requests().size() == 4);
  }
}

TEST_CASE("reply cache forgets the oldest and the key filter never misses", "[journal]") {
  reply_cache cache(2);
  cache.put("a", 1, "text", "ha", "");
  cache.put("b", 2, "text", "hb", "");
  cache.put("c", 3, "text", "hc", "x");
  CHECK_FALSE(cache.find("a"));
  REQUIRE(cache.find("c"));
  CHECK(cache.find("c")->body == "x");
  cache.put("c", 4, "text", "hc2", "y");  // the same key again: replaced, still one entry
  CHECK(cache.size() == 2);
  CHECK(cache.find("c")->number == 4);
  CHECK(cache.find("c")->head == "hc2");
  CHECK(cache.find("c")->service == "text");
  // A replaced entry keeps its place: b and c are kept, c is the newer, so d
  // pushes out b.
  cache.put("d", 5, "text", "hd", "z");
  CHECK_FALSE(cache.find("b"));
  REQUIRE(cache.find("c"));
  CHECK(cache.find("c")->body == "y");
  cache.put("c", 6, "text", "hc3", "");  // c is now the oldest: e pushes it out
  cache.put("e", 7, "text", "he", "");
  CHECK_FALSE(cache.find("c"));
  CHECK(cache.find("d")->number == 5);
  CHECK(cache.find("e")->number == 7);
  // Many more keys than it keeps, through the map's rehashes: the newest stay.
  reply_cache big(1000);
  for (int i = 0; i < 5000; ++i) {
    std::string key = "k";
    key += std::to_string(i);  // not "k" + to_string: GCC 12 -O3 warns falsely on that
    big.put(key, std::uint64_t(i), "s", "h", "");
  }
  CHECK(big.size() == 1000);
  CHECK_FALSE(big.find("k3999"));
  REQUIRE(big.find("k4000"));
  CHECK(big.find("k4999")->number == 4999);
  key_filter filter(1024);
  for (int i = 0; i < 100; ++i) filter.add("key" + std::to_string(i));
  for (int i = 0; i < 100; ++i) CHECK(filter.may_contain("key" + std::to_string(i)));
  int false_hits = 0;
  for (int i = 100; i < 1100; ++i) false_hits += filter.may_contain("key" + std::to_string(i));
  CHECK(false_hits < 200);
  // At the load it is sized for (a few keys per 512-bit block): never a
  // miss, and few false hits.
  key_filter sized(std::size_t{1} << 20);
  for (int i = 0; i < 50000; ++i) sized.add("client\x1f" + std::to_string(i));
  int misses = 0;
  for (int i = 0; i < 50000; ++i) misses += !sized.may_contain("client\x1f" + std::to_string(i));
  CHECK(misses == 0);
  false_hits = 0;
  for (int i = 50000; i < 150000; ++i) {
    false_hits += sized.may_contain("client\x1f" + std::to_string(i));
  }
  CHECK(false_hits < 2000);  // 2 %; about 0.5 % expected
}

TEST_CASE("reply cache agrees with a plain model through many puts and evictions", "[journal]") {
  // A model: the keys in order, oldest first, and each key's number. Random
  // keys from a small set make replacements and long probe runs common.
  constexpr std::size_t capacity = 700;
  reply_cache cache(capacity);
  std::deque<std::string> order;
  std::map<std::string, std::uint64_t> numbers;
  std::mt19937 random(7);
  for (std::uint64_t n = 1; n <= 60000; ++n) {
    const std::string key = "client\x1f" + std::to_string(random() % 2000);
    cache.put(key, n, "echo", "h" + std::to_string(n), "");
    if (numbers.contains(key)) {
      numbers[key] = n;
    } else {
      order.push_back(key);
      numbers[key] = n;
      if (order.size() > capacity) {
        numbers.erase(order.front());
        order.pop_front();
      }
    }
    if (n % 997 == 0 || n > 59900) {
      REQUIRE(cache.size() == order.size());
      for (int probe = 0; probe < 2000; ++probe) {
        const std::string k = "client\x1f" + std::to_string(probe);
        const std::optional<cached_reply> found = cache.find(k);
        const auto expected = numbers.find(k);
        REQUIRE(found.has_value() == (expected != numbers.end()));
        if (found) {
          REQUIRE(found->number == expected->second);
          REQUIRE(found->head == "h" + std::to_string(expected->second));
        }
      }
    }
  }
}

TEST_CASE("reply cache keeps about max_bytes of replies, never one larger", "[journal]") {
  reply_cache cache(1000, 10 * 1024);
  const std::string kib(1024, 'x');
  for (int i = 0; i < 50; ++i) {
    cache.put("k" + std::to_string(i), std::uint64_t(i), "echo", "h", kib);
  }
  CHECK(cache.bytes() <= 10 * 1024);
  CHECK(cache.size() >= 8);  // about ten 1 KiB replies, the newest
  CHECK(cache.size() <= 10);
  REQUIRE(cache.find("k49"));
  CHECK(cache.find("k49")->body == kib);
  CHECK_FALSE(cache.find("k30"));

  // Too large alone: not kept, and nothing else is pushed out for it.
  const std::size_t before = cache.size();
  cache.put("big", 99, "echo", "h", std::string(20 * 1024, 'y'));
  CHECK_FALSE(cache.find("big"));
  CHECK(cache.size() == before);
  CHECK(cache.find("k49"));

  // A kept key answered again with a reply too large: forgotten, never the old reply.
  cache.put("k49", 100, "echo", "h", std::string(20 * 1024, 'z'));
  CHECK_FALSE(cache.find("k49"));
  CHECK(cache.bytes() <= 10 * 1024);
  cache.put("k49", 101, "echo", "h2", "small");  // and kept again when it fits
  REQUIRE(cache.find("k49"));
  CHECK(cache.find("k49")->number == 101);
  CHECK(cache.find("k48"));

  // Enough small replies push every large one out.
  for (int i = 0; i < 2000; ++i) {
    cache.put("s" + std::to_string(i), 1000 + std::uint64_t(i), "e", "h", "");
  }
  CHECK_FALSE(cache.find("k48"));
  CHECK(cache.find("s1999"));
  CHECK(cache.bytes() <= 10 * 1024);
  CHECK(cache.size() > 100);  // each small one costs its bytes and ~50 of bookkeeping
}

TEST_CASE("mmi.request finds a parked request behind a later number", "[journal][park]") {
  temp_dir dir;  // SQLite: a second connection blocks its writer
  zmq::context_t context;
  const std::string path = dir.file("j.db");
  broker_options options = journaled(path);
  options.park_after = 1;
  running_broker broker(context, options);
  fake_client c(context, broker.frontend());
  REQUIRE(eventually([&] { return mmi_stats(c)["queued"] == 0; }));

  // The keyed request waits for its row while two unkeyed ones, numbered
  // after it, are queued (one in full, one parked); then it is parked too.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &blocker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  c.send("text", keyed("c1", 1), "keyed");
  c.send("text", json{{"id", 2}}, "unkeyed-2");
  c.send("text", json{{"id", 3}}, "unkeyed-3");
  REQUIRE(eventually([&] { return mmi_stats(c)["queued"] == 2; }));
  REQUIRE(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(blocker);
  REQUIRE(eventually([&] { return mmi_stats(c)["queued"] == 3; }));

  auto found = c.call("mmi.request", {{"of_client", "c1"}, {"of_id", 1}}, "");
  REQUIRE(found);
  const json& result = found->head["result"];
  CHECK(result["state"] == "queued");
  CHECK(result["bytes"] == 5);
  CHECK(result.contains("age_ms"));  // read from the parked queue, not the journal's row
}

TEST_CASE("parked requests with a journal: committed, reloaded in order, answered once",
          "[journal][park]") {
  temp_dir dir(EACH_BACKEND);
  zmq::context_t context;
  auto parking = [&dir] {
    broker_options options = journaled(dir.journal_at("j.db"));  // fresh endpoints each time
    options.park_after = 1;
    return options;
  };
  {
    running_broker broker(context, parking());
    fake_client c(context, broker.frontend());
    for (int id = 1; id <= 4; ++id) c.send("text", keyed("c1", id), "doc-" + std::to_string(id));
    REQUIRE(eventually([&] { return mmi_stats(c)["queued"] == 4; }));
    auto found = c.call("mmi.request", {{"of_client", "c1"}, {"of_id", 4}}, "");
    REQUIRE(found);
    CHECK(found->head["result"]["state"] == "queued");
    CHECK(found->head["result"]["bytes"] == 5);
  }  // the broker stops with four requests waiting, three of them parked

  running_broker broker(context, parking());
  fake_client c(context, broker.frontend());
  REQUIRE(eventually([&] { return mmi_stats(c)["queued"] == 4; }));
  c.send("text", keyed("c1", 3), "doc-3");  // a reloaded request has no client until it is sent again
  REQUIRE(eventually([&] { return mmi_stats(c)["resends"] == 1; }));
  fake_worker w(context, {.endpoint = broker.backend(), .name = "w2"});
  REQUIRE(w.wait_requests(4));
  std::vector<received_request> seen = w.requests();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].payload == "doc-" + std::to_string(i + 1));
    if (i > 0) CHECK(seen[i].number > seen[i - 1].number);
  }
  auto r = c.recv();
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(r->head["id"] == 3);
  CHECK_FALSE(c.recv(100ms));
  CHECK(w.requests().size() == 4);
}

TEST_CASE("a stock client's request survives a restart with its body frames intact",
          "[journal][mdp]") {
  temp_dir dir(EACH_BACKEND);
  const std::string path = dir.journal_at("j.db");
  zmq::context_t context;
  const std::string map = header::from_json({{"code", 404}}).value->encode_string();
  {
    running_broker broker(context, journaled(path));
    fake_client stock(context, broker.frontend());
    stock.send_raw({"", std::string(client_signature), "later", "part1", map, ""});
    fake_client mmi(context, broker.frontend());
    CHECK(eventually([&] { return mmi_stats(mmi)["queued"] == 1; }));
  }
  running_broker again(context, journaled(path));
  fake_client mmi(context, again.frontend());
  fake_worker_options plain;
  plain.plain_mdp = true;
  plain.service = "later";
  plain.auto_reply = false;
  auto workers = start_workers(context, again, mmi, {"P"}, plain);
  REQUIRE(workers[0]->wait_requests(1));
  CHECK(workers[0]->requests()[0].body == std::vector<std::string>{"part1", map, ""});
}

TEST_CASE("the owner column: added in place to an older journal, kept per row", "[journal]") {
  temp_dir dir;
  const std::string path = dir.file("old.db");
  {
    // A journal as written before `owner` existed, with one stored document.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* old_schema =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE requests (number INTEGER PRIMARY KEY, client TEXT, client_id TEXT,"
        " service TEXT NOT NULL, title TEXT, bytes INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,"
        " worker TEXT, attempts INTEGER NOT NULL DEFAULT 0, received_ms INTEGER,"
        " dispatched_ms INTEGER, completed_ms INTEGER, code INTEGER, count_a INTEGER,"
        " stored_as TEXT, reply_head BLOB, reply_body BLOB, request_head BLOB, payload BLOB);"
        "INSERT INTO requests (number, service, state, worker, code, stored_as)"
        " VALUES (1, 'text', 'done', 'w1', 200, '1-old.json');";
    REQUIRE(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto j = open_journal({.path = path});
  // Migrated in place: the text service's old columns are folded into `result`.
  const std::optional<journal_record> migrated = j->find(1);
  REQUIRE(migrated);
  CHECK(migrated->result_string("stored_as") == "1-old.json");
  CHECK(j->owner_of(1) == std::string());  // old rows: no owner
  CHECK(j->owner_of(9) == std::nullopt);   // no row
  journal_event e = received_event(2, "2", "{}");
  e.row.owner = "alice";
  j->post(std::move(e));
  j->post(finished_event(2, 200, "reply"));
  j->post(received_event(3, "3", "{}"));
  j->post(finished_event(3, 500, "failed"));
  j->flush();
  CHECK(j->owner_of(2) == std::string("alice"));
  // stored(): answered 200 with a file, newest first; with an owner, only theirs.
  const std::vector<journal_record> all = j->done_with("stored_as", 10, std::nullopt);
  REQUIRE(all.size() == 2);
  CHECK(all[0].number == 2);
  CHECK(all[1].number == 1);
  const std::vector<journal_record> alices = j->done_with("stored_as", 10, std::string("alice"));
  REQUIRE(alices.size() == 1);
  CHECK(alices[0].number == 2);
  CHECK(j->done_with("stored_as", 10, std::string("bob")).empty());
}
