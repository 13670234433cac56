#include "shared/runtime.hpp"

#include <csignal>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <system_error>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shared/version.hpp"

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
  // Rounded up: a wait rounded down to 0 in the last millisecond before t
  // would return at once, and the loop around it would spin until t.
  const auto ms = std::chrono::ceil<milliseconds>(t - clock::now()).count();
  if (ms <= 0) return 0;
  return ms > max_ms ? max_ms : static_cast<long>(ms);
}

void wait_for_input(zmq::pollitem_t* items, std::size_t count, long timeout_ms) {
  constexpr std::size_t most = 8;
  if (count > most) throw std::invalid_argument("wait_for_input: too many items");
  pollfd fds[most];
  for (std::size_t i = 0; i < count; ++i) {
    fds[i] = {items[i].fd, POLLIN, 0};
    if (items[i].socket != nullptr) {
      fds[i].fd = zmq::socket_ref(zmq::from_handle, items[i].socket).get(zmq::sockopt::fd);
    }
  }
  if (::poll(fds, count, static_cast<int>(timeout_ms)) < 0) {
    if (errno == EINTR) throw zmq::error_t();
    throw std::system_error(errno, std::generic_category(), "poll");
  }
  for (std::size_t i = 0; i < count; ++i) {
    items[i].revents = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0 ? ZMQ_POLLIN : 0;
  }
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

loop_waker::loop_waker() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

loop_waker::~loop_waker() { ::close(fd_); }

void loop_waker::wake() {
  const std::uint64_t one = 1;
  // Fails only when the counter is about to overflow: it is readable anyway.
  (void)!::write(fd_, &one, sizeof one);
}

void loop_waker::drain() {
  std::uint64_t count = 0;
  (void)!::read(fd_, &count, sizeof count);  // resets the counter to zero
}

void add_config_option(CLI::App& app) {
  app.set_config("--config", "", "read options from a TOML/INI file (keys: long flag names)");
  app.allow_config_extras(CLI::config_extras_mode::error);
}

void add_version_flag(CLI::App& app, const std::string& program) {
  app.set_version_flag("--version", program + " " + version, "print the version and exit");
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse KEY" for a key no option has.
    static const std::string extra = "INI was not able to parse ";
    const std::string what = e.what();
    if (what.rfind(extra, 0) != 0) return app.exit(e);
    std::string file = "the --config file";
    if (const CLI::Option* config = app.get_config_ptr(); config != nullptr && config->count() > 0) {
      file = config->results().front();
    }
    std::cerr << std::filesystem::path(argc > 0 ? argv[0] : "carico").filename().string() << ": "
              << file << ": unknown key '" << what.substr(extra.size())
              << "' (keys are the long option names without --; see --help)\n";
    return e.get_exit_code();
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
