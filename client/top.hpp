// `carico-client top`: the broker's rings, queues, rates and latest events in
// the terminal, redrawn every second, like htop; for a machine with no browser.
//
//   carico::top t(client, {.iterations = 0}, std::cout);   // 0: until Ctrl-C
//   return t.run();
//
// Where it reads: by default mmi.stats and mmi.workers over ZeroMQ, through
// the client's own connection: that works with every broker, its HTTP port on
// or off, and over CURVE from another machine (the HTTP port is loopback-only
// and unauthenticated). req/s is worked out here from successive polls. With
// http set (--http ADDR:PORT), it reads GET /api/state instead, which adds
// what only the broker knows: p50/p99, the latest re-dispatches and refusals,
// replies by code, and the last five minutes of history.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <iosfwd>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "client/client.hpp"

namespace carico {

struct top_options {
  std::chrono::milliseconds interval{1000};  // between redraws
  std::size_t iterations = 0;                // redraws, then exit; 0: until SIGINT/SIGTERM
  std::string http;                          // ADDR:PORT of the broker's HTTP port; empty: mmi
  std::optional<bool> clear;  // clear the screen per redraw; default: stdout is a tty
  std::size_t width = 0;      // columns; 0: $COLUMNS or the terminal's, else 100
};

class top {
 public:
  top(client& broker, top_options options, std::ostream& out);
  // Draws until options.iterations or a stop signal; 0, or 1 when the broker
  // never answered (the last error is on the screen and on stderr).
  int run();

  // One poll: /api/state's shape, or nothing with the reason in error.
  std::optional<nlohmann::json> poll(std::string& error);

 private:
  std::optional<nlohmann::json> poll_mmi(std::string& error);
  std::optional<nlohmann::json> poll_http(std::string& error);
  std::size_t columns() const;

  client& broker_;       // for mmi
  top_options options_;  // as given
  std::ostream& out_;    // the terminal
  std::string source_;   // shown in the header
  // mmi: the rates this side works out.
  struct point {
    std::int64_t unix_ms;  // when polled
    double finished;       // done + failed + expired then
    double queued;         // queued then
  };
  std::deque<point> polls_;  // the last five minutes of polls
};

}  // namespace carico
