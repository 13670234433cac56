// carico-client: flags, a client, and one of send / workers / stats / top / service / gen;
// with no subcommand, the REPL (client/repl.hpp).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <random>

#include "client/batch_sender.hpp"
#include "client/client.hpp"
#include "client/corpus.hpp"
#include "client/document.hpp"
#include "client/document_fetch.hpp"
#include "client/mmi_report.hpp"
#include "client/repl.hpp"
#include "client/top.hpp"
#include "shared/endpoint_list.hpp"
#include "shared/logging.hpp"
#include "shared/peer_security.hpp"
#include "shared/runtime.hpp"

namespace {

constexpr int exit_failed_replies = 1;  // something was not answered 200
constexpr int exit_bad_input = 2;       // nothing sent: bad files or arguments

// Asks the broker an mmi question and prints the result as text or JSON; the
// text opens with the broker that answered ("broker tcp://...").
int ask_broker(carico::client& client, const std::string& service, bool json,
               std::string (*format)(const nlohmann::json&)) {
  carico::reply r = client.call(service, nlohmann::json::object(), "");
  if (!r.ok()) {
    std::cerr << "carico-client: " << service << ": " << r.code << " " << r.error() << "\n";
    return exit_failed_replies;
  }
  nlohmann::json result = r.head.value("result", nlohmann::json::object());
  if (json) {
    std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << carico::format_broker_line(client.broker(), client.options().endpoint)
              << format(result);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  carico::client_options options;
  carico::log_options logging;
  logging.name = "client";
  bool json = false;

  CLI::App app{"carico-client: send documents to a carico broker and ask it how it is"};
  carico::add_config_option(app);
  carico::add_version_flag(app, "carico-client");
  app.require_subcommand(0, 1);  // none: the REPL
  app.fallthrough();  // --json and the other global flags also after the subcommand
  carico::add_connect_option(app, options.endpoint,
                            "the broker's frontend endpoint; or several, comma-separated, one per broker "
                            "that may be active (the client uses the one that accepts it, and moves on a "
                            "failover)");
  app.add_option("--timeout-ms", options.timeout_ms, "per-request timeout (ms)")
      ->capture_default_str()
      ->check(CLI::Range(1L, 86400000L));
  app.add_option("--client-name", options.name, "header `client` (default host-pid-random)");
  app.add_option("--retries", options.retries,
                 "resends of an unanswered request: after --timeout-ms with no reply, or at "
                 "once when the connection to a restarted broker comes back (same client and "
                 "id: the broker never runs it twice); 0 for none")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_flag("--json", json, "print one JSON object per reply");
  std::string protocol = "carico";
  app.add_option("--protocol", protocol,
                 "carico: a carico broker (MDPCX1); mdp: a stock MDP/0.1 broker (MDPC01: one "
                 "request in flight per connection, --window connections, no resends)")
      ->capture_default_str()
      ->check(CLI::IsMember({"carico", "mdp"}));
  carico::peer_security_flags security;
  carico::add_peer_security_options(app, security);
  app.add_option("--log-level", logging.console_level, "stderr log level")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  std::vector<std::string> files;
  long count = 0;
  std::string dir = "files";
  unsigned seed = std::random_device{}();
  carico::batch_options batch;
  CLI::App* send = app.add_subcommand("send", "send documents: FILE... or --count N [--files DIR]");
  send->add_option("file", files, "JSON documents to send (a bare name is also looked for in --files)");
  send->add_option("--count,-n", count, "send N documents picked at random from --files")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            try {
              std::size_t used = 0;
              const long n = std::stol(text, &used);
              if (used == text.size() && n > 0) return {};
            } catch (const std::exception&) {
            }
            return "N must be a positive integer, not '" + text + "'";
          },
          "N>0"));
  send->add_option("--files", dir, "folder of *.json documents for --count, and for bare FILE names")
      ->capture_default_str();
  send->add_option("--service", batch.service, "service to send to")->capture_default_str();
  send->add_option("--window", batch.window, "requests outstanding at once (0: all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  send->add_option("--seed", seed, "random seed for --count");
  CLI::App* workers = app.add_subcommand("workers", "list the broker's workers (mmi.workers)");
  CLI::App* stats = app.add_subcommand("stats", "show the broker's counters (mmi.stats)");
  carico::top_options top_options;
  long top_interval_ms = 1000;
  CLI::App* top = app.add_subcommand(
      "top", "the broker's rings, queues and rates, redrawn every second (Ctrl-C leaves)");
  top->add_option("--http", top_options.http,
                  "read the broker's HTTP port (ADDR:PORT, e.g. 127.0.0.1:5557) instead of mmi: "
                  "adds p50/p99, replies by code and the latest re-dispatches and refusals");
  top->add_option("--interval-ms", top_interval_ms, "between redraws")
      ->capture_default_str()
      ->check(CLI::Range(100L, 3600000L));
  top->add_option("--iterations", top_options.iterations, "redraws, then exit (0: until Ctrl-C)")
      ->capture_default_str();
  std::string service_name;
  CLI::App* service = app.add_subcommand("service", "is NAME served by a live worker? (mmi.service; exit 0 if so)");
  service->add_option("name", service_name, "service name, e.g. text")->required();
  std::uint64_t get_number = 0;
  std::string get_out;
  std::string get_service = "text";
  CLI::App* get = app.add_subcommand("get", "fetch back the document that request N stored (to stdout, or --out FILE)");
  get->add_option("request", get_number, "the request number that stored it")->required()->check(CLI::PositiveNumber);
  get->add_option("--out,-o", get_out, "write it to FILE (only when the whole document came)");
  get->add_option("--service", get_service, "the service that stored it")->capture_default_str();
  carico::corpus_options corpus;
  CLI::App* gen = app.add_subcommand("gen", "write N documents of about BYTES each into DIR, for load tests");
  gen->add_option("--count,-n", corpus.count, "documents")->required()->check(CLI::Range(1UL, 100000000UL));
  gen->add_option("--size", corpus.size, "bytes per document, about")
      ->capture_default_str()
      ->check(CLI::Range(40UL, 1UL << 30));
  gen->add_option("--out", corpus.out, "folder (created)")->required();
  gen->add_option("--seed", corpus.seed, "same seed, same documents")->capture_default_str();
  carico::repl_options shell;
  app.add_option("--files", dir, "the REPL's folder of *.json documents (list, send N)")->capture_default_str();
  app.add_option("--history", shell.history_path, "the REPL's history file (default ~/.carico_history; - for none)");
  app.add_option("--window", shell.window, "the REPL's requests outstanding at once")
      ->capture_default_str()
      ->check(CLI::Range(1UL, 1000000UL));

  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  if (const carico::endpoint_list listed = carico::parse_endpoint_list(options.endpoint); !listed) {
    std::cerr << "carico-client: --connect: " << listed.error << "\n";
    return exit_bad_input;
  }
  try {
    options.curve = carico::load_peer_keys(security);
  } catch (const carico::curve_error& e) {
    std::cerr << "carico-client: " << e.what() << "\n";
    return exit_bad_input;
  }
  options.limits.max_message_bytes = security.max_message_bytes;
  if (protocol == "mdp") {
    options.protocol = carico::dialect::mdp;
    if (!*send && !*service) {  // `get` needs the journal's request numbers
      std::cerr << "carico-client: --protocol mdp serves `send` and `service` only: a stock "
                   "broker has no mmi.workers, mmi.stats or request numbers\n";
      return exit_bad_input;
    }
  }
  if (*send) {
    if (files.empty() == (count == 0)) {
      std::cerr << "carico-client send: give FILE... or --count N (not both)\n";
      return exit_bad_input;
    }
  }

  // The REPL prints everything itself; log lines on stderr would break its display.
  if (app.get_subcommands().empty() && app.count("--log-level") == 0) logging.console_level = "off";

  std::shared_ptr<spdlog::logger> log;
  try {
    log = carico::make_logger(logging);
  } catch (const std::exception& e) {
    std::cerr << "carico-client: " << e.what() << "\n";
    return exit_bad_input;
  }

  if (*gen) {
    std::string error;
    if (!carico::generate_corpus(corpus, error)) {
      std::cerr << "carico-client gen: " << error << "\n";
      return exit_bad_input;
    }
    std::cout << "wrote " << corpus.count << " documents of about " << corpus.size << " bytes to " << corpus.out
              << "\n";
    return 0;
  }

  int status = 0;
  try {
    zmq::context_t context;
    if (*send) {
      // Files as named (a bare name also found in --files, as the REPL does), or
      // --count picked at random from --files: the REPL's picker.
      const carico::document_batch picked =
          count > 0 ? carico::pick_documents(dir, static_cast<std::size_t>(count), seed)
                    : carico::load_named_documents(files, dir);
      if (!picked) {
        std::cerr << "carico-client: " << picked.error << "\n";
        return exit_bad_input;
      }
      const std::vector<std::shared_ptr<const carico::document>>& documents = picked.documents;
      if (options.protocol == carico::dialect::mdp) {
        // One request in flight per connection: the window is the connections.
        const std::size_t window = batch.window > 0 ? batch.window : documents.size();
        options.connections = static_cast<int>(std::clamp<std::size_t>(window, 1, 256));
      }
      carico::client client(context, options, log);
      batch.json = json;
      // Ctrl-C / SIGTERM: send nothing more, give replies in flight up to the
      // per-request timeout (2 s at most), then the summary and 128 + signal.
      carico::install_stop_signals();
      batch.stop = [] { return carico::stop_signalled(); };
      batch.stop_grace = std::min(std::chrono::milliseconds(2000),
                                  batch.timeout.value_or(std::chrono::milliseconds(options.timeout_ms)));
      carico::batch_sender sender(client, batch, std::cout);
      const carico::batch_result r = sender.send(documents);
      if (!json) std::cout << "batch: " << r.summary << std::flush;  // as the REPL ends a batch
      if (r.stopped) {
        const int sig = carico::last_signal();
        std::cerr << "carico-client: interrupted by " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": "
                  << r.ok << " of " << documents.size() << " documents answered 200, " << r.failed
                  << " not, " << r.interrupted << " interrupted (" << documents.size() - r.sent
                  << " never sent)\n";
        status = 128 + sig;
      } else if (!r.all_ok()) {
        std::cerr << "carico-client: " << r.failed << " of " << r.sent
                  << " requests were not answered 200\n";
        status = exit_failed_replies;
      }
    } else if (*service) {
      carico::client client(context, options, log);
      carico::reply r = client.call("mmi.service", nlohmann::json::object(), service_name);
      const bool served = r.ok() && !r.body.empty() && r.body.front() == "200";
      if (!r.ok()) {
        std::cerr << "carico-client: mmi.service: " << r.code << " " << r.error() << "\n";
      } else if (json) {
        std::cout << nlohmann::json{{"service", service_name}, {"served", served}}.dump() << "\n";
      } else {
        std::cout << service_name << (served ? " is served" : " is not served") << "\n";
      }
      status = served ? 0 : exit_failed_replies;
    } else if (*top) {
      carico::client client(context, options, log);
      carico::install_stop_signals();
      top_options.interval = std::chrono::milliseconds(top_interval_ms);
      carico::top view(client, top_options, std::cout);
      status = view.run();
    } else if (*get) {
      carico::client client(context, options, log);
      const carico::fetched f = carico::fetch_document(client, get_service, get_number);
      if (!f.ok()) {
        std::cerr << "carico-client: get " << get_number << ": " << f.reason << "\n";
        status = exit_failed_replies;
      } else if (get_out.empty()) {
        std::cout.write(f.bytes.data(), static_cast<std::streamsize>(f.bytes.size()));
        std::cout.flush();
      } else if (auto error = carico::write_whole_file(get_out, f.bytes)) {
        std::cerr << "carico-client: get " << get_number << ": " << *error << "\n";
        status = exit_failed_replies;
      } else if (json) {
        std::cout << nlohmann::json{{"request", get_number}, {"out", get_out}, {"bytes", f.bytes.size()},
                                    {"worker", f.worker}, {"stored_as", f.stored_as}}
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::cerr << "get " << get_number << ": " << f.bytes.size() << " bytes from " << f.worker
                  << " (" << f.stored_as << ") written to " << get_out << "\n";
      }
    } else if (app.get_subcommands().empty()) {
      carico::client client(context, options, log);
      shell.files_dir = dir;
      carico::repl repl(client, shell);
      status = repl.run();
    } else {
      carico::client client(context, options, log);
      status = *workers ? ask_broker(client, "mmi.workers", json, carico::format_workers)
                        : ask_broker(client, "mmi.stats", json, carico::format_stats);
      (void)stats;
    }
  } catch (const zmq::error_t& e) {
    std::cerr << "carico-client: " << e.what() << " (endpoint " << options.endpoint << ")\n";
    status = exit_bad_input;
  }
  spdlog::shutdown();
  return status;
}
