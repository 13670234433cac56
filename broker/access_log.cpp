#include "broker/access_log.hpp"

#include <cstdio>

#include "broker/broker.hpp"  // hex_id
#include "shared/logging.hpp"
#include "shared/raw_map.hpp"

namespace carico {
namespace {

std::string millis(std::int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(us) / 1000.0);
  return buf;
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
    for (const access_record& r : work) log_->info("{}", format(r));
    work.clear();
  }
}

std::string access_log::format(const access_record& r) {
  std::string line = "request " + std::to_string(r.number) + " " + r.outcome +
                     " code=" + std::to_string(r.code) + " service=" +
                     sample(r.service.data(), r.service.size(), 64) + " worker=" +
                     (r.worker.empty() ? std::string("-") : sample(r.worker.data(), r.worker.size(), 64)) +
                     " attempts=" + std::to_string(r.attempts) + " client=" + hex_id(r.client);
  if (r.stock) {
    line += " dialect=mdp";
  } else {
    // The header's client name, id and title, read where they lie.
    raw_map head;
    if (r.head.size() > 0 && head.parse(r.head.data(), r.head.size())) {
      if (auto name = head.get_string("client")) line += " name=" + sample(name->data(), name->size(), 64);
      if (const raw_map::entry* id = head.find("id")) {
        if (auto n = raw_map::as_uint(id->value)) {
          line += " id=" + std::to_string(*n);
        } else if (auto s = raw_map::as_string(id->value)) {
          line += " id=" + sample(s->data(), s->size(), 64);
        }
      }
      if (auto title = head.get_string("title")) {
        line += " title=\"" + sample(title->data(), title->size(), 80) + "\"";
      }
    }
  }
  line += " bytes=" + std::to_string(r.bytes) + " queued_ms=" + millis(r.queued_us) +
          " worker_ms=" + millis(r.worker_us) + " total_ms=" + millis(r.total_us);
  return line;
}

}  // namespace carico
