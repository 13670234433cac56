// Sets up one benchmark scenario as child processes on free 127.0.0.1 ports,
// drives it with load_driver, measures the server side from /proc, and tears
// everything down again (children are killed by PID on every exit path).
//
//   carico::bench_runner runner(options);
//   carico::run_result r = runner.run("broker");
//
// Modes: proxy (raw zmq::proxy + echo DEALERs), broker (carico-broker
// --journal none + carico-worker --service echo), journal (same, journal on),
// text (journal on, carico-worker --service text storing files), queue
// (queue_requests with no worker, then workers arrive), failover (a worker is
// killed with SIGKILL halfway through the interval).
//
// The configuration users run, always with keyed requests (`client` + `id`,
// as carico-client sends them), the broker in a fresh directory of its own
// with its stderr in a file: shipped (only --frontend/--backend, so the journal
// file and the routing log at their defaults), nojournal (--journal none),
// quiet (--journal none --log-level warn --console-level warn: no line per
// request).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "client/bench/bench_report.hpp"
#include "client/bench/child_process.hpp"

namespace carico {

struct bench_options {
  std::size_t payload = 100;            // request payload bytes (a JSON document)
  std::size_t clients = 8;              // client sockets
  std::size_t window = 64;              // outstanding requests per client
  bool keyed = false;                   // requests carry `client` and `id` (exactly once)
  std::size_t workers = 4;              // worker processes
  std::size_t worker_capacity = 64;     // requests each worker takes at once (its READY capacity)
  std::string worker_kind = "carico";   // carico: carico-worker; lean: carico-bench mdp-worker
  std::size_t client_threads = 1;       // threads driving the client sockets
  long warmup_ms = 1000;                // not measured
  long duration_ms = 5000;              // measured
  long heartbeat_ms = 500;              // broker and workers
  long liveness = 3;                    // broker and workers
  std::size_t queue_requests = 1000000; // queue mode: requests queued with no worker
  std::string bin_dir;                  // build directory holding broker/, worker/, client/bench/
  std::string work_dir;                 // scratch files; made under /tmp when empty
  bool keep_work_dir = false;           // leave logs and journals behind
  std::string broker_prefix;            // words run before carico-broker, e.g. a profiler
};

class bench_runner {
 public:
  // Makes the scratch directory; throws std::runtime_error when a binary is missing.
  explicit bench_runner(bench_options options);
  ~bench_runner();
  bench_runner(const bench_runner&) = delete;
  bench_runner& operator=(const bench_runner&) = delete;

  run_result run(const std::string& mode);
  // shipped, nojournal, quiet: the broker binary at its defaults but for the mode's flags.
  static bool runs_as_shipped(const std::string& mode);
  static bool known_mode(const std::string& mode);
  static constexpr const char* mode_list =
      "proxy, floor, broker, journal, text, queue, failover, shipped, nojournal, quiet";
  const std::string& work_dir() const { return work_dir_; }

 private:
  struct servers {
    child_process broker;                // broker or raw proxy
    std::vector<child_process> workers;  // echo or text workers
    std::string frontend;                // where clients connect
    std::string dir;                     // the broker's own directory (shipped-style modes)
  };
  void start_servers(const std::string& mode, servers& s, bool with_workers);
  void start_workers(const std::string& mode, const std::string& backend, servers& s);
  run_result run_load(const std::string& mode);
  run_result run_queue();
  void wait_for_workers(const std::string& frontend, std::size_t count);
  void wait_for_proxy(const std::string& frontend);
  static void note_files(const std::string& dir, run_result& out);
  zmq::message_t make_payload() const;
  std::string log_path(const std::string& name) const;

  bench_options options_;               // as given
  std::string work_dir_;                // scratch directory of this run
  bool made_work_dir_ = false;          // remove it at the end
  std::string broker_bin_;              // carico-broker
  std::string worker_bin_;              // carico-worker
  std::string bench_bin_;               // carico-bench itself (proxy, echo-worker)
  std::size_t run_count_ = 0;           // runs so far, to name journals and logs
  std::string backend_;                 // backend endpoint of the current run
  zmq::context_t context_;              // for the clients
};

// A tcp endpoint on 127.0.0.1 with a port that nothing listens on now.
std::string free_tcp_endpoint();

}  // namespace carico
