// The REPL's pieces that need no terminal: the batch account (progress line,
// summary, percentiles), the nearest-command suggestion, typed words and
// numbers, the worker, history and stored tables and the corpus generator. The REPL itself is driven through a pty in
// tests/system/test_repl.sh.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "client/corpus.hpp"
#include "client/mmi_report.hpp"
#include "client/progress.hpp"
#include "client/repl.hpp"
#include "client/repl_words.hpp"

namespace {

carico::reply make_reply(std::uint64_t code, const std::string& worker, long latency_us) {
  carico::reply r;
  r.code = code;
  r.head = nlohmann::json::object();
  if (!worker.empty()) r.head["worker"] = worker;
  r.latency = std::chrono::microseconds(latency_us);
  return r;
}

}  // namespace

TEST_CASE("batch_progress counts codes, workers and latency percentiles") {
  carico::batch_progress p(100);
  for (int i = 0; i < 100; ++i) p.sent();
  for (int i = 1; i <= 98; ++i) p.completed(make_reply(200, i % 2 ? "w1" : "w2", i * 1000));
  p.completed(make_reply(504, "", 99000));
  p.completed(make_reply(500, "w1", 100000));

  CHECK(p.finished());
  CHECK(p.ok() == 98);
  CHECK(p.failed() == 2);
  CHECK(p.codes().at(200) == 98);
  CHECK(p.codes().at(504) == 1);
  CHECK(p.workers().at("w1") == 50);
  CHECK(p.workers().at("w2") == 49);
  CHECK(p.workers().at("") == 1);
  CHECK(p.percentile(0.50) == std::chrono::milliseconds(50));
  CHECK(p.percentile(0.99) == std::chrono::milliseconds(99));
  CHECK(p.percentile(1.0) == std::chrono::milliseconds(100));

  const std::string summary = p.summary(std::chrono::seconds(2));
  CHECK_THAT(summary, Catch::Contains("100 documents in 2.00 s (50/s): 98 ok, 2 failed"));
  CHECK_THAT(summary, Catch::Contains("200 x98  500 x1  504 x1"));
  CHECK_THAT(summary, Catch::Contains("p50 50.0 ms  p99 99.0 ms  max 100.0 ms"));
  CHECK_THAT(summary, Catch::Contains("(none) 1  w1 50  w2 49"));
}

TEST_CASE("batch_progress progress line: sent, done, failed, rate, ETA") {
  carico::batch_progress p(10);
  CHECK(p.percentile(0.5) == std::chrono::microseconds(0));
  CHECK(p.progress_line(std::chrono::seconds(1)) == "sent 0/10  done 0  failed 0  0/s  ETA -");
  for (int i = 0; i < 6; ++i) p.sent();
  for (int i = 0; i < 4; ++i) p.completed(make_reply(i == 0 ? 503 : 200, "w1", 10));
  CHECK(p.progress_line(std::chrono::seconds(2)) == "sent 6/10  done 4  failed 1  2/s  ETA 3.0s");
  CHECK(!p.finished());
}

TEST_CASE("edit distance and the nearest command") {
  CHECK(carico::edit_distance("", "") == 0);
  CHECK(carico::edit_distance("sned", "send") == 2);
  CHECK(carico::edit_distance("workrs", "workers") == 1);
  CHECK(carico::edit_distance("kitten", "sitting") == 3);

  zmq::context_t context;
  carico::client_options client_options;
  client_options.endpoint = "inproc://nobody";
  carico::client c(context, client_options);
  carico::repl_options repl_options;
  repl_options.interactive = false;
  carico::repl shell(c, repl_options);
  CHECK(shell.suggest("sned") == "send");
  CHECK(shell.suggest("workres") == "workers");
  CHECK(shell.suggest("ftp") == "FTP");
  CHECK(shell.suggest("stast") == "stats");
  CHECK_FALSE(shell.suggest("xyzzyplugh").has_value());
  shell.add_command({"history", "history [N]", "the last N requests", "history 5", [](const auto&) {}});
  CHECK(shell.suggest("histroy") == "history");
}

TEST_CASE("worker table: aligned, with load, memory and heartbeat") {
  const nlohmann::json result = {
      {"workers",
       {{{"name", "w1"}, {"state", "ready"}, {"in_flight", 0}, {"capacity", 1}, {"rss_bytes", 20 << 20},
         {"mem_percent", 0.5}, {"last_seen_ms", 12}, {"service", "text"}, {"pid", 42}},
        {{"name", "worker-two"}, {"state", "overload"}, {"in_flight", 3}, {"capacity", 4},
         {"service", "text"}}}}};
  std::istringstream table(carico::format_workers(result));
  std::string header, first, second;
  std::getline(table, header);
  std::getline(table, first);
  std::getline(table, second);
  CHECK(header.rfind("NAME        STATE     IN FLIGHT  MEMORY", 0) == 0);
  CHECK_THAT(first, Catch::StartsWith("w1          ready     0 / 1      20.0 MiB (0.5%)  12 ms ago"));
  CHECK_THAT(second, Catch::StartsWith("worker-two  overload  3 / 4      -"));
  CHECK(header.find("LAST HEARTBEAT") == first.find("12 ms ago"));
  CHECK(carico::format_workers(nlohmann::json{{"workers", nlohmann::json::array()}}) == "no workers\n");
  CHECK(carico::format_workers(nlohmann::json("garbage")) == "no workers\n");
}

TEST_CASE("typed words and numbers") {
  CHECK(carico::split_words("  send   a.json\tb.json ") == std::vector<std::string>{"send", "a.json", "b.json"});
  CHECK(carico::split_words(" ").empty());
  CHECK(carico::lower_case("FTP") == "ftp");

  std::string why;
  CHECK(carico::typed_number("17", 1000, why) == 17u);
  CHECK(carico::typed_number("007", 1000, why) == 7u);
  CHECK(carico::typed_number("1000", 1000, why) == 1000u);
  CHECK(carico::typed_number("18446744073709551615", UINT64_MAX, why) == std::nullopt);  // 20 digits
  CHECK(carico::typed_number("9223372036854775807", INT64_MAX, why) == 9223372036854775807u);
  for (const char* bad : {"0", "-4", "2.5", "+3", "1e3", "", "12x", " 1"}) {
    INFO(bad);
    why.clear();
    CHECK_FALSE(carico::typed_number(bad, 1000, why));
    CHECK(why == std::string("N must be a positive integer, not '") + bad + "'");
  }
  CHECK_FALSE(carico::typed_number("1001", 1000, why));
  CHECK(why == "N must be at most 1000, not 1001");

  CHECK(carico::looks_numeric("0"));
  CHECK(carico::looks_numeric("-4"));
  CHECK(carico::looks_numeric("2.5"));
  CHECK_FALSE(carico::looks_numeric("hello.json"));
  CHECK_FALSE(carico::looks_numeric("-"));
}

TEST_CASE("history and stored tables, the broker line, display text") {
  const nlohmann::json history = {
      {"requests",
       {{{"request", 12}, {"state", "done"}, {"code", 200}, {"worker", "w1"}, {"attempts", 1}, {"bytes", 512},
         {"title", "Pasta\x1b[2J alla norma"}},
        {{"request", 13}, {"state", "queued"}, {"title", std::string(70, 'x')}},
        "not a row"}}};
  std::istringstream rows(carico::format_history(history));
  std::string header, first, second, more;
  std::getline(rows, header);
  std::getline(rows, first);
  std::getline(rows, second);
  CHECK(header.rfind("REQUEST  STATE   CODE  WORKER  ATTEMPTS  BYTES  TITLE", 0) == 0);
  CHECK(first == "12       done    200   w1      1         512    Pasta?[2J alla norma");
  CHECK(second == "13       queued  -     -       -         -      " + std::string(60, 'x') + "...");
  CHECK_FALSE(std::getline(rows, more));  // the row that is not an object is skipped
  CHECK(carico::format_history({{"requests", nlohmann::json::array()}}) == "no requests yet\n");
  CHECK(carico::format_history(nlohmann::json("garbage")) == "no requests yet\n");

  const nlohmann::json stored = {{"documents",
                                  {{{"request", 7},
                                    {"title", "Haiku"},
                                    {"worker", "w2"},
                                    {"bytes", 90},
                                    {"completed_ms", 1700000000123}}}}};
  CHECK(carico::format_stored(stored) ==
        "REQUEST  TITLE  WORKER  BYTES  WHEN (UTC)\n"
        "7        Haiku  w2      90     2023-11-14 22:13:20\n");
  CHECK(carico::format_stored({{"documents", {{{"request", 8}, {"completed_ms", "soon"}}}}}) ==
        "REQUEST  TITLE  WORKER  BYTES  WHEN (UTC)\n"
        "8        -      -       -      -\n");
  CHECK(carico::format_stored(nlohmann::json::object()) == "no stored documents\n");

  CHECK(carico::format_broker_line("tcp://b:5555", "tcp://a:5555,tcp://b:5555") == "broker tcp://b:5555\n");
  CHECK(carico::format_broker_line("", "inproc://x") == "broker inproc://x\n");

  CHECK(carico::display_text("città\n\x7f", 10) == "città??");
  CHECK(carico::display_text("àèìòù", 3) == "àèì...");
  CHECK(carico::display_text("abc", 3) == "abc");
}

TEST_CASE("corpus generator: original format, about the size asked, deterministic") {
  for (std::size_t size : {60UL, 500UL, 4096UL, 100000UL}) {
    const std::string text = carico::make_document(7, size, 3);
    const nlohmann::json doc = nlohmann::json::parse(text);
    REQUIRE(doc.is_object());
    CHECK(doc.at("titolo").is_string());
    CHECK(!doc.at("contenuto").get<std::string>().empty());
    CHECK(text.size() >= size * 9 / 10);
    CHECK(text.size() <= size * 11 / 10 + 20);
    CHECK(carico::make_document(7, size, 3) == text);
  }
  CHECK(carico::make_document(1, 2000, 3) != carico::make_document(2, 2000, 3));

  const auto dir = std::filesystem::temp_directory_path() /
                   ("carico-corpus-" + std::to_string(::getpid()));
  std::string error;
  carico::corpus_options options;
  options.count = 5;
  options.size = 300;
  options.out = dir.string();
  REQUIRE(carico::generate_corpus(options, error));
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++files;
    std::ifstream in(entry.path());
    CHECK(nlohmann::json::parse(in).contains("contenuto"));
  }
  CHECK(files == 5);
  std::filesystem::remove_all(dir);
  options.out = "/proc/no/such/place";
  CHECK_FALSE(carico::generate_corpus(options, error));
  CHECK(!error.empty());
}
