#include "client/batch_sender.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
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
  std::snprintf(latency, sizeof latency, " %.1fms",
                static_cast<double>(r.latency.count()) / 1000.0);
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
    : client_(c),
      options_(std::move(options)),
      out_(&out),
      on_reply_([this](const reply& r, const document& doc) { print(r, doc); }) {}

batch_sender::batch_sender(client& c, batch_options options, batch_reply_hook on_reply)
    : client_(c), options_(std::move(options)), on_reply_(std::move(on_reply)) {}

batch_sender::~batch_sender() = default;  // alive_ goes: closures still posted do nothing

void batch_sender::prepare(std::vector<std::shared_ptr<const document>> documents, poster post,
                           finished_hook on_finished) {
  alive_ = std::make_shared<char>();  // a late reply of an earlier batch is not this one's
  documents_ = std::move(documents);
  post_ = std::make_shared<const poster>(std::move(post));
  on_finished_ = std::move(on_finished);
  next_ = 0;
  outstanding_ = 0;
  progress_ = batch_progress(documents_.size());
  result_ = batch_result{};
}

void batch_sender::start(std::vector<std::shared_ptr<const document>> documents, poster post,
                         finished_hook on_finished) {
  prepare(std::move(documents), std::move(post), std::move(on_finished));
  if (documents_.empty()) {
    finish();
  } else {
    top_up();
  }
}

void batch_sender::stop() {
  result_.stopped = true;
  if (on_finished_ && over()) finish();
}

void batch_sender::top_up() {
  const std::size_t window = options_.window == 0 ? documents_.size() : options_.window;
  while (!result_.stopped && next_ < documents_.size() && outstanding_ < window) {
    const std::size_t index = next_++;
    ++outstanding_;
    ++result_.sent;
    progress_.sent();
    const document& doc = *documents_[index];
    // The reply arrives on the I/O thread and is posted to the driving thread;
    // by then the sender may be gone (a blocking send() that gave up).
    client_.submit(
        options_.service, nlohmann::json{{"title", doc.title}}, doc.payload,
        [post = post_, alive = std::weak_ptr<char>(alive_), this, index](reply r) {
          (*post)([alive, this, index, r = std::move(r)]() mutable {
            if (alive.lock()) on_reply(index, std::move(r));
          });
        },
        options_.timeout);
  }
}

void batch_sender::on_reply(std::size_t index, reply r) {
  --outstanding_;
  progress_.completed(r);
  if (r.ok()) {
    ++result_.ok;
  } else {
    ++result_.failed;
  }
  if (on_reply_) on_reply_(r, *documents_[index]);
  if (over()) {
    finish();
    return;
  }
  top_up();
}

bool batch_sender::over() const {
  return outstanding_ == 0 && (result_.stopped || next_ >= documents_.size());
}

batch_result batch_sender::result() const {
  batch_result out = result_;
  out.interrupted = documents_.size() - out.ok - out.failed;
  out.summary = progress_.summary(progress_.elapsed());
  return out;
}

void batch_sender::finish() {
  finished_hook done = std::move(on_finished_);
  on_finished_ = nullptr;
  if (done) done(result());  // last: it may destroy the sender
}

batch_result batch_sender::send(const std::vector<std::shared_ptr<const document>>& documents) {
  // The driving thread is this one: replies are handed over through a queue
  // that outlives send(). After a stop, requests still in flight complete
  // later (at the latest when the client closes) into a queue nobody reads.
  struct hand_over {
    std::mutex mutex;                          // guards posted
    std::condition_variable arrived;           // signalled on each push
    std::deque<std::function<void()>> posted;  // replies not yet taken by send()
  };
  const auto shared = std::make_shared<hand_over>();
  std::optional<batch_result> finished;
  prepare(
      documents,
      [shared](std::function<void()> closure) {
        std::lock_guard lock(shared->mutex);
        shared->posted.push_back(std::move(closure));
        shared->arrived.notify_one();
      },
      [&finished](const batch_result& r) { finished = r; });

  const auto poll_interval = std::chrono::milliseconds(100);
  std::optional<std::chrono::steady_clock::time_point> give_up;  // set once stopped
  auto check_stop = [&] {
    if (give_up || !options_.stop || !options_.stop()) return;
    give_up = std::chrono::steady_clock::now() + options_.stop_grace;
    stop();  // finishes at once when nothing is in flight
  };
  if (documents_.empty()) {
    finish();
  } else {
    check_stop();
    top_up();
  }
  while (!finished) {
    std::deque<std::function<void()>> ready;
    {
      std::unique_lock lock(shared->mutex);
      // Bounded so that a stop is noticed, and a grace period ends, without a reply.
      auto until = std::chrono::steady_clock::now() + poll_interval;
      if (give_up && *give_up < until) until = *give_up;
      shared->arrived.wait_until(lock, until, [&] { return !shared->posted.empty(); });
      ready.swap(shared->posted);
    }
    check_stop();  // before the replies: none of them tops the window up after a stop
    for (auto& closure : ready) closure();
    if (out_) out_->flush();  // replies show up as they arrive, also in a pipe or a file
    if (!finished && give_up && std::chrono::steady_clock::now() >= *give_up) break;
  }
  on_finished_ = nullptr;  // refers to this frame
  return finished ? *finished : result();
}

void batch_sender::print(const reply& r, const document& doc) {
  if (options_.json) {
    *out_ << reply_json(r, doc.path).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << '\n';
  } else {
    *out_ << format_reply_line(r, doc.path) << '\n';
  }
}

}  // namespace carico
