// carico-bench: the benchmark of docs/benchmarks.md.
//
//   carico-bench --mode proxy,broker,journal --payload 100 --clients 8 --window 64 --workers 4
//   carico-bench --mode proxy,shipped,nojournal,quiet --rounds 5 --worker-kind lean
//                --worker-capacity 128   (the broker as shipped, keyed requests)
//   carico-bench --mode proxy,broker --rounds 6 --duration 2   (ratios per round, median)
//   carico-bench --mode queue --queue-requests 1000000 --json
//   carico-bench proxy --frontend EP --backend EP      (started by the bench itself)
//   carico-bench mdp-floor --frontend EP --backend EP  (started by the bench itself)
//   carico-bench echo-worker --connect EP              (started by the bench itself)
//   carico-bench mdp-worker --connect EP --capacity N  (started by the bench itself)
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "client/bench/bench_runner.hpp"
#include "client/bench/mdp_floor.hpp"
#include "shared/codec.hpp"
#include "shared/runtime.hpp"

namespace {

// "100", "4KiB", "4k", "256KiB", "4MiB", "4M": bytes; nothing on a typo.
std::optional<std::size_t> parse_size(const std::string& text) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "B") return n;
  if (unit == "k" || unit == "K" || unit == "KiB") return n << 10;
  if (unit == "M" || unit == "MiB") return n << 20;
  return std::nullopt;
}

// The raw limit: a bare zmq::proxy between a ROUTER and a DEALER.
int run_proxy(const std::string& frontend_ep, const std::string& backend_ep) {
  zmq::context_t context;
  zmq::socket_t frontend(context, zmq::socket_type::router);
  zmq::socket_t backend(context, zmq::socket_type::dealer);
  frontend.set(zmq::sockopt::linger, 0);
  backend.set(zmq::sockopt::linger, 0);
  frontend.bind(frontend_ep);
  backend.bind(backend_ep);
  try {
    zmq::proxy(frontend, backend);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR && e.num() != ETERM) throw;
  }
  return 0;
}

// An echo worker for the raw proxy: every message goes back as it came.
int run_echo_worker(const std::string& connect) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(connect);
  try {
    while (!carico::stop_signalled()) {
      zmq::message_t frame;
      if (!socket.recv(frame)) continue;
      const bool more = frame.more();
      socket.send(frame, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR && e.num() != ETERM) throw;
  }
  return 0;
}

// A lean MDPWX1 (carico dialect) worker for carico-broker: READY with a capacity, heartbeats,
// and every REQUEST answered 200 with its payload, on one thread. It isolates
// the broker's cost the way echo-worker does for the raw proxy.
int run_mdp_worker(const std::string& connect, std::uint64_t capacity, long heartbeat_ms) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(connect);
  carico::worker_info info{"lean-" + std::to_string(::getpid()), capacity,
                           static_cast<std::uint64_t>(::getpid()), carico::host_name(),
                           static_cast<std::uint64_t>(heartbeat_ms)};
  carico::encode_ready(carico::dialect::carico, "echo", info).send(socket);
  carico::time_point next_heartbeat = carico::clock::now();
  try {
    while (!carico::stop_signalled()) {
      if (carico::clock::now() >= next_heartbeat) {
        carico::load_report load;
        carico::encode_heartbeat(carico::dialect::carico, &load).send(socket);
        next_heartbeat = carico::clock::now() + carico::milliseconds(heartbeat_ms);
      }
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, carico::milliseconds(carico::poll_timeout(next_heartbeat)));
      for (int i = 0; i < 256 && (item.revents & ZMQ_POLLIN); ++i) {
        zmq::multipart_t frames;
        if (!frames.recv(socket, ZMQ_DONTWAIT)) break;
        auto message = carico::decode_worker_message(std::move(frames));
        if (!message) continue;
        if (message->cmd == carico::command::disconnect) return 0;
        if (message->cmd != carico::command::request || !message->head) continue;
        carico::header head;
        head.set("request", message->head->get_uint("request").value_or(0));
        head.set("code", carico::code::ok);
        head.set("status", "ok");
        carico::encode_reply(carico::dialect::carico, std::move(message->address), head,
                             std::move(message->body))
            .send(socket);
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR && e.num() != ETERM) throw;
  }
  return 0;
}

std::string default_bin_dir() {
  // carico-bench lives in <build>/client/bench/.
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string(".") : self.parent_path().parent_path().parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  carico::bench_options options;
  std::string modes = "broker";
  std::string payload = "100";
  double duration_s = 5, warmup_s = 1;
  bool json = false, cdf = false;
  options.bin_dir = default_bin_dir();

  CLI::App app{"carico-bench: carico-broker against a raw zmq::proxy, same clients, same run"};
  carico::add_version_flag(app, "carico-bench");
  app.add_option("--mode", modes,
                 "comma-separated: proxy floor broker journal text queue failover, and the "
                 "broker as users run it, always keyed: shipped (only its endpoints: journal "
                 "file, routing log at defaults), nojournal (--journal none), quiet "
                 "(--journal none --log-level warn --console-level warn)")
      ->capture_default_str()
      ->check([](const std::string& text) {
        std::stringstream list(text);
        for (std::string mode; std::getline(list, mode, ',');) {
          if (!mode.empty() && !carico::bench_runner::known_mode(mode)) {
            return "unknown mode " + mode + " (" + carico::bench_runner::mode_list + ")";
          }
        }
        return std::string();
      });
  std::size_t rounds = 1;
  app.add_option("--rounds", rounds,
                 "run the modes this many times, the order reversed every other round; "
                 "the summary takes ratios within a round and their median")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--payload", payload, "request size: 100, 4KiB, 256KiB, 4MiB")
      ->capture_default_str()
      ->check([](const std::string& t) { return parse_size(t) ? "" : "expected e.g. 100, 4KiB, 4MiB"; });
  app.add_option("--clients", options.clients, "client sockets")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--window", options.window, "outstanding requests per client")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_flag("--keyed", options.keyed,
               "requests carry `client` (one per client thread) and `id`, so the broker "
               "deduplicates them and, with the journal, commits each before a worker sees it "
               "(shipped, nojournal and quiet always do)");
  app.add_option("--workers", options.workers, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--worker-capacity", options.worker_capacity,
                 "requests each worker takes at once (--capacity; text workers run as many threads)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--worker-kind", options.worker_kind,
                 "echo workers for carico-broker: carico (carico-worker --service echo) or lean "
                 "(carico-bench mdp-worker, one thread)")
      ->capture_default_str()
      ->check(CLI::IsMember({"carico", "lean"}));
  app.add_option("--client-threads", options.client_threads, "threads driving the client sockets")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--duration", duration_s, "measured seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", warmup_s, "warm-up seconds (not measured)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--heartbeat-ms", options.heartbeat_ms, "broker and worker heartbeat interval")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--liveness", options.liveness, "missed heartbeats before a worker is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--queue-requests", options.queue_requests, "queue mode: requests queued")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--bin-dir", options.bin_dir, "build directory with broker/ and worker/")
      ->capture_default_str();
  app.add_option("--work-dir", options.work_dir, "scratch directory (default: a new one in /tmp)");
  app.add_option("--broker-prefix", options.broker_prefix,
                 "command words put before carico-broker (absolute path), e.g. "
                 "\"/usr/bin/valgrind --tool=callgrind\"");
  app.add_flag("--keep", options.keep_work_dir, "keep the scratch directory (logs, journals)");
  app.add_flag("--json", json, "print JSON on stdout (the table goes to stderr)");
  app.add_flag("--cdf", cdf, "include the latency CDF (201 points) in the JSON");

  std::string frontend, backend, connect;
  CLI::App* proxy = app.add_subcommand("proxy", "run a raw zmq::proxy(ROUTER, DEALER)");
  proxy->add_option("--frontend", frontend, "ROUTER endpoint")->required();
  proxy->add_option("--backend", backend, "DEALER endpoint")->required();
  CLI::App* floor = app.add_subcommand("mdp-floor", "the least MDP broker (see mdp_floor.hpp)");
  floor->add_option("--frontend", frontend, "client ROUTER endpoint")->required();
  floor->add_option("--backend", backend, "worker ROUTER endpoint")->required();
  floor->add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval")
      ->capture_default_str();
  CLI::App* echo = app.add_subcommand("echo-worker", "a DEALER that sends every message back");
  echo->add_option("--connect", connect, "the proxy's backend")->required();
  std::uint64_t mdp_capacity = 64;
  CLI::App* mdp = app.add_subcommand("mdp-worker", "a lean one-thread MDPWX1 echo worker");
  mdp->add_option("--connect", connect, "the broker's backend")->required();
  mdp->add_option("--capacity", mdp_capacity, "requests taken at once")->capture_default_str();
  mdp->add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval")->capture_default_str();

  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  carico::install_stop_signals();
  if (*proxy) return run_proxy(frontend, backend);
  if (*floor) return carico::run_mdp_floor(frontend, backend, options.heartbeat_ms);
  if (*echo) return run_echo_worker(connect);
  if (*mdp) return run_mdp_worker(connect, mdp_capacity, options.heartbeat_ms);

  options.payload = *parse_size(payload);
  options.duration_ms = static_cast<long>(duration_s * 1000);
  options.warmup_ms = static_cast<long>(warmup_s * 1000);
  std::vector<carico::run_result> results;
  try {
    carico::bench_runner runner(options);
    std::vector<std::string> order;
    std::stringstream list(modes);
    for (std::string mode; std::getline(list, mode, ',');) {
      if (!mode.empty()) order.push_back(mode);
    }
    // Reversed every other round: a host that slows down (or speeds up) over
    // the invocation then favours no mode.
    for (std::size_t round = 1; round <= rounds && !carico::stop_signalled(); ++round) {
      for (const std::string& mode : order) {
        results.push_back(runner.run(mode));
        results.back().round = round;
        if (carico::stop_signalled()) break;
      }
      std::reverse(order.begin(), order.end());
    }
  } catch (const std::exception& e) {
    std::cerr << "carico-bench: " << e.what() << "\n";
    return 1;
  }

  const std::vector<carico::mode_summary> summary = carico::summarize(results);
  carico::print_table(json ? std::cerr : std::cout, results);
  if (rounds > 1) carico::print_summary(json ? std::cerr : std::cout, summary);
  if (json) {
    nlohmann::json out = {{"machine", carico::machine_json()},
                          {"options",
                           {{"payload_bytes", options.payload},
                            {"clients", options.clients},
                            {"window", options.window},
                            {"keyed", options.keyed},
                            {"workers", options.workers},
                            {"worker_capacity", options.worker_capacity},
                            {"worker_kind", options.worker_kind},
                            {"client_threads", options.client_threads},
                            {"duration_s", duration_s},
                            {"warmup_s", warmup_s},
                            {"rounds", rounds}}},
                          {"results", nlohmann::json::array()},
                          {"summary", nlohmann::json::array()}};
    for (const carico::run_result& r : results) out["results"].push_back(carico::to_json(r, cdf));
    for (const carico::mode_summary& s : summary) out["summary"].push_back(carico::to_json(s));
    std::cout << out.dump() << "\n";
  }
  bool clean = true;
  for (const carico::run_result& r : results) clean = clean && r.load.errors == 0;
  return carico::stop_signalled() ? 130 : (clean ? 0 : 3);
}
