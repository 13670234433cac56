// Loggers for carico programs: an async rotating file plus stderr.
//
//   auto log = carico::make_logger({.name = "broker", .file = "loadbalancer.log"});
//   log->info("worker {} joined", name);
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace carico {

struct log_options {
  std::string name = "carico";           // logger name, shown in each line
  std::string file;                      // rotating log file; empty for none
  std::string level = "info";            // level of the file (and of stderr below warn)
  std::string console_level = "warn";    // stderr shows this level and above
  std::size_t max_file_bytes = 64 << 20; // size at which the file rotates
  std::size_t max_files = 5;             // rotated files kept
  // The file's stdio buffer; 0: the C library's own (4 KiB). Lines wait in it
  // until it fills, a warning or worse, a flush() or the flush each second.
  std::size_t file_buffer_bytes = 0;
};

// The layout of every line: "2026-11-27 10:47:03.512 info  [broker] text".
extern const char* const log_pattern;

// Builds a logger that never blocks its caller on disk I/O (spdlog async).
// Control characters in a message are escaped (escaping_formatter): one
// call, one line. Throws spdlog::spdlog_ex with a readable message when the
// file cannot be opened.
std::shared_ptr<spdlog::logger> make_logger(const log_options& options);

// A logger that discards everything, for tests and library defaults.
std::shared_ptr<spdlog::logger> null_logger();

// Parses "trace".."critical"/"off"; returns false for anything else.
bool parse_level(const std::string& name, spdlog::level::level_enum& out);

// A short printable sample of bytes, for log lines about bad input.
std::string sample(const void* data, std::size_t size, std::size_t max = 48);
// The same sample, appended to out (no string of its own).
void append_sample(std::string& out, const void* data, std::size_t size, std::size_t max = 48);

}  // namespace carico
