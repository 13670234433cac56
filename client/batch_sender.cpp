#include "client/batch_sender.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <utility>

namespace carico {
namespace {

// A scalar JSON value as printed after `key=`: strings bare when they hold no
// blank or quote, quoted JSON otherwise.
std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const bool plain = !s.empty() && s.find_first_of(" \t\n\r\"=") == std::string::npos;
    return plain ? s : v.dump();
  }
  return v.dump();
}

void append_field(std::string& line, const nlohmann::json& head, const char* key) {
  auto it = head.find(key);
  if (it == head.end() || it->is_structured() || it->is_null()) return;
  line += ' ';
  line += key;
  line += '=';
  line += scalar_text(*it);
}

}  // namespace

std::string format_reply_line(const reply& r, const std::string& file) {
  std::string line = std::to_string(r.code);
  append_field(line, r.head, "request");
  append_field(line, r.head, "worker");
  append_field(line, r.head, "attempts");
  if (auto result = r.head.find("result"); result != r.head.end() && result->is_object()) {
    // Service-specific scalars; the title is already known to the reader.
    for (const auto& [key, value] : result->items()) {
      if (key == "title" || key == "bytes" || value.is_structured() || value.is_null()) continue;
      line += ' ' + key + '=' + scalar_text(value);
    }
  }
  if (!r.ok()) {
    const std::string reason = r.error();
    if (!reason.empty()) line += " error=" + nlohmann::json(reason).dump();
  }
  char latency[32];
  std::snprintf(latency, sizeof latency, " %.1fms", static_cast<double>(r.latency.count()) / 1000.0);
  line += latency;
  line += "  ";
  line += file;
  return line;
}

nlohmann::json reply_json(const reply& r, const std::string& file) {
  nlohmann::json out = r.head.is_object() ? r.head : nlohmann::json::object();
  out["file"] = file;
  return out;
}

batch_sender::batch_sender(client& c, batch_options options, std::ostream& out)
    : client_(c), options_(std::move(options)), out_(out) {}

batch_result batch_sender::send(const std::vector<std::shared_ptr<const document>>& documents) {
  // Replies arrive on the client's I/O thread; they are handed to this thread,
  // which prints them and tops the window up. The hand-over outlives send():
  // after a stop, requests still in flight complete later (at the latest when
  // the client closes) into a queue nobody reads.
  struct completion {
    reply r;            // the reply
    std::size_t index;  // which document
  };
  struct hand_over {
    std::mutex mutex;              // guards done
    std::condition_variable arrived;  // signalled on each push
    std::deque<completion> done;   // replies not yet taken by send()
  };
  const auto shared = std::make_shared<hand_over>();

  const std::size_t window = options_.window == 0 ? documents.size() : options_.window;
  const auto poll_interval = std::chrono::milliseconds(100);
  batch_result result;
  batch_progress progress(documents.size());
  std::size_t next = 0;
  std::size_t outstanding = 0;
  std::optional<std::chrono::steady_clock::time_point> give_up;  // set once stopped
  while (next < documents.size() || outstanding > 0) {
    if (!give_up && options_.stop && options_.stop()) {
      result.stopped = true;
      give_up = std::chrono::steady_clock::now() + options_.stop_grace;
    }
    if (give_up && (outstanding == 0 || std::chrono::steady_clock::now() >= *give_up)) break;
    while (!give_up && next < documents.size() && outstanding < window) {
      const document& doc = *documents[next];
      const std::size_t index = next++;
      ++outstanding;
      ++result.sent;
      progress.sent();
      client_.submit(
          options_.service, nlohmann::json{{"title", doc.title}}, doc.payload,
          [shared, index](reply r) {
            std::lock_guard lock(shared->mutex);
            shared->done.push_back({std::move(r), index});
            shared->arrived.notify_one();
          },
          options_.timeout);
    }
    std::deque<completion> batch;
    {
      std::unique_lock lock(shared->mutex);
      // Bounded so that a stop is noticed, and a grace period ends, without a reply.
      auto until = std::chrono::steady_clock::now() + poll_interval;
      if (give_up && *give_up < until) until = *give_up;
      shared->arrived.wait_until(lock, until, [&] { return !shared->done.empty(); });
      batch.swap(shared->done);
    }
    for (completion& c : batch) {
      --outstanding;
      progress.completed(c.r);
      if (c.r.ok()) {
        ++result.ok;
      } else {
        ++result.failed;
      }
      print(c.r, *documents[c.index]);
    }
    out_.flush();  // replies show up as they arrive, also in a pipe or a file
  }
  result.interrupted = documents.size() - result.ok - result.failed;
  result.summary = progress.summary(progress.elapsed());
  return result;
}

void batch_sender::print(const reply& r, const document& doc) {
  if (options_.json) {
    out_ << reply_json(r, doc.path).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
         << '\n';
  } else {
    out_ << format_reply_line(r, doc.path) << '\n';
  }
}

}  // namespace carico
