// Test doubles that speak the wire contract frame by frame, and a broker on a
// thread. Everything runs in one process over inproc://.
//
//   zmq::context_t context;
//   carico::test::running_broker broker(context);          // heartbeat 50 ms, liveness 5
//   carico::test::fake_worker w(context, {.endpoint = broker.backend(), .name = "A"});
//   carico::test::fake_client c(context, broker.frontend());
//   auto reply = c.call("text", {{"id", 1}}, "doc");       // reply->head["worker"] == "A"
//
// A fake_worker runs its own thread (it must heartbeat while the test waits);
// its controls and observations are thread-safe. A fake_client belongs to the
// test thread.
#pragma once

#include <chrono>
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
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/broker.hpp"
#include "shared/codec.hpp"
#include "shared/runtime.hpp"

namespace carico::test {

using namespace std::chrono_literals;

// The protocol's signatures as frames.
inline const std::string sig_c(client_ext_signature);  // a carico client
inline const std::string sig_w(worker_ext_signature);  // a carico worker
inline const std::string sig_sc(client_signature);     // a stock MDP/0.1 client
inline const std::string sig_sw(worker_signature);     // a stock MDP/0.1 worker

// A command as its one-byte frame.
std::string command_frame(command c);

// Frames from strings and back.
zmq::multipart_t frames_of(const std::vector<std::string>& parts);
std::vector<std::string> strings_of(const zmq::multipart_t& frames);

// A JSON object as an encoded header; throws std::invalid_argument for anything else.
std::string encode_json_header(const nlohmann::json& j);

// "inproc://carico-test-<what>-<n>", unique within the process.
std::string unique_endpoint(std::string_view what);

// Two PAIR sockets joined over a fresh inproc endpoint (unique_endpoint):
// what one sends, the other receives.
struct inproc_pair {
  explicit inproc_pair(zmq::context_t& context);
  zmq::socket_t sender;    // connected
  zmq::socket_t receiver;  // bound
};

// Options for a broker under test: fresh inproc endpoints, 50 ms heartbeat,
// liveness 5 (a silent worker is dead after 250 ms; fakes beat every 20 ms).
// CARICO_TEST_LOG=<level> logs the broker to stderr.
broker_options fast_broker_options();

// Polls pred every few milliseconds until it holds or timeout passes.
bool eventually(const std::function<bool()>& pred, milliseconds timeout = 2000ms);

// A tcp endpoint on 127.0.0.1 that nothing listens on now (a socket monitor
// sees tcp connections, not inproc ones; ZMQ_IMMEDIATE too waits for them).
std::string free_tcp_endpoint();

// ------------------------------------------------------------------ broker

// A carico::broker serving on its own thread; stopped and joined on destruction.
class running_broker {
 public:
  // With no logger, the tests' own (CARICO_TEST_LOG; silent by default).
  explicit running_broker(zmq::context_t& context, broker_options options = fast_broker_options(),
                          std::shared_ptr<spdlog::logger> logger = nullptr);
  ~running_broker();
  running_broker(const running_broker&) = delete;
  running_broker& operator=(const running_broker&) = delete;

  const std::string& frontend() const { return options_.frontend; }
  const std::string& backend() const { return options_.backend; }
  const broker_options& options() const { return options_; }
  // What the broker publishes for its HTTP port (options.snapshot_every).
  std::shared_ptr<const snapshot_publisher> snapshots() const { return broker_->snapshots(); }

 private:
  broker_options options_;          // as given to the broker
  std::unique_ptr<broker> broker_;  // the broker under test
  std::thread thread_;              // runs broker_->run()
};

// ------------------------------------------------------------------ worker

struct fake_worker_options {
  std::string endpoint;                 // the broker's backend
  std::string name = "fake";            // READY name and routing id (must be unique)
  std::string service = "text";         // READY service
  std::uint64_t capacity = 1;           // READY capacity
  bool plain_mdp = false;               // stock MDP/0.1: no info, bare heartbeats, plain replies
  bool auto_reply = true;               // answer each request (after reply_delay)
  milliseconds reply_delay{0};          // how long an automatic reply waits
  bool silent_on_request = false;       // fall silent as soon as a request arrives
  milliseconds heartbeat{20};           // interval of its own heartbeats
  std::uint64_t announce_heartbeat_ms = 0;  // READY heartbeat_ms; 0: none (the broker's own)
  bool send_ready = true;               // send READY on start
};

// A REQUEST as the fake worker received it.
struct received_request {
  std::uint64_t number{0};   // header `request`, 0 when missing
  std::uint64_t attempt{0};  // header `attempt`, 0 when missing
  std::string address;       // frame 3: the broker's token for the request
  nlohmann::json head;       // frame 5 as JSON
  std::string payload;       // the first body frame
  std::vector<std::string> body;  // every body frame
};

// A DEALER speaking MDPWX1 (plain_mdp: MDPW01). Automatic replies carry a carico header
// {request, code 200, status ok, result {worker, payload}}; a plain_mdp worker
// replies with the body frames ["plain:" + payload, "second"] instead.
class fake_worker {
 public:
  fake_worker(zmq::context_t& context, fake_worker_options options);
  ~fake_worker();  // stops its thread and closes the socket without a word
  fake_worker(const fake_worker&) = delete;
  fake_worker& operator=(const fake_worker&) = delete;

  const std::string& name() const { return options_.name; }
  // The name the broker gives it: its READY name, or worker-<hex id> without info.
  std::string broker_name() const;

  // Controls; each takes effect on the worker thread before the call returns.
  void set_state(worker_state state);  // a HEARTBEAT with this state, at once
  void set_state(std::string_view name);  // the same, with any state name
  void set_auto_reply(bool on);
  void go_silent();                    // no heartbeats, no automatic replies from now on
  void reply(std::uint64_t number, std::uint64_t code = code::ok);  // even when silent
  void send_disconnect();              // DISCONNECT, then silence
  void send_raw(const std::vector<std::string>& frames);  // exactly these frames

  // Observations.
  std::vector<received_request> requests() const;
  std::size_t disconnects() const;     // DISCONNECTs received from the broker
  std::size_t heartbeats() const;      // HEARTBEATs received from the broker
  std::size_t invalid() const;         // messages from the broker it could not decode
  bool wait_requests(std::size_t n, milliseconds timeout = 2000ms) const;
  bool wait_disconnects(std::size_t n, milliseconds timeout = 2000ms) const;
  bool wait_heartbeats(std::size_t n, milliseconds timeout = 2000ms) const;

 private:
  struct pending_reply {
    time_point due;            // when to send it
    std::uint64_t number;      // request number
  };

  void run();
  void run_on_thread(std::function<void()> job);
  void receive_all();
  void send(zmq::multipart_t&& frames);
  void send_heartbeat();
  void send_reply(const received_request& r, std::uint64_t code);
  bool wait(const std::function<bool()>& pred, milliseconds timeout) const;

  fake_worker_options options_;  // as given
  zmq::socket_t socket_;         // DEALER to the backend; used by the thread only
  loop_waker waker_;             // wakes the thread for a job or stop

  // Thread-only state.
  bool silent_{false};                 // sends nothing on its own
  bool auto_reply_;                    // replies to requests automatically
  std::string state_{"ready"};         // reported in heartbeats
  std::deque<pending_reply> pending_;  // automatic replies not sent yet
  time_point next_heartbeat_{};        // when the next heartbeat is due

  // Shared with the test thread, under mutex_.
  mutable std::mutex mutex_;                      // guards everything below
  mutable std::condition_variable changed_;       // signalled on every change below
  std::vector<received_request> requests_;        // every REQUEST received
  std::size_t disconnects_{0};                    // DISCONNECTs received
  std::size_t heartbeats_{0};                     // HEARTBEATs received
  std::size_t invalid_{0};                        // undecodable messages received
  std::deque<std::function<void()>> jobs_;        // controls to run on the thread
  std::size_t jobs_done_{0};                      // jobs finished so far
  std::size_t jobs_queued_{0};                    // jobs queued so far
  bool stopping_{false};                          // set by the destructor

  std::thread thread_;  // last: started once everything above exists
};

// ------------------------------------------------------------------ client

// A reply as a client saw it.
struct client_view {
  std::string service;             // frame 2
  nlohmann::json head;             // frame 3 as JSON
  std::vector<std::string> body;   // frames 4..
  std::uint64_t code() const { return head.value("code", std::uint64_t{0}); }
};

// A DEALER (or REQ) speaking MDPCX1 (send_plain: MDPC01), used from the test thread only.
class fake_client {
 public:
  fake_client(zmq::context_t& context, const std::string& endpoint,
              zmq::socket_type type = zmq::socket_type::dealer);

  // ["", MDPCX1, service, header, payload] (REQ adds the empty frame itself).
  void send(std::string_view service, const nlohmann::json& head, std::string_view payload);
  // ["", MDPC01, service, payload]: a stock MDP request.
  void send_plain(std::string_view service, std::string_view payload);
  // Exactly these frames (a REQ socket still adds the empty frame 0).
  void send_raw(const std::vector<std::string>& frames);

  // The next message as raw frames, or nothing within timeout.
  std::optional<std::vector<std::string>> recv_raw(milliseconds timeout = 2000ms);
  // The next message decoded as a reply, or nothing within timeout or if malformed.
  std::optional<client_view> recv(milliseconds timeout = 2000ms);
  // send + recv.
  std::optional<client_view> call(std::string_view service, const nlohmann::json& head,
                                  std::string_view payload, milliseconds timeout = 2000ms);

  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_type type_;  // dealer or req
  zmq::socket_t socket_;   // connected to the frontend
};

// Asks mmi.workers until it lists n workers; returns the list (or the last one seen).
nlohmann::json wait_for_workers(fake_client& client, std::size_t n,
                                milliseconds timeout = 2000ms);
// The `result` of mmi.stats.
nlohmann::json mmi_stats(fake_client& client);

// ------------------------------------------------------------------ fixtures

// Starts workers one at a time, each registered before the next connects, so
// that ring order is the order of names.
std::vector<std::unique_ptr<fake_worker>> start_workers(zmq::context_t& context,
                                                        const running_broker& broker,
                                                        fake_client& mmi,
                                                        const std::vector<std::string>& names,
                                                        fake_worker_options options = {});
// Workers that answer only when told (fake_worker::reply), each holding up to
// `capacity` requests; started as start_workers does.
std::vector<std::unique_ptr<fake_worker>> holding_workers(zmq::context_t& context,
                                                          const running_broker& broker,
                                                          fake_client& mmi,
                                                          const std::vector<std::string>& names,
                                                          std::uint64_t capacity = 1);
// The mmi.workers entry of a worker, or null.
nlohmann::json worker_entry(fake_client& mmi, const std::string& name);
// Whether mmi.workers soon shows the worker in `state`.
bool worker_state_is(fake_client& mmi, const std::string& name, const std::string& state);
// The reply's `worker`, or "?".
std::string worker_of(const client_view& r);

}  // namespace carico::test
