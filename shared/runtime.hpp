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

// Milliseconds from now until t, rounded up and clamped to [0, max_ms]; for
// poll timeouts: 0 only once t has come, so a loop waiting for t never spins.
long poll_timeout(time_point t, long max_ms = 1000);

// Blocks until an item may be readable or timeout_ms passes, like zmq::poll
// but without asking each ZeroMQ socket for its events, which costs two system
// calls per socket: it waits on the socket's ZMQ_FD, which becomes readable when
// the socket has news for its owner. That is sound only when each socket's last
// operation was a receive that found nothing (ZMQ_FD is edge-triggered; a send
// since then may have taken the news). Sets revents to ZMQ_POLLIN on each item
// that may have input. Throws zmq::error_t (EINTR) when a signal interrupts.
void wait_for_input(zmq::pollitem_t* items, std::size_t count, long timeout_ms);

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

// Wakes a poll loop from any thread: an eventfd the loop polls as a plain
// file descriptor, so zmq::poll spends no ZeroMQ mailbox check on it (each
// ZeroMQ socket in a poll set costs the loop two system calls per poll).
// wake() may be called from any thread, any number of times.
class loop_waker {
 public:
  loop_waker();
  ~loop_waker();
  loop_waker(const loop_waker&) = delete;
  loop_waker& operator=(const loop_waker&) = delete;
  // The poll item for the loop's zmq::poll (POLLIN when woken).
  zmq::pollitem_t pollitem() const { return {nullptr, fd_, ZMQ_POLLIN, 0}; }
  void wake();
  // Drains pending wake-ups; call when pollitem() is readable.
  void drain();

 private:
  int fd_;  // eventfd: a counter that is readable while non-zero
};

// Adds --config FILE: options can also be read from a TOML/INI file whose
// keys are the long flag names; a key that names no option is an error. Call
// it before adding subcommands (they inherit the rule).
void add_config_option(CLI::App& app);

// Adds --version: prints "PROGRAM X.Y.Z" (carico::version) and exits 0.
void add_version_flag(CLI::App& app, const std::string& program);

// Parses argv; returns an exit code when the program should exit now (help,
// version or a usage error, already printed), or nothing to carry on. An
// unknown key in a --config file is reported by name.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// The machine's host name, "localhost" if unknown.
std::string host_name();

}  // namespace carico
