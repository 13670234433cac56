// A spdlog formatter that escapes control characters in the message before the
// pattern lays out the line, so text from users (titles, names, services) can
// never split a log line or forge one: every line of a log starts with its
// timestamp, and no byte below 0x20 is in it but the newline that ends it.
//
//   logger->set_formatter(std::make_unique<carico::escaping_formatter>(
//       "%Y-%m-%d %H:%M:%S.%e %-5l [%n] %v"));
//   logger->info("title {}", "a\nb");  // "... title a\nb" on one line
//
// make_logger() installs it on every carico logger: no call site needs to
// remember to escape.
#pragma once

#include <memory>
#include <string>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>

namespace carico {

class escaping_formatter final : public spdlog::formatter {
 public:
  explicit escaping_formatter(std::string pattern);

  // The pattern's line for msg, with the message part (and the logger name)
  // run through escape_controls when they hold a control character.
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  std::string pattern_;                                // as given, for clone()
  std::unique_ptr<spdlog::pattern_formatter> layout_;  // lays out the escaped message
};

}  // namespace carico
