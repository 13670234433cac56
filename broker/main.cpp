// carico-broker: flags, logger, broker, run.
#include <iostream>

#include "broker/broker.hpp"
#include "broker/http_server.hpp"
#include "broker/journal_report.hpp"
#include "broker/leadership.hpp"
#include "broker/security_flags.hpp"
#include "shared/logging.hpp"
#include "shared/runtime.hpp"

int main(int argc, char** argv) {
  carico::broker_options options;
  carico::log_options logging;
  logging.name = "broker";
  logging.file = "loadbalancer.log";
  // One sink per destination: with a log file, stderr gets warnings and errors
  // only (not a second copy of every line); without one, it gets the log.
  logging.console_level = "";

  CLI::App app{"carico-broker: load-balancing broker for carico workers and clients"};
  carico::add_config_option(app);
  carico::add_version_flag(app, "carico-broker");
  app.add_option("--frontend", options.frontend, "endpoint clients connect to")
      ->capture_default_str();
  app.add_option("--backend", options.backend, "endpoint workers connect to")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval (ms)")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--stock-heartbeat-ms", options.stock_heartbeat_ms,
                 "heartbeat interval stock MDP/0.1 (MDPW01) workers are held to (ms)")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--queue-timeout-ms", options.queue_timeout_ms,
                 "a request not given to a worker by then is answered 504 (ms; a carico "
                 "request's own timeout_ms wins)")
      ->capture_default_str()
      ->check(CLI::Range(1L, 30L * 24 * 3600 * 1000));
  app.add_option("--shutdown-grace-ms", options.shutdown_grace_ms,
                 "on SIGTERM/SIGINT: how long workers may finish what they hold (ms)")
      ->capture_default_str()
      ->check(CLI::Range(0L, 600000L));
  app.add_option("--liveness", options.liveness, "missed heartbeats before a worker is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--max-queue", options.max_queue, "waiting requests per service (then 503)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--client-hwm", options.client_hwm,
                 "requests ZeroMQ buffers per client connection before it stops reading it")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--client-send-hwm", options.client_send_hwm,
                 "replies a client may leave unread before more are dropped (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000000));
  app.add_option("--max-attempts", options.max_attempts, "workers a request may be given to")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  std::string journal_path = "carico-journal.db";
  std::string journal_keep = "7d";
  app.add_option("--journal", journal_path,
                 "request journal: a SQLite file, or a PostgreSQL URI (postgresql://…) shared by "
                 "active and standby brokers (docs/ha.md); `none` to disable")
      ->capture_default_str();
  app.add_option("--journal-keep", journal_keep,
                 "how long finished requests stay in the journal: 7d, 12h, 30m, 45s or seconds")
      ->capture_default_str()
      ->check([](const std::string& text) {
        return carico::parse_duration(text) ? std::string() : "expected e.g. 7d, 12h, 30m, 45s";
      });

  std::string journal_max_bytes = "1GiB";
  app.add_option("--journal-max-bytes", journal_max_bytes,
                 "disk the journal may use (file, WAL and index): the oldest finished requests "
                 "are pruned to stay under it; e.g. 1GiB, 256MiB, 8MiB (at least 1MiB)")
      ->capture_default_str()
      ->check([](const std::string& text) {
        auto bytes = carico::parse_byte_size(text);
        if (!bytes) return std::string("expected a size such as 1GiB, 256MiB or 8MiB");
        return *bytes >= (std::uint64_t{1} << 20) ? std::string() : std::string("at least 1MiB");
      });

  std::string report_path;
  std::size_t report_last = 20;
  std::string report_state;
  bool report_json = false;
  CLI::App* report = app.add_subcommand("journal", "print a journal's requests (works offline)");
  report->add_option("--path", report_path, "the journal file")->required();
  report->add_option("--last", report_last, "newest N requests")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
  report->add_option("--state", report_state,
                     "only this state: queued dispatched done failed expired refused");
  report->add_flag("--json", report_json, "one JSON object per request");

  carico::broker_security_flags security;
  carico::add_broker_security_options(app, security);
  std::string http_listen;
  app.add_option("--http", http_listen,
                 "serve the dashboard (/), /metrics, /healthz and /api/state on ADDR:PORT, e.g. "
                 "127.0.0.1:5557 (off unless given; another address needs --insecure)")
      ->check([](const std::string& text) {
        return carico::parse_listen_address(text) ? std::string()
                                                  : "expected ADDR:PORT, e.g. 127.0.0.1:5557";
      });
  app.add_option("--log", logging.file, "log file (rotating); empty for none")
      ->capture_default_str();
  app.add_option("--log-level", logging.level, "file log level: trace debug info warn error off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--console-level", logging.console_level,
                 "stderr log level (default: warn with a log file, info without)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  if (logging.console_level.empty()) logging.console_level = logging.file.empty() ? "info" : "warn";
  if (*report) {
    return carico::print_journal(report_path, report_last, report_state, report_json, std::cout,
                                 std::cerr);
  }
  if (journal_path != "none") options.journal_path = journal_path;
  options.journal_keep = *carico::parse_duration(journal_keep);
  options.journal_max_bytes = *carico::parse_byte_size(journal_max_bytes);
  if (!http_listen.empty()) options.snapshot_every = std::chrono::milliseconds(250);
  try {
    carico::apply_broker_security(security, options);
  } catch (const carico::curve_error& e) {
    std::cerr << "carico-broker: " << e.what() << "\n";
    return 2;
  }

  // The routing log's lines come in batches (access_log writes each batch,
  // then flushes): a 64 KiB buffer makes that one write call, not one per 4 KiB.
  logging.file_buffer_bytes = 64 << 10;
  std::shared_ptr<spdlog::logger> log;
  try {
    log = carico::make_logger(logging);
  } catch (const std::exception& e) {
    std::cerr << "carico-broker: cannot open log: " << e.what() << "\n";
    return 2;
  }
  carico::install_stop_signals();
  if (carico::is_postgresql_uri(options.journal_path)) {
    // A standby binds nothing: it waits here until it holds leadership.
    try {
      options.opened_journal = carico::wait_for_leadership(options, log);
    } catch (const carico::journal_error& e) {
      log->critical("cannot start: {}", e.what());
      spdlog::shutdown();
      return 1;
    }
    if (!options.opened_journal) {
      log->info("broker stopped while standby");
      spdlog::shutdown();
      return 0;
    }
  }
  try {
    zmq::context_t context;
    carico::broker broker(context, options, log);
    options.opened_journal.reset();  // the broker's alone: it goes with the broker
    std::unique_ptr<carico::http_server> http;  // stops before the broker goes
    if (!http_listen.empty()) {
      http = std::make_unique<carico::http_server>(
          broker.snapshots(), carico::http_options{.listen = http_listen, .insecure = options.insecure},
          log);
    }
    broker.run();
  } catch (const zmq::error_t& e) {
    log->critical("broker failed: {} (frontend {}, backend {})", e.what(), options.frontend,
                  options.backend);
    spdlog::shutdown();
    return 1;
  } catch (const carico::journal_fenced& e) {
    // Another broker is active: stop at once, nothing flushed (every write
    // would fail); the service manager starts this one again as a standby.
    log->critical("stopped serving: {}", e.what());
    spdlog::shutdown();
    return 1;
  } catch (const carico::journal_error& e) {
    log->critical("cannot start: {}", e.what());
    spdlog::shutdown();
    return 1;
  } catch (const std::invalid_argument& e) {
    log->critical("cannot start: {}", e.what());
    spdlog::shutdown();
    return 2;
  } catch (const std::runtime_error& e) {  // the HTTP port cannot be bound
    log->critical("cannot start: {}", e.what());
    spdlog::shutdown();
    return 1;
  }
  log->info("broker stopped");
  spdlog::shutdown();
  return 0;
}
