#include "client/top.hpp"

#include <algorithm>
#include <cstdlib>
#include <ostream>
#include <thread>

#include <sys/ioctl.h>
#include <unistd.h>

#include <httplib.h>

#include "client/top_view.hpp"
#include "shared/runtime.hpp"

namespace carico {
namespace {

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double num_of(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

}  // namespace

top::top(client& broker, top_options options, std::ostream& out)
    : broker_(broker), options_(std::move(options)), out_(out) {
  source_ = options_.http.empty() ? std::string("(mmi over ZeroMQ)")
                                  : "http://" + options_.http + "/api/state";
}

std::size_t top::columns() const {
  if (options_.width > 0) return options_.width;
  if (const char* env = std::getenv("COLUMNS")) {
    const long n = std::atol(env);
    if (n >= 40 && n <= 1000) return static_cast<std::size_t>(n);
  }
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 40) {
    return size.ws_col;
  }
  return 100;
}

std::optional<nlohmann::json> top::poll(std::string& error) {
  return options_.http.empty() ? poll_mmi(error) : poll_http(error);
}

std::optional<nlohmann::json> top::poll_mmi(std::string& error) {
  const auto timeout = std::chrono::milliseconds(std::max<long>(500, options_.interval.count()));
  reply stats = broker_.call("mmi.stats", nlohmann::json::object(), "", timeout);
  if (!stats.ok()) {
    error = "mmi.stats: " + std::to_string(stats.code) + " " + stats.error();
    return std::nullopt;
  }
  reply workers = broker_.call("mmi.workers", nlohmann::json::object(), "", timeout);
  if (!workers.ok()) {
    error = "mmi.workers: " + std::to_string(workers.code) + " " + workers.error();
    return std::nullopt;
  }
  nlohmann::json s = stats.head.value("result", nlohmann::json::object());
  nlohmann::json state = state_from_mmi(s, workers.head.value("result", nlohmann::json::object()));
  // req/s from the last polls (up to ten seconds back), history from all of them.
  const point now{now_unix_ms(), num_of(s, "done") + num_of(s, "failed") + num_of(s, "expired"),
                  num_of(s, "queued")};
  if (!polls_.empty() && now.finished < polls_.back().finished) polls_.clear();  // a new broker
  polls_.push_back(now);
  while (polls_.size() > 1 && now.unix_ms - polls_.front().unix_ms > 5 * 60 * 1000) {
    polls_.pop_front();
  }
  const point* base = &polls_.front();
  for (const point& p : polls_) {
    if (now.unix_ms - p.unix_ms <= 10000) {
      base = &p;
      break;
    }
  }
  if (base->unix_ms < now.unix_ms) {
    state["rate_per_s"] =
        (now.finished - base->finished) * 1000.0 / static_cast<double>(now.unix_ms - base->unix_ms);
  }
  nlohmann::json history = nlohmann::json::array();
  for (std::size_t i = 1; i < polls_.size(); ++i) {
    const double seconds = static_cast<double>(polls_[i].unix_ms - polls_[i - 1].unix_ms) / 1000.0;
    history.push_back(
        {{"t", polls_[i].unix_ms},
         {"finished", seconds > 0 ? (polls_[i].finished - polls_[i - 1].finished) / seconds : 0},
         {"queued", polls_[i].queued}});
  }
  state["history"] = std::move(history);
  return state;
}

std::optional<nlohmann::json> top::poll_http(std::string& error) {
  httplib::Client http("http://" + options_.http);
  http.set_connection_timeout(std::chrono::seconds(2));
  http.set_read_timeout(std::chrono::seconds(2));
  httplib::Result r = http.Get("/api/state");
  if (!r) {
    error = "GET http://" + options_.http + "/api/state failed: " + httplib::to_string(r.error());
    return std::nullopt;
  }
  nlohmann::json state = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || state.is_discarded() || !state.is_object()) {
    error = "GET http://" + options_.http + "/api/state answered " + std::to_string(r->status) +
            ": " + r->body.substr(0, 200);
    return std::nullopt;
  }
  return state;
}

int top::run() {
  const bool clear = options_.clear.value_or(isatty(STDOUT_FILENO) != 0);
  bool answered = false;
  std::string last_error;
  for (std::size_t i = 0; options_.iterations == 0 || i < options_.iterations; ++i) {
    if (i > 0) {
      // Slept in short steps so that Ctrl-C ends it at once.
      const auto until = std::chrono::steady_clock::now() + options_.interval;
      while (!stop_signalled() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    if (stop_signalled()) break;
    std::string error;
    std::optional<nlohmann::json> state = poll(error);
    std::string screen;
    if (state) {
      answered = true;
      screen = render_top(*state, source_, columns());
    } else {
      last_error = error;
      screen = "carico top: the broker did not answer: " + error + "\n(retrying every " +
               std::to_string(options_.interval.count()) + " ms; Ctrl-C to leave)\n";
    }
    if (clear) out_ << "\x1b[H\x1b[2J";  // home, clear screen
    out_ << screen << std::flush;
  }
  if (!answered && !last_error.empty()) return 1;
  return 0;
}

}  // namespace carico
