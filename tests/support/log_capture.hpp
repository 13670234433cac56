// A logger whose lines a test can read back, to assert that something was
// logged (spdlog's tests/test_sink.h in spirit).
//
//   carico::test::log_capture logs;
//   carico::broker b(context, options, logs.logger());
//   ...
//   REQUIRE(logs.wait_for("malformed client message"));
//
// Thread-safe: the component logs from its threads, the test reads from its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

namespace carico::test {

class log_capture {
 public:
  // Keeps the last max_lines lines. CARICO_TEST_LOG=<level> also prints them.
  explicit log_capture(std::size_t max_lines = 200000);

  std::shared_ptr<spdlog::logger> logger() const { return logger_; }
  // Lines containing text so far.
  std::size_t count(std::string_view text) const;
  bool contains(std::string_view text) const { return count(text) > 0; }
  // Waits until at least n lines contain text.
  bool wait_for(std::string_view text, std::size_t n = 1,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) const;
  std::vector<std::string> lines() const;

 private:
  class sink;
  std::shared_ptr<sink> sink_;               // stores the lines
  std::shared_ptr<spdlog::logger> logger_;   // writes to sink_ (and stderr when asked)
};

}  // namespace carico::test
