// The routing log as an access log: one line per finished request, formatted
// off the broker's loop, with client text escaped.
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "broker/access_log.hpp"
#include "shared/header.hpp"
#include "shared/logging.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/support/scratch_files.hpp"

using namespace carico;
using namespace carico::test;

namespace {

zmq::message_t head_of(const nlohmann::json& j) {
  header_result h = header::from_json(j);
  REQUIRE(h);
  return h.value->encode();
}

}  // namespace

TEST_CASE("an access line says where a request went and how long each part took", "[access]") {
  access_record r;
  r.number = 7;
  r.code = 200;
  r.outcome = "done";
  r.service = "text";
  r.worker = "w1";
  r.attempts = 1;
  r.client = std::string("\x00\xa1", 2);
  r.head = head_of({{"client", "c1"}, {"id", 12}, {"title", "Banana bread"}});
  r.bytes = 311;
  r.queued_us = 100;
  r.worker_us = 2300;
  r.total_us = 2400;
  CHECK(access_log::format(r) ==
        "request 7 done code=200 service=text worker=w1 attempts=1 client=00a1 name=c1 id=12 "
        "title=\"Banana bread\" bytes=311 queued_ms=0.1 worker_ms=2.3 total_ms=2.4");

  SECTION("control characters from a client never reach the line raw") {
    r.head = head_of({{"title", "evil\n2026-01-01 fake line\t\x1b[2J"}, {"id", "a\rb"}});
    const std::string line = access_log::format(r);
    for (char c : line) CHECK(static_cast<unsigned char>(c) >= 0x20);
    CHECK(line.find("evil\\x0a2026") != std::string::npos);
  }
  SECTION("a stock client's request has no header to read") {
    r.stock = true;
    r.head = zmq::message_t();
    r.worker.clear();
    r.outcome = "expired";
    r.code = 504;
    CHECK(access_log::format(r) ==
          "request 7 expired code=504 service=text worker=- attempts=1 client=00a1 dialect=mdp "
          "bytes=311 queued_ms=0.1 worker_ms=2.3 total_ms=2.4");
  }
}

TEST_CASE("the broker writes one access line per finished request, none at warn", "[access]") {
  zmq::context_t context;
  SECTION("at info") {
    log_capture logs;
    running_broker broker(context, fast_broker_options(), logs.logger());
    fake_client client(context, broker.frontend());
    auto workers = start_workers(context, broker, client, {"A"});
    for (int i = 0; i < 5; ++i) {
      std::optional<client_view> r = client.call("text", {{"id", i}, {"title", "t" + std::to_string(i)}}, "d");
      REQUIRE(r);
      CHECK(r->code() == 200);
    }
    REQUIRE(logs.wait_for("done code=200 service=text worker=A", 5));
    CHECK(logs.count("title=\"t3\"") == 1);
    CHECK(logs.count("request 1 ") == 1);  // one line per request, not one per step
  }
  SECTION("at warn: nothing per request, and no thread") {
    log_capture logs;
    logs.logger()->set_level(spdlog::level::warn);
    access_log off(logs.logger());
    CHECK_FALSE(off.enabled());
  }
}

namespace {

// A sink that cannot write, as a file sink on a full disk.
class failing_sink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg&) override {
    throw spdlog::spdlog_ex("Failed writing to file: No space left on device");
  }
  void flush_() override {}
};

}  // namespace

TEST_CASE("a sink that cannot write loses its lines, never the other sinks' or the thread",
          "[access]") {
  log_capture logs;
  logs.logger()->sinks().insert(logs.logger()->sinks().begin(), std::make_shared<failing_sink>());
  access_log access(logs.logger());
  REQUIRE(access.enabled());
  for (std::uint64_t n = 1; n <= 3; ++n) {
    access_record r;
    r.number = n;
    r.code = 200;
    r.outcome = "done";
    r.service = "echo";
    access.add(std::move(r));
    access.flush();
  }
  CHECK(logs.wait_for("request 3 done code=200 service=echo"));
  CHECK(logs.wait_for("request 1 done"));
}

TEST_CASE("each batch of lines is in the log file when written, whatever its buffer holds",
          "[access]") {
  // The broker's file has a 64 KiB buffer. This logger is dropped from
  // spdlog's registry, so no periodic flush writes it out: only the access
  // log's own flush after a batch can put the line in the file.
  const scratch_dir dir("test-access");
  const std::filesystem::path file = dir.path / "loadbalancer.log";
  auto log = make_logger({.name = "access-buffered", .file = file.string(),
                          .console_level = "off", .file_buffer_bytes = 64 << 10});
  spdlog::drop("access-buffered");
  {
    access_log access(log);
    access_record r;
    r.number = 41;
    r.code = 200;
    r.outcome = "done";
    r.service = "echo";
    access.add(std::move(r));
    access.flush();
    const std::string text = wait_for_text(file, [](const std::string& t) {
      return t.find("request 41 done") != std::string::npos;
    });
    CHECK_THAT(text, Catch::Contains("request 41 done code=200 service=echo"));
  }
  log.reset();
}
