#include "tests/support/log_capture.hpp"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace carico::test {

class log_capture::sink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit sink(std::size_t max_lines) : max_lines_(max_lines) {}

  std::size_t count(std::string_view text) {
    std::lock_guard lock(lines_mutex_);
    std::size_t n = 0;
    for (const std::string& line : lines_) n += line.find(text) != std::string::npos;
    return n;
  }
  bool wait_for(std::string_view text, std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(lines_mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      std::size_t seen = 0;
      for (const std::string& line : lines_) seen += line.find(text) != std::string::npos;
      return seen >= n;
    });
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(lines_mutex_);
    return {lines_.begin(), lines_.end()};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line(msg.payload.data(), msg.payload.size());
    {
      std::lock_guard lock(lines_mutex_);
      lines_.push_back(std::move(line));
      if (lines_.size() > max_lines_) lines_.pop_front();
    }
    changed_.notify_all();
  }
  void flush_() override {}

 private:
  std::size_t max_lines_;            // lines kept
  std::mutex lines_mutex_;           // guards lines_
  std::condition_variable changed_;  // signalled on every new line
  std::deque<std::string> lines_;    // the payloads, oldest first
};

log_capture::log_capture(std::size_t max_lines) : sink_(std::make_shared<sink>(max_lines)) {
  std::vector<spdlog::sink_ptr> sinks{sink_};
  if (const char* level = std::getenv("CARICO_TEST_LOG")) {
    auto err = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    err->set_level(spdlog::level::from_str(level));
    sinks.push_back(err);
  }
  logger_ = std::make_shared<spdlog::logger>("capture", sinks.begin(), sinks.end());
  logger_->set_level(spdlog::level::trace);
}

std::size_t log_capture::count(std::string_view text) const { return sink_->count(text); }

bool log_capture::wait_for(std::string_view text, std::size_t n,
                           std::chrono::milliseconds timeout) const {
  return sink_->wait_for(text, n, timeout);
}

std::vector<std::string> log_capture::lines() const { return sink_->lines(); }

}  // namespace carico::test
