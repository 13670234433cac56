// carico-worker: flags, logger, storage, worker, run.
#include <iostream>

#include <unistd.h>

#include "shared/endpoint_list.hpp"
#include "shared/logging.hpp"
#include "shared/peer_security.hpp"
#include "shared/runtime.hpp"
#include "worker/text_handler.hpp"
#include "worker/worker.hpp"

int main(int argc, char** argv) {
  carico::worker_options options;
  carico::log_options logging;
  logging.name = "worker";
  logging.console_level = "info";
  std::string storage;
  long work_us_per_char = 0;
  bool clean = false;

  CLI::App app{"carico-worker: runs a carico service (text, echo) for a broker"};
  carico::add_config_option(app);
  carico::add_version_flag(app, "carico-worker");
  carico::add_connect_option(app, options.connect,
                            "the broker's backend endpoint; or several, comma-separated, one per broker "
                            "that may be active (READY goes to the one that accepts the connection, and "
                            "again to the next after a failover)");
  app.add_option("--service", options.service, "service to run: text or echo")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "echo"}));
  app.add_option("--name", options.name, "worker name (default host-pid)");
  std::uint64_t threads = 0;
  CLI::Option* capacity_option =
      app.add_option("--capacity", options.capacity,
                     "requests taken at once, advertised to the broker (default: text 1, echo 64)")
          ->check(CLI::Range(1, 1024));
  CLI::Option* threads_option =
      app.add_option("--threads", threads,
                     "task threads running requests, at most --capacity; 0 runs them inline on "
                     "the I/O thread with no hand-off, for cheap services (no heartbeat while "
                     "one runs) (default: text = capacity, echo 0)")
          ->check(CLI::Range(0, 1024));
  app.add_option("--storage", storage, "where documents are stored (default ./storage/NAME)");
  std::string protocol = "carico";
  app.add_option("--protocol", protocol,
                 "carico: a carico broker (MDPWX1); mdp: a stock MDP/0.1 broker (MDPW01: plain "
                 "READY, heartbeats at 2500 ms unless --heartbeat-ms, the body as the document)")
      ->capture_default_str()
      ->check(CLI::IsMember({"carico", "mdp"}));
  CLI::Option* heartbeat_option =
      app.add_option("--heartbeat-ms", options.heartbeat_ms,
                     "heartbeat interval (ms), announced to the broker (default 500; with "
                     "--protocol mdp 2500, the reference implementation's)")
          ->check(CLI::Range(10, 60000));
  app.add_option("--liveness", options.liveness, "silent intervals before the broker is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--overload-mem-percent", options.overload_mem_percent,
                 "RSS as a share of the machine's memory that means overload")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--work-us-per-char", work_us_per_char,
                 "simulated cost per character of content (the original used 500000)")
      ->capture_default_str()
      ->check(CLI::Range(0L, 10000000L));
  app.add_flag("--clean", clean, "empty the storage directory first");
  carico::peer_security_flags security;
  carico::add_peer_security_options(app, security);
  app.add_option("--log", logging.file,
                 "log file (rotating); empty for none. With it, stderr shows warnings only, so "
                 "that no line is written twice");
  app.add_option("--log-level", logging.level, "log level: trace debug info warn error off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  if (const carico::endpoint_list listed = carico::parse_endpoint_list(options.connect); !listed) {
    std::cerr << "carico-worker: --connect: " << listed.error << "\n";
    return 2;
  }
  if (protocol == "mdp") {
    // A stock broker holds its workers to the stock interval and sends no
    // number: the worker names what it stores itself.
    options.protocol = carico::dialect::mdp;
    if (heartbeat_option->count() == 0) options.heartbeat_ms = 2500;
  }
  try {
    options.curve = carico::load_peer_keys(security);
  } catch (const carico::curve_error& e) {
    std::cerr << "carico-worker: " << e.what() << "\n";
    return 2;
  }
  options.limits.max_message_bytes = security.max_message_bytes;
  // echo is a no-op: inline, with room for a client window; text does slow work
  // (counting, fsync) on a pool of threads, one per request held.
  const bool echo = options.service == "echo";
  if (capacity_option->count() == 0) options.capacity = echo ? 64 : 1;
  if (threads_option->count() != 0) {
    options.threads = std::min<std::uint64_t>(threads, options.capacity);
  } else {
    options.threads = echo ? 0 : options.capacity;
  }
  if (options.name.empty()) options.name = carico::host_name() + "-" + std::to_string(::getpid());
  // One sink per destination: with a log file, stderr keeps what needs a look.
  logging.console_level = logging.file.empty() ? logging.level : "warn";

  std::shared_ptr<spdlog::logger> log;
  try {
    log = carico::make_logger(logging);
  } catch (const std::exception& e) {
    std::cerr << "carico-worker: cannot open log: " << e.what() << "\n";
    return 2;
  }

  carico::service_handler handler;
  if (options.service == "text") {
    if (storage.empty()) storage = "storage/" + options.name;
    // A store that cannot write does not stop the worker: it joins as
    // overload with the reason (see `carico-client workers`), serves nothing,
    // and checks again every second (worker_options::health_check).
    auto store = std::make_shared<carico::document_store>(storage, clean);
    handler = carico::text_handler(store, work_us_per_char, log);
    options.health_check = carico::storage_check(store);
  } else {
    handler = carico::echo_handler();
  }

  carico::install_stop_signals();
  carico::install_overload_signals();  // SIGUSR1 forces overload, SIGUSR2 lifts it
  try {
    zmq::context_t context;
    carico::worker worker(context, options, handler, log);
    worker.run();
  } catch (const zmq::error_t& e) {
    log->critical("worker failed: {} (connect {})", e.what(), options.connect);
    spdlog::shutdown();
    return 1;
  }
  log->info("worker {} stopped", options.name);
  spdlog::shutdown();
  return 0;
}
