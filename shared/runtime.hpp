// Process-wide plumbing shared by carico's programs: stop signals, the clock,
// a way to wake a poll loop from another thread, and CLI11 parsing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

namespace carico {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using std::chrono::milliseconds;

// Milliseconds from now until t, clamped to [0, max_ms]; for zmq::poll timeouts.
long poll_timeout(time_point t, long max_ms = 1000);

// Installs SIGINT/SIGTERM handlers that set a flag and interrupt blocking calls
// (no SA_RESTART, so zmq::poll returns EINTR). SIGPIPE is ignored.
void install_stop_signals();
// True once SIGINT or SIGTERM arrived.
bool stop_signalled();
// The last stop signal number, 0 when none.
int last_signal();

// Installs SIGUSR1 (force overload) and SIGUSR2 (lift it) handlers for workers.
void install_overload_signals();
// The last overload signal not yet taken: true for SIGUSR1, false for SIGUSR2.
std::optional<bool> take_overload_signal();

// Wakes a poll loop from any thread. The loop polls socket(); wake() may be
// called from any thread, any number of times.
class loop_waker {
 public:
  explicit loop_waker(zmq::context_t& context);
  zmq::socket_t& socket() { return pull_; }
  void wake();
  // Drains pending wake-ups; call when socket() is readable.
  void drain();

 private:
  zmq::context_t& context_;  // for the short-lived sender sockets
  std::string endpoint_;     // unique inproc endpoint of pull_
  zmq::socket_t pull_;       // polled by the loop
};

// Adds --config FILE: options can also be read from a TOML/INI file whose
// keys are the long flag names.
void add_config_option(CLI::App& app);

// Parses argv; returns an exit code when the program should exit now (help,
// version or a usage error, already printed), or nothing to carry on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// The machine's host name, "localhost" if unknown.
std::string host_name();

}  // namespace carico
