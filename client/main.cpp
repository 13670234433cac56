// carico-client: flags, a client, and one of send / workers / stats.
#include <iostream>
#include <map>
#include <random>

#include "client/batch_sender.hpp"
#include "client/client.hpp"
#include "client/document.hpp"
#include "client/mmi_report.hpp"
#include "shared/logging.hpp"
#include "shared/runtime.hpp"

namespace {

constexpr int exit_failed_replies = 1;  // something was not answered 200
constexpr int exit_bad_input = 2;       // nothing sent: bad files or arguments

// The documents to send: files as named, or count picked at random from dir.
// Each file is read once however often it is picked. Returns false (after
// printing why) when one cannot be read.
bool gather(const std::vector<std::string>& files, long count, const std::string& dir,
            unsigned seed, std::vector<std::shared_ptr<const carico::document>>& out) {
  std::vector<std::string> paths = files;
  if (count > 0) {
    std::string error;
    std::vector<std::string> pool = carico::list_documents(dir, error);
    if (pool.empty()) {
      std::cerr << "carico-client: " << error << "\n";
      return false;
    }
    std::mt19937 random(seed);
    std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
    paths.clear();
    for (long i = 0; i < count; ++i) paths.push_back(pool[pick(random)]);
  }
  std::map<std::string, std::shared_ptr<const carico::document>> loaded;
  for (const std::string& path : paths) {
    auto& doc = loaded[path];
    if (!doc) {
      carico::document_result r = carico::load_document(path);
      if (!r) {
        std::cerr << "carico-client: cannot read " << r.error << "\n";
        return false;
      }
      doc = r.value;
    }
    out.push_back(doc);
  }
  return true;
}

// Asks the broker an mmi question and prints the result as text or JSON.
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
    std::cout << format(result);
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
  app.require_subcommand(1);
  app.add_option("--connect", options.endpoint, "the broker's frontend endpoint")
      ->capture_default_str();
  app.add_option("--timeout-ms", options.timeout_ms, "per-request timeout (ms)")
      ->capture_default_str()
      ->check(CLI::Range(1L, 86400000L));
  app.add_option("--client-name", options.name, "header `client` (default host-pid-random)");
  app.add_flag("--json", json, "print one JSON object per reply");
  app.add_option("--log-level", logging.console_level, "stderr log level")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  std::vector<std::string> files;
  long count = 0;
  std::string dir = "files";
  unsigned seed = std::random_device{}();
  carico::batch_options batch;
  CLI::App* send = app.add_subcommand("send", "send documents: FILE... or --count N [--files DIR]");
  send->add_option("file", files, "JSON documents to send")->check(CLI::ExistingFile);
  CLI::Option* count_option =
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
  send->add_option("--files", dir, "folder of *.json documents for --count")
      ->capture_default_str()
      ->needs(count_option);
  send->add_option("--service", batch.service, "service to send to")->capture_default_str();
  send->add_option("--window", batch.window, "requests outstanding at once (0: all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  send->add_option("--seed", seed, "random seed for --count");
  CLI::App* workers = app.add_subcommand("workers", "list the broker's workers (mmi.workers)");
  CLI::App* stats = app.add_subcommand("stats", "show the broker's counters (mmi.stats)");

  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  if (*send) {
    if (files.empty() == (count == 0)) {
      std::cerr << "carico-client send: give FILE... or --count N (not both)\n";
      return exit_bad_input;
    }
  }

  std::shared_ptr<spdlog::logger> log;
  try {
    log = carico::make_logger(logging);
  } catch (const std::exception& e) {
    std::cerr << "carico-client: " << e.what() << "\n";
    return exit_bad_input;
  }

  int status = 0;
  try {
    zmq::context_t context;
    if (*send) {
      std::vector<std::shared_ptr<const carico::document>> documents;
      if (!gather(files, count, dir, seed, documents)) return exit_bad_input;
      carico::client client(context, options, log);
      batch.json = json;
      carico::batch_sender sender(client, batch, std::cout);
      const carico::batch_result r = sender.send(documents);
      if (!r.all_ok()) {
        std::cerr << "carico-client: " << r.failed << " of " << r.sent
                  << " requests were not answered 200\n";
        status = exit_failed_replies;
      }
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
