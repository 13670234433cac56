#include "shared/runtime.hpp"

#include <csignal>
#include <cstring>

#include <unistd.h>

namespace carico {
namespace {

std::atomic<int> signal_number{0};

std::atomic<int> overload_signal{-1};

extern "C" void on_stop_signal(int sig) { signal_number.store(sig); }
extern "C" void on_overload_signal(int sig) { overload_signal.store(sig == SIGUSR1 ? 1 : 0); }

void install(int sig, void (*handler)(int)) {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  sigaction(sig, &action, nullptr);
}

}  // namespace

long poll_timeout(time_point t, long max_ms) {
  auto ms = std::chrono::duration_cast<milliseconds>(t - clock::now()).count();
  if (ms < 0) return 0;
  return ms > max_ms ? max_ms : static_cast<long>(ms);
}

void install_stop_signals() {
  install(SIGINT, on_stop_signal);
  install(SIGTERM, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
}

void install_overload_signals() {
  install(SIGUSR1, on_overload_signal);
  install(SIGUSR2, on_overload_signal);
}

std::optional<bool> take_overload_signal() {
  const int v = overload_signal.exchange(-1);
  if (v < 0) return std::nullopt;
  return v == 1;
}

bool stop_signalled() { return signal_number.load() != 0; }
int last_signal() { return signal_number.load(); }

loop_waker::loop_waker(zmq::context_t& context)
    : context_(context), pull_(context, zmq::socket_type::pull) {
  // A counter, not the address: a socket closed at this address a moment ago
  // may still hold its endpoint (closing is asynchronous), and bind would fail.
  static std::atomic<std::uint64_t> counter{0};
  endpoint_ = "inproc://carico-waker-" + std::to_string(++counter);
  pull_.bind(endpoint_);
}

void loop_waker::wake() {
  zmq::socket_t push(context_, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 1000);
  push.connect(endpoint_);
  push.send(zmq::message_t(), zmq::send_flags::dontwait);
}

void loop_waker::drain() {
  zmq::message_t m;
  while (pull_.recv(m, zmq::recv_flags::dontwait)) {
  }
}

void add_config_option(CLI::App& app) {
  app.set_config("--config", "", "read options from a TOML/INI file (keys: long flag names)");
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace carico
