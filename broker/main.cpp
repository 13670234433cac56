// carico-broker: flags, logger, broker, run.
#include <iostream>

#include "broker/broker.hpp"
#include "shared/logging.hpp"
#include "shared/runtime.hpp"

int main(int argc, char** argv) {
  carico::broker_options options;
  carico::log_options logging;
  logging.name = "broker";
  logging.file = "loadbalancer.log";
  logging.console_level = "info";

  CLI::App app{"carico-broker: load-balancing broker for carico workers and clients"};
  carico::add_config_option(app);
  app.add_option("--frontend", options.frontend, "endpoint clients connect to")
      ->capture_default_str();
  app.add_option("--backend", options.backend, "endpoint workers connect to")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval (ms)")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--liveness", options.liveness, "missed heartbeats before a worker is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--max-queue", options.max_queue, "waiting requests per service (then 503)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--max-attempts", options.max_attempts, "workers a request may be given to")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--log", logging.file, "log file (rotating); empty for none")
      ->capture_default_str();
  app.add_option("--log-level", logging.level, "file log level: trace debug info warn error off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--console-level", logging.console_level, "stderr log level")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;

  std::shared_ptr<spdlog::logger> log;
  try {
    log = carico::make_logger(logging);
  } catch (const std::exception& e) {
    std::cerr << "carico-broker: cannot open log: " << e.what() << "\n";
    return 2;
  }
  carico::install_stop_signals();
  try {
    zmq::context_t context;
    carico::broker broker(context, options, log);
    broker.run();
  } catch (const zmq::error_t& e) {
    log->critical("broker failed: {} (frontend {}, backend {})", e.what(), options.frontend,
                  options.backend);
    spdlog::shutdown();
    return 1;
  }
  log->info("broker stopped");
  spdlog::shutdown();
  return 0;
}
