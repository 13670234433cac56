#include "broker/access_log.hpp"

#include <cstdio>
#include <string_view>

#include <spdlog/sinks/sink.h>

#include "broker/broker.hpp"  // hex_id
#include "shared/logging.hpp"
#include "shared/raw_map.hpp"

namespace carico {
namespace {

// Microseconds as milliseconds with one decimal, rounded ("2.4"), appended
// with integer arithmetic: no printf float formatting per line.
void append_millis(std::string& out, std::int64_t us) {
  const std::int64_t tenths = (us < 0 ? 0 : us + 50) / 100;
  out += std::to_string(tenths / 10);
  out += '.';
  out += static_cast<char>('0' + tenths % 10);
}

// " key=" and a printable sample of value.
void append_field(std::string& out, std::string_view key, std::string_view value,
                  std::size_t max) {
  out += key;
  carico::append_sample(out, value.data(), value.size(), max);
}

}  // namespace

access_log::access_log(std::shared_ptr<spdlog::logger> log)
    : log_(std::move(log)), enabled_(log_ && log_->should_log(spdlog::level::info)) {
  if (enabled_) thread_ = std::thread([this] { run(); });
}

access_log::~access_log() {
  if (!thread_.joinable()) return;
  flush();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  thread_.join();
}

void access_log::add(access_record&& record) {
  if (enabled_) batch_.push_back(std::move(record));
}

void access_log::flush() {
  if (batch_.empty()) return;
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = handed_.empty();
    if (was_empty) {
      handed_.swap(batch_);
    } else {
      for (access_record& r : batch_) handed_.push_back(std::move(r));
      batch_.clear();
    }
  }
  if (was_empty) ready_.notify_one();
}

void access_log::run() {
  std::vector<access_record> work;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !handed_.empty(); });
      if (handed_.empty() && stopping_) return;
      work.swap(handed_);
    }
    bool written = true;
    for (const access_record& r : work) written = write(format(r)) && written;
    work.clear();
    written = flush_sinks() && written;
    if (written) failing_ = false;  // a streak of failures ends with a batch in the file
  }
}

// Straight to the logger's sinks, as a synchronous logger would write: the
// line is already off the loop's thread, so going through the async
// logger's queue would only add a copy and a second thread's wake-up. Sinks
// lock themselves. A sink that cannot write (a full disk) loses the line, as
// under spdlog's own error handler, and says so on stderr once per streak of
// failures.
bool access_log::write(const std::string& line) {
  const spdlog::details::log_msg msg(log_->name(), spdlog::level::info,
                                     spdlog::string_view_t(line.data(), line.size()));
  bool written = true;
  for (const spdlog::sink_ptr& sink : log_->sinks()) {
    if (!sink->should_log(msg.level)) continue;
    try {
      sink->log(msg);
    } catch (const std::exception& e) {
      note_failure(e);
      written = false;
    }
  }
  return written;
}

void access_log::note_failure(const std::exception& e) {
  if (!failing_) {
    std::fprintf(stderr,
                 "carico: the routing log cannot be written (%s); its lines are lost until it can\n",
                 e.what());
  }
  failing_ = true;
}

// After each batch: a line is in the file as soon as its batch is written,
// whatever the file's buffer holds, and a batch costs one write call.
bool access_log::flush_sinks() {
  bool flushed = true;
  for (const spdlog::sink_ptr& sink : log_->sinks()) {
    if (!sink->should_log(spdlog::level::info)) continue;
    try {
      sink->flush();
    } catch (const std::exception& e) {
      note_failure(e);
      flushed = false;
    }
  }
  return flushed;
}

std::string access_log::format(const access_record& r) {
  std::string line;
  line.reserve(256);
  line += "request ";
  line += std::to_string(r.number);
  line += ' ';
  line += r.outcome;
  line += " code=";
  line += std::to_string(r.code);
  append_field(line, " service=", r.service, 64);
  if (r.worker.empty()) {
    line += " worker=-";
  } else {
    append_field(line, " worker=", r.worker, 64);
  }
  line += " attempts=";
  line += std::to_string(r.attempts);
  line += " client=";
  line += hex_id(r.client);
  if (r.stock) {
    line += " dialect=mdp";
  } else {
    // The header's client name, id and title, read where they lie.
    raw_map head;
    if (r.head.size() > 0 && head.parse(r.head.data(), r.head.size())) {
      const raw_view fields = head.over(r.head.data());
      if (auto name = fields.get_string("client")) append_field(line, " name=", *name, 64);
      if (const std::optional<raw_view::entry> id = fields.find("id")) {
        if (auto n = raw_map::as_uint(id->value)) {
          line += " id=";
          line += std::to_string(*n);
        } else if (auto s = raw_map::as_string(id->value)) {
          append_field(line, " id=", *s, 64);
        }
      }
      if (auto title = fields.get_string("title")) {
        append_field(line, " title=\"", *title, 80);
        line += '"';
      }
    }
  }
  line += " bytes=";
  line += std::to_string(r.bytes);
  line += " queued_ms=";
  append_millis(line, r.queued_us);
  line += " worker_ms=";
  append_millis(line, r.worker_us);
  line += " total_ms=";
  append_millis(line, r.total_us);
  return line;
}

}  // namespace carico
