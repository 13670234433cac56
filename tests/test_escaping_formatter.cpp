// shared/escaping_formatter: text from users cannot split or forge a log line,
// through a bare formatter and through make_logger's real file sink.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>

#include "shared/escaping_formatter.hpp"
#include "shared/logging.hpp"
#include "tests/support/scratch_files.hpp"

namespace fs = std::filesystem;
using carico::escaping_formatter;
using carico::test::scratch_dir;
using carico::test::wait_for_text;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// No byte below 0x20 (nor DEL) but the newlines that end lines.
bool only_printable(const std::string& text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n') || u == 0x7f) return false;
  }
  return true;
}

const std::regex timestamped(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} .*)");

// A title as a hostile document may carry it: a forged second line included.
const std::string hostile =
    "Rapporto\n2030-01-01 00:00:00.000 info  [broker] forged\r\tend\x1b[2J\x07\x7f";

}  // namespace

TEST_CASE("escaping_formatter: one call is one line, its control characters written out") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger log("test", sink);
  log.set_formatter(std::make_unique<escaping_formatter>(carico::log_pattern));

  log.info("stored title={} bytes={}", hostile, 12);
  log.warn("clean line");
  const std::string text = out.str();
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == 2);
  CHECK(only_printable(text));
  for (const std::string& line : lines) CHECK(std::regex_match(line, timestamped));
  CHECK_THAT(lines[0], Catch::EndsWith(
                           "[test] stored title=Rapporto\\n2030-01-01 00:00:00.000 info  [broker] "
                           "forged\\r\\tend\\x1b[2J\\x07\\x7f bytes=12"));
  CHECK_THAT(lines[1], Catch::EndsWith("warning [test] clean line"));
}

TEST_CASE("escaping_formatter: clones escape too (every sink of a logger gets one)") {
  std::ostringstream a, b;
  spdlog::logger log("two", {std::make_shared<spdlog::sinks::ostream_sink_mt>(a),
                             std::make_shared<spdlog::sinks::ostream_sink_mt>(b)});
  log.set_formatter(std::make_unique<escaping_formatter>("%v"));
  log.info("x\ty");
  CHECK(a.str() == "x\\ty\n");
  CHECK(b.str() == "x\\ty\n");
}

TEST_CASE("sample: printable runs as they are, every other byte and the backslash as \\xNN") {
  using carico::sample;
  CHECK(sample("plain", 5) == "plain");
  CHECK(sample("a\nb", 3) == "a\\x0ab");
  CHECK(sample("\\", 1) == "\\x5c");
  CHECK(sample("\x01\x7f\xc3\xa0", 4) == "\\x01\\x7f\\xc3\\xa0");
  CHECK(sample("ends\t", 5) == "ends\\x09");
  // Cut at max, saying how long the bytes were.
  CHECK(sample("abcdefgh", 8, 3) == "abc...(8 bytes)");
  CHECK(sample("ab\ncdefgh", 9, 3) == "ab\\x0a...(9 bytes)");
  CHECK(sample("", 0).empty());
  std::string line = "key=";
  carico::append_sample(line, "v\r", 2);
  CHECK(line == "key=v\\x0d");
}

TEST_CASE("make_logger: info lines reach the file within seconds, with no flush asked") {
  // A large buffer for the file's stream (the broker's); the periodic flush
  // still writes out whatever it holds each second (without it they would
  // wait for the exit).
  const scratch_dir dir("test-buffered");
  const fs::path file = dir.path / "buffered.log";
  auto log = carico::make_logger({.name = "buffered-test", .file = file.string(),
                                  .console_level = "off", .file_buffer_bytes = 64 << 10});
  for (int i = 0; i < 300; ++i) log->info("line {} of some routing-log length", i);
  const std::string text =
      wait_for_text(file, [](const std::string& t) { return lines_of(t).size() >= 300; });
  CHECK(lines_of(text).size() == 300);
  spdlog::drop("buffered-test");
  log.reset();
}

TEST_CASE("make_logger: the log file has one timestamped line per call, nothing raw") {
  const scratch_dir dir("test-escape");
  const fs::path file = dir.path / "escape.log";
  {
    auto log = carico::make_logger({.name = "escape-test", .file = file.string(),
                                    .console_level = "off"});
    log->info("worker w1 stored title={}", hostile);
    log->info("second");
    log->flush();  // async: asks the logger thread, which writes soon after
    spdlog::drop("escape-test");
  }
  const std::string text =
      wait_for_text(file, [](const std::string& t) { return lines_of(t).size() >= 2; });
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == 2);
  CHECK(only_printable(text));
  for (const std::string& line : lines) CHECK(std::regex_match(line, timestamped));
  CHECK_THAT(lines[0], Catch::Contains("title=Rapporto\\n2030-01-01"));
}
