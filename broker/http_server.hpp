// The broker's HTTP port (--http ADDR:PORT): GET /metrics (Prometheus), GET
// /healthz, GET /api/state (JSON) and GET / (the live dashboard). It serves
// from the snapshots the broker's loop publishes (snapshot_publisher.hpp) on
// its own threads: it never touches the loop's state and never makes it wait.
//
//   carico::http_server http(broker.snapshots(), {.listen = "127.0.0.1:5557"}, log);
//   ... broker.run(); ...            // http stops when destroyed
//
// cpp-httplib (Debian's libcpp-httplib-dev) does the HTTP: a small, well-kept
// library with a blocking accept thread and a fixed pool of handler threads,
// which is all a metrics port needs (docs/metrics.md says why not civetweb).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>

#include "broker/snapshot_publisher.hpp"

namespace httplib {
class Server;
}

namespace carico {

struct http_options {
  std::string listen;                           // ADDR:PORT; port 0 picks a free one
  bool insecure = false;                        // allow a non-loopback address
  std::chrono::milliseconds stale_after{3000};  // /healthz: a snapshot older means a stuck loop
  std::size_t threads = 4;                      // handler threads
};

// ADDR:PORT split; [v6]:PORT keeps the brackets off. Nothing when malformed.
struct listen_address {
  std::string host;  // as given, without brackets
  int port{0};       // 0..65535
};
std::optional<listen_address> parse_listen_address(std::string_view text);

class http_server {
 public:
  // Binds and starts serving. Throws std::invalid_argument for a malformed
  // address or a non-loopback one without insecure, std::runtime_error when
  // the port cannot be bound; each message says what to fix.
  http_server(std::shared_ptr<const snapshot_publisher> snapshots, http_options options,
              std::shared_ptr<spdlog::logger> logger = nullptr);
  // Stops accepting, finishes the requests being served, joins the threads.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // The port bound (the one picked for port 0).
  int port() const { return port_; }
  // http://HOST:PORT/
  std::string url() const;

 private:
  void add_routes();

  std::shared_ptr<const snapshot_publisher> snapshots_;  // what the loop published
  http_options options_;                                 // as configured
  std::shared_ptr<spdlog::logger> log_;                  // never null
  listen_address address_;                               // parsed options_.listen
  int port_{0};                                          // bound
  std::unique_ptr<httplib::Server> server_;              // cpp-httplib
  std::thread thread_;                                   // runs server_->listen_after_bind()
};

}  // namespace carico
