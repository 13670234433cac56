// carico-test-stock-broker: the minimal MDP/0.1 broker of tests/support as a
// process, for system tests that run carico's worker and client through a
// broker nobody in carico wrote the wire code of.
//
//   carico-test-stock-broker --bind tcp://127.0.0.1:5555 [--heartbeat-ms 2500]
//
// Logs to stderr; a protocol violation is logged as "stock-broker: violation: ...".
// SIGINT/SIGTERM stop it with exit 0.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/support/stock_broker.hpp"

namespace {

carico::test::stock_broker* running = nullptr;  // the broker a signal stops

extern "C" void on_stop_signal(int) {
  if (running != nullptr) running->request_stop();
}

int usage(const std::string& why) {
  std::cerr << "carico-test-stock-broker: " << why << "\n"
            << "usage: carico-test-stock-broker --bind ENDPOINT [--heartbeat-ms N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  carico::test::stock_broker_options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--bind") {
      options.endpoint = value;
    } else if (flag == "--heartbeat-ms") {
      char* end = nullptr;
      const long ms = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || ms < 10 || ms > 60000) {
        return usage("--heartbeat-ms takes a number from 10 to 60000, not " + value);
      }
      options.heartbeat = std::chrono::milliseconds(ms);
    } else {
      return usage("unknown flag " + flag);
    }
  }
  if (options.endpoint.empty()) return usage("--bind is required");
  options.log = &std::cerr;

  try {
    zmq::context_t context;
    carico::test::stock_broker broker(context, options);
    running = &broker;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;  // no SA_RESTART: the signal interrupts the poll
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    broker.run();
    running = nullptr;
  } catch (const zmq::error_t& e) {
    std::cerr << "carico-test-stock-broker: " << e.what() << " (bind " << options.endpoint << ")\n";
    return 1;
  }
  return 0;
}
