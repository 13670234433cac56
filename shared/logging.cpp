#include "shared/logging.hpp"

#include "shared/escaping_formatter.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include <spdlog/async.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace carico {

bool parse_level(const std::string& name, spdlog::level::level_enum& out) {
  static const char* names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (int i = 0; i < 7; ++i) {
    if (name == names[i]) {
      out = static_cast<spdlog::level::level_enum>(i);
      return true;
    }
  }
  return false;
}

const char* const log_pattern = "%Y-%m-%d %H:%M:%S.%e %-5l [%n] %v";

std::shared_ptr<spdlog::logger> make_logger(const log_options& options) {
  static std::once_flag pool_once;
  // 8192 lines of slack (~3 MiB, all resident: the queue is built whole) absorb
  // a burst of ~2700 requests' lines at info level; a fuller queue blocks.
  std::call_once(pool_once, [] { spdlog::init_thread_pool(8192, 1); });

  spdlog::level::level_enum file_level = spdlog::level::info;
  spdlog::level::level_enum console_level = spdlog::level::warn;
  if (!parse_level(options.level, file_level)) {
    throw spdlog::spdlog_ex("unknown log level '" + options.level +
                            "' (trace, debug, info, warn, error, critical, off)");
  }
  if (!parse_level(options.console_level, console_level)) {
    throw spdlog::spdlog_ex("unknown console log level '" + options.console_level + "'");
  }

  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(console_level);
  sinks.push_back(console);
  if (!options.file.empty()) {
    spdlog::file_event_handlers handlers;
    if (options.file_buffer_bytes > 0) {
      // Owned by the sink (through its handlers): outlives every stream it opens.
      handlers.after_open = [buffer = std::make_shared<std::vector<char>>(
                                 options.file_buffer_bytes)](const spdlog::filename_t&,
                                                             std::FILE* stream) {
        std::setvbuf(stream, buffer->data(), _IOFBF, buffer->size());
      };
    }
    auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
        options.file, options.max_file_bytes, options.max_files, false, handlers);
    file->set_level(file_level);
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::async_logger>(
      options.name, sinks.begin(), sinks.end(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::block);
  logger->set_level(std::min(file_level, console_level));
  // Text from users (titles, names, services) is escaped in every line.
  logger->set_formatter(std::make_unique<escaping_formatter>(log_pattern));
  logger->flush_on(spdlog::level::warn);
  // The periodic flusher only sees registered loggers; a second logger of the
  // same name (tests) is simply not registered.
  if (!spdlog::get(options.name)) spdlog::register_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  return logger;
}

std::shared_ptr<spdlog::logger> null_logger() {
  static auto logger = std::make_shared<spdlog::logger>(
      "null", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger;
}

std::string sample(const void* data, std::size_t size, std::size_t max) {
  std::string out;
  out.reserve(std::min(size, max));
  append_sample(out, data, size, max);
  return out;
}

void append_sample(std::string& out, const void* data, std::size_t size, std::size_t max) {
  static const char hex[] = "0123456789abcdef";
  const auto* bytes = static_cast<const unsigned char*>(data);
  const std::size_t n = std::min(size, max);
  for (std::size_t i = 0; i < n;) {
    // A run of printable bytes goes in with one append.
    std::size_t end = i;
    while (end < n && bytes[end] >= 0x20 && bytes[end] < 0x7f && bytes[end] != '\\') ++end;
    out.append(reinterpret_cast<const char*>(bytes + i), end - i);
    if (end == n) break;
    const unsigned char c = bytes[end];
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
    i = end + 1;
  }
  if (size > max) {
    out += "...(";
    out += std::to_string(size);
    out += " bytes)";
  }
}

}  // namespace carico
