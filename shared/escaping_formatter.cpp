#include "shared/escaping_formatter.hpp"

#include <string_view>

#include "shared/text_table.hpp"

namespace carico {

escaping_formatter::escaping_formatter(std::string pattern)
    : pattern_(std::move(pattern)),
      layout_(std::make_unique<spdlog::pattern_formatter>(pattern_)) {}

void escaping_formatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const std::string_view payload(msg.payload.data(), msg.payload.size());
  const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
  // Almost every line is clean: it is laid out as it is, with no copy.
  if (!has_controls(payload) && !has_controls(name)) {
    layout_->format(msg, dest);
    return;
  }
  const std::string escaped_payload = escape_controls(payload);
  const std::string escaped_name = escape_controls(name);
  spdlog::details::log_msg escaped = msg;
  escaped.payload = spdlog::string_view_t(escaped_payload.data(), escaped_payload.size());
  escaped.logger_name = spdlog::string_view_t(escaped_name.data(), escaped_name.size());
  layout_->format(escaped, dest);
}

std::unique_ptr<spdlog::formatter> escaping_formatter::clone() const {
  return std::make_unique<escaping_formatter>(pattern_);
}

}  // namespace carico
