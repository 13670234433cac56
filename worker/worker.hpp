// A carico worker: joins the broker with READY, heartbeats with a load report,
// runs requests, reconnects when the broker goes away.
//
// `capacity` (advertised in READY) is how many requests the broker may give it at
// once; `threads` is how they run: on a pool of task threads (a slow request never
// delays heartbeats), or with threads = 0 inline on the I/O thread, with no
// hand-off at all (for cheap services such as echo; heartbeats wait for the handler).
//
//   zmq::context_t context;
//   carico::worker w(context, {.connect = "inproc://b", .name = "w1", .capacity = 64, .threads = 0},
//                    carico::echo_handler());
//   std::thread t([&] { w.run(); });
//   ...
//   w.drain();  // finish what it holds, DISCONNECT, run() returns
//   t.join();
//
// run() owns the broker socket; drain(), stop() and set_overloaded() may be
// called from any thread.
//
// Several brokers (active / standby): `connect` may list their backends,
// comma-separated. The worker is registered with one broker at a time: it
// opens one DEALER per endpoint, with ZMQ_IMMEDIATE, and sends READY on the
// first whose connection completes (a standby binds nothing, so that is the
// active broker); the others are closed. From then on READY, heartbeats and
// replies go to that broker only. (One DEALER connected to every endpoint
// would not do: it spreads its sends over whichever connections are up, so a
// heartbeat or a reply could reach a broker the worker never sent READY to,
// which answers DISCONNECT.) When that broker falls silent or disconnects it,
// the worker looks again among all endpoints and sends READY to the one it
// finds. Replies to requests received from a broker it left are dropped, never
// sent to the next one (which would answer DISCONNECT: the worker holds no
// request there); the next broker reloads them from the shared journal and
// gives them out again under the same request numbers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "shared/codec.hpp"
#include "shared/curve.hpp"
#include "shared/limits.hpp"
#include "shared/raw_map.hpp"
#include "shared/runtime.hpp"
#include "worker/load_probe.hpp"

namespace carico {

// One request as a service handler sees it.
struct job {
  std::uint64_t request{0};                   // the broker's request number
  std::uint64_t attempt{0};                   // 1 for the first worker given it
  zmq::message_t payload;                     // the request payload (the first body frame)
  std::vector<zmq::message_t> more;           // body frames after the first (a stock
                                              // client's many-frame body); usually none
  std::string local_key;                      // --protocol mdp: a name of the worker's own for
                                              // the request (a stock broker numbers nothing)
  const std::atomic<bool>* cancel{nullptr};   // set when the worker stops abruptly

  // The request header, decoded the first time it is asked for: most
  // handlers never read it, and a header left encoded costs nothing.
  const header& head();

  // Set by the worker: the header as received, still encoded (a header the
  // codec read in place, and so one that decodes), or already decoded.
  const zmq::message_t* head_frame{nullptr};
  std::optional<header> decoded_head;
};

// What a handler answers; the worker adds `request` and `status`.
struct job_result {
  std::uint64_t code{code::ok};        // reply code (200, 400, 500...)
  std::string error;                   // reason, when code is not 200
  nlohmann::json result;               // the `result` map; null for none
  std::vector<zmq::message_t> body;    // result payload frames, if any
};

// Runs on a task thread (or the I/O thread when inline); may throw (the
// request is then answered 500).
using service_handler = std::function<job_result(job&)>;

// The echo service: answers 200 with the body frames as they came, for benchmarks.
service_handler echo_handler();

struct worker_options {
  std::string connect = "tcp://127.0.0.1:5556";  // the broker's backend; or several, comma-
                                                 // separated: one per broker that may be active
  dialect protocol = dialect::carico;            // carico (MDPWX1), or mdp: a stock MDP/0.1
                                                 // broker (MDPW01, no header, no load report)
  std::string service = "text";                  // service to serve
  std::string name;                              // shown by the broker; default host-pid
  std::uint64_t capacity = 1;                    // requests taken at once (READY capacity)
  std::optional<std::uint64_t> threads{};        // task threads: none = capacity, 0 = inline
  long heartbeat_ms = 500;                       // heartbeat interval
  long liveness = 3;                             // silent intervals before the broker is dead
  double overload_mem_percent = 80;              // RSS share of memory that means overload
  long reconnect_min_ms = 250;                   // first reconnect delay
  long reconnect_max_ms = 8000;                  // reconnect delay cap
  curve_client_keys curve{};                     // CurveZMQ keys; off when empty
  message_limits limits{};                       // ZMQ_MAXMSGSIZE; larger results are answered 500
  // Whether the service can work (the text service: can its store write?):
  // "" when it can, else why not. Runs on the I/O thread at start, when the
  // handler answers 503 ("not executed here"), and every health_check_ms while
  // it fails; meanwhile the worker is `overload` with the reason in its load
  // report, so the broker gives it nothing. None: always healthy.
  std::function<std::string()> health_check{};
  long health_check_ms = 1000;                   // interval of the checks while one fails
};

class worker {
 public:
  // Throws std::invalid_argument for a malformed `connect` list.
  worker(zmq::context_t& context, worker_options options, service_handler handler,
         std::shared_ptr<spdlog::logger> logger = nullptr);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Serves until drained, stopped, or SIGINT/SIGTERM (which drains).
  void run();
  // Leaves cleanly: state drain, finish the requests in hand, DISCONNECT.
  void drain();
  // Leaves at once, like a crash: nothing more is sent, requests in hand are abandoned.
  void stop();
  // Forces state overload (true) or lifts it (false).
  void set_overloaded(bool overloaded);

  const std::string& name() const { return options_.name; }
  // The endpoint of the broker this worker last sent READY to; empty before
  // the first. Any thread.
  std::string broker() const;

 private:
  struct task {
    std::uint64_t generation{0};           // connection the request arrived on
    zmq::message_t address;                // client address frame, echoed in REPLY
    std::optional<std::uint64_t> request;  // the header's `request`
    std::uint64_t attempt{0};              // its `attempt` (0 when absent)
    zmq::message_t head_frame;             // the header still encoded, or empty when
    std::optional<header> head;            // the codec decoded it
    zmq::message_t payload;                // request payload
    std::vector<zmq::message_t> more;      // body frames after the first
  };

  void connect();
  std::unique_ptr<zmq::socket_t> open_socket(const std::string& endpoint, bool immediate);
  void registered(const std::string& endpoint);
  void try_register();
  void wait_for_broker(time_point deadline);
  void schedule_reconnect(std::string_view why);
  void watch_broker();
  void watch_broker_connection();
  void close_broker();
  void wait();
  // What one receive batch did.
  struct batch {
    std::size_t received = 0;  // messages read
    bool emptied = true;       // stopped at a receive that found nothing (not at the cap)
  };
  // Each reads a batch of messages.
  batch handle_broker();
  batch handle_results();
  void on_tick();
  void send_heartbeat();
  void send_to_broker(zmq::multipart_t&& frames);
  worker_state wanted_state();
  void update_state();
  std::string overload_reason() const;
  // Health (worker_options::health_check): what a handler's 503 says, taken
  // by the loop thread; the check itself, at start and while it fails.
  void note_failure(const job_result& result);
  void take_failures();
  void check_health(time_point now);
  void serve_inline(task&& t);
  job make_job(task& t);
  void task_loop();
  job_result run_handler(job& j);
  task take_request(worker_message&& message);
  zmq::message_t reply_head(std::optional<std::uint64_t> request, job_result& result);
  void send_reply(zmq::message_t& address, std::optional<std::uint64_t> request,
                  job_result&& result);
  zmq::multipart_t make_reply(zmq::message_t&& address, std::optional<std::uint64_t> request,
                              job_result&& result);
  static void mdp_body(job_result& result);

  worker_options options_;                  // as configured
  service_handler handler_;                 // runs each request
  std::shared_ptr<spdlog::logger> log_;     // worker log
  zmq::context_t& context_;                 // for sockets made on reconnect
  std::unique_ptr<zmq::socket_t> broker_;   // DEALER to the broker; null while waiting
  zmq::socket_t broker_monitor_;            // several endpoints: PAIR, broker_'s disconnects
  std::uint64_t monitors_{0};               // monitor endpoints made, for unique names
  std::vector<std::string> endpoints_;      // options_.connect as a list
  std::vector<std::unique_ptr<zmq::socket_t>> candidates_;  // several endpoints: one DEALER
                                            // each while looking for the active broker
  time_point looking_since_{};              // when the worker began looking (candidates_)
  bool look_warned_{false};                 // the "no broker yet" warning was logged
  mutable std::mutex broker_mutex_;         // guards broker_endpoint_
  std::string broker_endpoint_;             // see broker()
  zmq::socket_t results_;                   // PULL: finished replies from task threads
  std::string results_endpoint_;            // inproc endpoint of results_
  loop_waker waker_;                        // interrupts poll for drain/stop/overload
  load_probe probe_;                        // memory and CPU figures
  raw_map request_head_;                    // the REQUEST header being read (loop thread)

  std::atomic<bool> draining_{false};       // drain() or a stop signal
  std::atomic<bool> stopping_{false};       // stop(): leave at once
  std::atomic<bool> forced_overload_{false};// set_overloaded()
  std::uint64_t generation_{0};             // bumped on every new broker socket
  std::atomic<std::uint64_t> local_keys_{0};  // --protocol mdp: requests numbered locally
  std::size_t in_flight_{0};                // requests received and not yet answered
  worker_state state_{worker_state::ready}; // last state told to the broker
  bool mem_overloaded_{false};              // memory above the limit (with hysteresis)
  bool saturated_{false};                   // pool: more requests held than capacity (hysteresis)
  std::string unhealthy_;                   // why the service cannot work; empty when it can
  time_point next_health_check_{};          // while unhealthy_: when to run the check again
  std::mutex failure_mutex_;                // guards failure_
  std::string failure_;                     // the last handler 503's reason, for the loop thread
  std::atomic<bool> failure_noted_{false};  // failure_ holds news
  long backoff_ms_;                         // next reconnect delay
  time_point reconnect_at_{};               // when to make a new socket (if broker_ null)
  time_point broker_expires_at_{};          // broker dead when silent past this
  time_point next_heartbeat_{};             // when the next heartbeat is due

  std::mutex tasks_mutex_;                  // guards tasks_ and quit_
  std::condition_variable tasks_ready_;     // signals tasks_ or quit_
  std::deque<task> tasks_;                  // requests waiting for a thread
  bool quit_{false};                        // task threads exit
  std::vector<std::thread> threads_;        // task threads; none when inline
};

}  // namespace carico
