// The broker's HTTP port: the Prometheus exposition writer, the duration
// histogram, the snapshot hand-off between the loop and readers, and the HTTP
// server on a real loopback socket in front of a broker in this process.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/duration_histogram.hpp"
#include "broker/http_server.hpp"
#include "broker/prometheus_text.hpp"
#include "broker/snapshot_publisher.hpp"
#include "broker/snapshot_render.hpp"
#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;

namespace {

struct http_reply {
  int status{0};     // 0: no answer
  std::string body;  // after the headers
};

// GET path from 127.0.0.1:port with a plain socket, HTTP/1.0: what the
// simplest scraper does.
http_reply http_get(int port, const std::string& path) {
  http_reply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return out;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return out;
  }
  std::string all;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    all.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  const auto space = all.find(' ');
  const auto end = all.find("\r\n\r\n");
  if (space == std::string::npos || end == std::string::npos) return out;
  out.status = std::atoi(all.c_str() + space + 1);
  out.body = all.substr(end + 4);
  return out;
}

// The value of the sample line `name{labels}` in an exposition, or -1.
double sample_value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("label values escape backslash, quote and newline, bad UTF-8 becomes ?", "[metrics]") {
  CHECK(prometheus_text::escape_label_value("plain") == "plain");
  CHECK(prometheus_text::escape_label_value(R"(a\b)") == R"(a\\b)");
  CHECK(prometheus_text::escape_label_value(R"(say "hi")") == R"(say \"hi\")");
  CHECK(prometheus_text::escape_label_value("two\nlines") == R"(two\nlines)");
  CHECK(prometheus_text::escape_label_value("citt\xc3\xa0") == "citt\xc3\xa0");  // UTF-8 kept
  CHECK(prometheus_text::escape_label_value("bad\xff\xc3") == "bad??");
  CHECK(prometheus_text::escape_label_value("\xed\xa0\x80") == "???");  // a surrogate
  CHECK(prometheus_text::escape_help("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\"");

  prometheus_text out;
  out.family("x_total", "counter", "Help with \\ and\nnewline.");
  out.sample("x_total", {{"service", "we\"ird\\\n"}, {"code", "200"}}, 3);
  CHECK(out.take() ==
        "# HELP x_total Help with \\\\ and\\nnewline.\n"
        "# TYPE x_total counter\n"
        "x_total{service=\"we\\\"ird\\\\\\n\",code=\"200\"} 3\n");
}

TEST_CASE("sample values: shortest decimal, +Inf, -Inf, NaN", "[metrics]") {
  CHECK(prometheus_text::format_value(100) == "100");
  CHECK(prometheus_text::format_value(0.25) == "0.25");
  CHECK(std::stod(prometheus_text::format_value(1e-4)) == 1e-4);  // "1e-04": Go parses it
  CHECK(prometheus_text::format_value(1.0 / 0.0) == "+Inf");
  CHECK(prometheus_text::format_value(-1.0 / 0.0) == "-Inf");
  CHECK(prometheus_text::format_value(std::nan("")) == "NaN");
}

TEST_CASE("histogram buckets are cumulative, le inclusive, +Inf is the count", "[metrics]") {
  duration_histogram h({0.1, 0.5, 1});
  for (double v : {0.05, 0.1, 0.3, 0.5, 0.7, 2.0, -1.0}) h.observe(v);
  // le=0.1: 0.05, 0.1, -1 (as 0); le=0.5: + 0.3, 0.5; le=1: + 0.7; +Inf: + 2.0
  CHECK(h.cumulative() == std::vector<std::uint64_t>{3, 5, 6, 7});
  CHECK(h.count() == 7);
  CHECK(h.sum() == Approx(0.05 + 0.1 + 0.3 + 0.5 + 0.7 + 2.0));

  prometheus_text out;
  out.histogram("d_seconds", {{"service", "text"}}, h);
  CHECK(out.take() ==
        "d_seconds_bucket{service=\"text\",le=\"0.1\"} 3\n"
        "d_seconds_bucket{service=\"text\",le=\"0.5\"} 5\n"
        "d_seconds_bucket{service=\"text\",le=\"1\"} 6\n"
        "d_seconds_bucket{service=\"text\",le=\"+Inf\"} 7\n"
        "d_seconds_sum{service=\"text\"} 3.65\n"
        "d_seconds_count{service=\"text\"} 7\n");

  duration_histogram none;
  CHECK(none.cumulative() ==
        std::vector<std::uint64_t>(duration_histogram::default_bounds().size() + 1, 0));
}

TEST_CASE("the broker's exposition: every family once with HELP and TYPE, codes by service",
          "[metrics]") {
  broker_snapshot s;
  s.started_ms = 1700000000000;
  s.taken_ms = s.started_ms + 5000;
  s.received = 12;
  s.redispatched = 2;
  s.refused = 1;
  service_snapshot& text = s.services.emplace_back();
  text.name = "text";
  text.queued = 4;
  text.codes = {{200, 10}, {500, 1}};
  text.total.observe(0.02);
  worker_snapshot& w = text.ring.emplace_back();
  w.name = "w\"1";
  w.state = "overload";
  w.in_flight = 2;
  w.capacity = 4;
  s.journal_enabled = true;
  s.journal_bytes = 8192;
  s.journal_commit.observe(0.001);
  s.rss_bytes = 1 << 20;
  const std::string m = metrics_text(s);

  CHECK(sample_value(m, R"(carico_requests_total{service="text",code="200"})") == 10);
  CHECK(sample_value(m, R"(carico_requests_total{service="text",code="500"})") == 1);
  CHECK(sample_value(m, "carico_redispatches_total") == 2);
  CHECK(sample_value(m, "carico_refusals_total") == 1);
  CHECK(sample_value(m, R"(carico_queue_depth{service="text"})") == 4);
  CHECK(sample_value(m, R"(carico_workers{service="text",state="overload"})") == 1);
  CHECK(sample_value(m, R"(carico_workers{service="text",state="ready"})") == 0);
  CHECK(sample_value(m, R"(carico_worker_in_flight{service="text",worker="w\"1"})") == 2);
  CHECK(sample_value(m, R"(carico_request_duration_seconds_count{service="text"})") == 1);
  CHECK(sample_value(m, R"(carico_request_duration_seconds_bucket{service="text",le="+Inf"})") ==
        1);
  CHECK(sample_value(m, "carico_journal_commit_seconds_count") == 1);
  CHECK(sample_value(m, "carico_journal_size_bytes") == 8192);
  CHECK(sample_value(m, "process_resident_memory_bytes") == 1 << 20);
  CHECK(sample_value(m, "process_start_time_seconds") == 1700000000);

  // Each family's HELP and TYPE exactly once, before its samples.
  std::set<std::string> typed;
  std::istringstream lines(m);
  const std::regex sample_line(R"(^([a-z_]+?)(_bucket|_sum|_count)?(\{.*\})? [-+0-9.eInfNa]+$)");
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(typed.insert(name).second);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    std::smatch match;
    REQUIRE(std::regex_match(line, match, sample_line));
    const std::string base = match[1].str();
    CHECK((typed.count(base) == 1 || typed.count(base + match[2].str()) == 1));
  }
}

TEST_CASE("snapshot hand-off: readers under a publishing storm see whole snapshots", "[metrics]") {
  snapshot_publisher publisher;
  CHECK(publisher.latest() == nullptr);
  constexpr std::uint64_t last = 20000;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<int> torn{0};
  std::atomic<int> backwards{0};
  auto reader = [&] {
    std::uint64_t seen = 0;
    while (!done.load()) {
      std::shared_ptr<const broker_snapshot> s = publisher.latest();
      if (!s) continue;
      // Built whole before publish: every field agrees with the sequence.
      const std::string name = "s" + std::to_string(s->sequence);
      if (s->done != s->sequence * 2 || s->services.size() != 1 || s->services[0].name != name ||
          s->services[0].ring.size() != s->sequence % 7) {
        ++torn;
      }
      if (s->sequence < seen) ++backwards;
      seen = s->sequence;
      ++reads;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  for (std::uint64_t n = 1; n <= last; ++n) {
    broker_snapshot s;
    s.sequence = n;
    s.done = n * 2;
    service_snapshot& svc = s.services.emplace_back();
    svc.name = "s" + std::to_string(n);
    svc.ring.resize(n % 7);
    publisher.publish(std::make_shared<const broker_snapshot>(std::move(s)));
  }
  // Let the readers see the last one too.
  eventually([&] { return reads.load() > 1000; });
  done = true;
  for (std::thread& t : readers) t.join();
  CHECK(torn == 0);
  CHECK(backwards == 0);
  CHECK(reads > 0);
  CHECK(publisher.latest()->sequence == last);
}

TEST_CASE("listen addresses: ADDR:PORT, [v6]:PORT, anything else refused", "[metrics]") {
  auto a = parse_listen_address("127.0.0.1:5557");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 5557);
  auto v6 = parse_listen_address("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  for (const char* bad : {"", "5557", "127.0.0.1", "127.0.0.1:", ":5557", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:55x", "::1:5557", "[::1]5557"}) {
    INFO(bad);
    CHECK_FALSE(parse_listen_address(bad));
  }
}

TEST_CASE("the HTTP port refuses a non-loopback address without insecure, and a taken port",
          "[metrics]") {
  auto publisher = std::make_shared<snapshot_publisher>();
  CHECK_THROWS_WITH(http_server(publisher, {.listen = "0.0.0.0:0"}), Catch::Contains("--insecure"));
  CHECK_THROWS_AS(http_server(publisher, {.listen = "nonsense"}), std::invalid_argument);
  http_server first(publisher, {.listen = "127.0.0.1:0"});
  CHECK_THROWS_WITH(http_server(publisher, {.listen = "127.0.0.1:" + std::to_string(first.port())}),
                    Catch::Contains("cannot listen"));
  // Nothing published yet: not healthy, and said why.
  http_reply health = http_get(first.port(), "/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Catch::Contains("not published"));
  CHECK(http_get(first.port(), "/nope").status == 404);
}

TEST_CASE("a broker's HTTP port: metrics, health, state and dashboard while requests flow",
          "[metrics][broker]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.snapshot_every = milliseconds(20);
  std::shared_ptr<const snapshot_publisher> snapshots;
  {
    running_broker broker(context, options);
    snapshots = broker.snapshots();
    http_server http(snapshots, {.listen = "127.0.0.1:0"});
    fake_client mmi(context, broker.frontend());
    fake_worker_options wo;
    wo.endpoint = broker.backend();
    wo.name = "w1";
    wo.capacity = 4;
    auto w1 = std::make_unique<fake_worker>(context, wo);
    REQUIRE(wait_for_workers(mmi, 1).size() == 1);

    // Scrapes all along, on another thread, as Prometheus and the dashboard do.
    std::atomic<bool> stop{false};
    std::atomic<int> scrapes{0}, bad{0};
    std::thread scraper([&] {
      while (!stop) {
        if (http_get(http.port(), "/metrics").status != 200) ++bad;
        if (http_get(http.port(), "/api/state").status != 200) ++bad;
        ++scrapes;
      }
    });
    fake_client c(context, broker.frontend());
    constexpr int documents = 50;
    for (int i = 0; i < documents; ++i) {
      auto r = c.call("text", {{"id", i}}, "a document");
      REQUIRE(r);
      REQUIRE(r->head["code"] == 200);
    }
    // The snapshot after the last reply says 50.
    const std::string series = R"(carico_requests_total{service="text",code="200"})";
    CHECK(eventually(
        [&] { return sample_value(http_get(http.port(), "/metrics").body, series) == documents; }));
    stop = true;
    scraper.join();
    CHECK(scrapes > 0);
    CHECK(bad == 0);

    const std::string m = http_get(http.port(), "/metrics").body;
    CHECK(sample_value(m, R"(carico_request_duration_seconds_count{service="text"})") == documents);
    CHECK(sample_value(m, R"(carico_workers{service="text",state="ready"})") == 1);
    CHECK(sample_value(m, R"(carico_worker_answered_total{service="text",worker="w1"})") ==
          documents);
    CHECK(sample_value(m, "process_resident_memory_bytes") > 0);

    http_reply health = http_get(http.port(), "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "serving\n");

    json state = json::parse(http_get(http.port(), "/api/state").body);
    CHECK(state["health"]["ok"] == true);
    CHECK(state["totals"]["done"] == documents);
    REQUIRE(state["services"].size() == 1);
    CHECK(state["services"][0]["name"] == "text");
    CHECK(state["services"][0]["codes"]["200"] == documents);
    REQUIRE(state["services"][0]["ring"].size() == 1);
    CHECK(state["services"][0]["ring"][0]["name"] == "w1");
    CHECK(state["services"][0]["ring"][0]["state"] == "ready");
    CHECK(state["latency"]["samples"] == documents);
    CHECK(state["latency"]["p99_ms"].get<double>() >= state["latency"]["p50_ms"].get<double>());

    http_reply page = http_get(http.port(), "/");
    CHECK(page.status == 200);
    CHECK_THAT(page.body, Catch::Contains("api/state"));
    CHECK_THAT(page.body, Catch::Contains("</html>"));

    // The worker goes, the broker forgets the idle service: its counters stay.
    w1.reset();
    CHECK(eventually(
        [&] {
          return sample_value(http_get(http.port(), "/metrics").body,
                              R"(carico_workers{service="text",state="ready"})") == -1;
        },
        3000ms));
    CHECK(sample_value(http_get(http.port(), "/metrics").body, series) == documents);
    json forgotten = json::parse(http_get(http.port(), "/api/state").body);
    REQUIRE(forgotten["services"].size() == 1);
    CHECK(forgotten["services"][0]["active"] == false);
    CHECK(forgotten["services"][0]["codes"]["200"] == documents);
  }
  // run() ended: its last snapshot says so.
  REQUIRE(snapshots->latest());
  CHECK(snapshots->latest()->stopping);
  CHECK(health_problem(snapshots->latest().get(), unix_ms(), 3000) == "shutting down");
}

TEST_CASE("health: a loop that stopped publishing, a failing journal", "[metrics]") {
  broker_snapshot s;
  s.taken_ms = 10000;
  CHECK(health_problem(&s, 10500, 3000).empty());
  CHECK_THAT(health_problem(&s, 20000, 3000), Catch::Contains("has not published"));
  s.journal_enabled = true;
  s.journal_failing = true;
  s.journal_path = "j.db";
  CHECK_THAT(health_problem(&s, 10500, 3000), Catch::Contains("journal unavailable"));
  CHECK_THAT(health_problem(nullptr, 0, 3000), Catch::Contains("not published"));
}
