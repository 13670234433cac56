#include "broker/http_server.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <sys/socket.h>

#include <httplib.h>

#include "broker/dashboard_html.hpp"  // generated from broker/dashboard.html
#include "broker/journal.hpp"         // unix_ms
#include "broker/snapshot_render.hpp"
#include "shared/curve.hpp"  // is_local_endpoint
#include "shared/logging.hpp"

namespace carico {
namespace {

constexpr const char* no_cache = "no-store";

std::string dump(const nlohmann::json& j) {
  // Names come from peers: bytes that are not UTF-8 are replaced, never thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::optional<listen_address> parse_listen_address(std::string_view text) {
  listen_address out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return std::nullopt;  // v6 needs brackets
    port = text.substr(colon + 1);
  }
  if (out.host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (error != std::errc() || end != port.data() + port.size() || out.port < 0 ||
      out.port > 65535) {
    return std::nullopt;
  }
  return out;
}

http_server::http_server(std::shared_ptr<const snapshot_publisher> snapshots, http_options options,
                         std::shared_ptr<spdlog::logger> logger)
    : snapshots_(std::move(snapshots)),
      options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      server_(std::make_unique<httplib::Server>()) {
  std::optional<listen_address> address = parse_listen_address(options_.listen);
  if (!address) {
    throw std::invalid_argument("--http " + options_.listen +
                                ": expected ADDR:PORT, e.g. 127.0.0.1:5557 or [::1]:5557");
  }
  address_ = std::move(*address);
  const std::string as_endpoint =
      "tcp://" +
      (address_.host.find(':') != std::string::npos ? "[" + address_.host + "]" : address_.host) +
      ":" + std::to_string(address_.port);
  if (!options_.insecure && !is_local_endpoint(as_endpoint)) {
    throw std::invalid_argument(
        "refusing to serve HTTP on " + options_.listen +
        ": the metrics and dashboard have no authentication and show worker hosts and "
        "request counts. Bind 127.0.0.1 (and reach it through an SSH tunnel or a proxy), or "
        "pass --insecure on a network you trust");
  }
  const std::size_t threads = std::max<std::size_t>(1, options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(4096);  // GETs only: no request has a body
  server_->set_read_timeout(std::chrono::seconds(5));
  server_->set_write_timeout(std::chrono::seconds(5));
  // One request per connection: a browser polling every second over keep-alive
  // would otherwise hold a handler thread for good, and a few would starve the
  // rest (a new loopback connection a second costs nothing).
  server_->set_keep_alive_max_count(1);
  // SO_REUSEADDR (a restart is not refused for the old connections' TIME-WAIT),
  // not cpp-httplib's default SO_REUSEPORT, with which a second broker given the
  // same --http would share the port with the first instead of being refused.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  add_routes();
  if (address_.port == 0) {
    port_ = server_->bind_to_any_port(address_.host);
  } else {
    port_ = server_->bind_to_port(address_.host, address_.port) ? address_.port : -1;
  }
  if (port_ <= 0) {
    throw std::runtime_error("--http " + options_.listen +
                             ": cannot listen there (port in use, or no such local address); "
                             "choose another with --http ADDR:PORT");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() does nothing until the server runs: wait for that, so that a server
  // destroyed at once still stops (about a millisecond).
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  log_->info("http: dashboard on {}, metrics on {}metrics", url(), url());
}

http_server::~http_server() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string http_server::url() const {
  const bool v6 = address_.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address_.host + "]" : address_.host) + ":" +
         std::to_string(port_) + "/";
}

void http_server::add_routes() {
  // Every handler copies the snapshot pointer once and renders from it alone.
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const broker_snapshot> s = snapshots_->latest();
    res.set_header("Cache-Control", no_cache);
    if (!s) {
      res.status = 503;
      res.set_content("the broker has not published its state yet\n", "text/plain");
      return;
    }
    res.set_content(metrics_text(*s), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const broker_snapshot> s = snapshots_->latest();
    const std::string problem = health_problem(s.get(), unix_ms(), options_.stale_after.count());
    res.set_header("Cache-Control", no_cache);
    res.status = problem.empty() ? 200 : 503;
    res.set_content(problem.empty() ? std::string("serving\n") : problem + "\n", "text/plain");
  });
  server_->Get("/api/state", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const broker_snapshot> s = snapshots_->latest();
    res.set_header("Cache-Control", no_cache);
    if (!s) {
      res.status = 503;
      res.set_content(R"({"error":"the broker has not published its state yet"})",
                      "application/json");
      return;
    }
    nlohmann::json state = state_json(*s, unix_ms());
    const std::string problem = health_problem(s.get(), unix_ms(), options_.stale_after.count());
    state["health"] = {{"ok", problem.empty()}, {"reason", problem}};
    res.set_content(dump(state), "application/json");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", no_cache);
    res.set_content(dashboard_html, "text/html; charset=utf-8");
  });
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content(
          "no such page: " + req.path.substr(0, 200) + " (try /, /metrics, /healthz, /api/state)\n",
          "text/plain");
    }
  });
}

}  // namespace carico
