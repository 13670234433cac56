// A minimal MDP/0.1 broker (ZeroMQ RFC 7), in the shape of the zguide's
// mdbroker: one ROUTER for clients and workers alike, one queue and one list of
// idle workers per service (round robin), heartbeats both ways. No extensions,
// no MMI: it is the stock broker that carico's own worker and client must
// interoperate with. It is strict: every message that breaks RFC 7 is dropped,
// logged and kept in violations() for a test to assert on; a worker that sends
// one is sent DISCONNECT and forgotten.
//
//   zmq::context_t context;
//   carico::test::stock_broker b(context, {.endpoint = "inproc://stock"});
//   b.start();            // run() on its own thread; the destructor stops it
//   ...
//   REQUIRE(b.violations().empty());
//
// tests/support/stock_broker_main.cpp makes it the carico-test-stock-broker
// executable for system tests.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "tests/support/stock_mdp.hpp"

namespace carico::test {

struct stock_broker_options {
  std::string endpoint;                       // the one ROUTER, bound (tcp://127.0.0.1:* works)
  std::chrono::milliseconds heartbeat{2500};  // HEARTBEAT interval (the RFC 7 reference's)
  int liveness = 3;                           // silent intervals before a worker is dead
  std::ostream* log = nullptr;                // one line per event worth seeing; null: silent
};

class stock_broker {
 public:
  // Binds the ROUTER; throws zmq::error_t when it cannot.
  stock_broker(zmq::context_t& context, stock_broker_options options);
  ~stock_broker();  // stop(), and joins the thread start() made
  stock_broker(const stock_broker&) = delete;
  stock_broker& operator=(const stock_broker&) = delete;

  // run() on a thread of its own.
  void start();
  // Serves until stop() (or request_stop() and a signal that interrupts the poll).
  void run();
  // Ends run() soon; from any thread.
  void stop();
  // Only sets a flag: safe in a signal handler, whose signal interrupts the poll.
  void request_stop() noexcept { stopping_ = true; }

  // The endpoint actually bound (the port of a tcp://...:* bind filled in).
  const std::string& endpoint() const { return endpoint_; }
  // Every message that broke RFC 7, with a sample; from any thread.
  std::vector<std::string> violations() const;
  // Workers registered now; from any thread.
  std::size_t workers() const { return worker_count_; }

 private:
  using clock = std::chrono::steady_clock;

  // A client request waiting for, or held by, a worker.
  struct request {
    std::string client;  // the client's routing id
    frames body;         // its body frames, untouched
  };
  // A registered worker.
  struct worker {
    std::string service;             // from its READY
    clock::time_point expires;       // dead when silent past this
    std::optional<request> holding;  // the request it is working on (capacity 1)
  };
  // A service: requests in arrival order, idle workers in round-robin order.
  struct service {
    std::deque<request> requests;  // waiting for a worker
    std::deque<std::string> idle;  // routing ids of workers holding nothing
  };

  // Broker functions.
  void handle_message(frames&& message);
  void on_tick(clock::time_point now);
  clock::time_point next_deadline() const;
  void log(const std::string& line);
  void violation(const std::string& what, const frames& message);
  // Client functions.
  void handle_client(frames&& message);
  // Worker functions.
  void handle_worker(frames&& message);
  void require_ready(const std::string& identity, const frames& message);
  void handle_reply(const std::string& identity, frames&& message);
  void delete_worker(const std::string& identity, bool disconnect);
  void send_to_worker(const std::string& identity, mdp::command command, frames extra = {});
  // Service functions.
  void dispatch(const std::string& name);

  stock_broker_options options_;             // as given
  zmq::socket_t router_;                     // clients and workers; used by run() only
  zmq::socket_t control_;                    // PAIR: stop() wakes run()
  zmq::socket_t control_sender_;             // PAIR: stop()'s side, under mutex_
  std::string endpoint_;                     // the endpoint bound
  std::map<std::string, worker> workers_;    // by routing id
  std::map<std::string, service> services_;  // by name
  clock::time_point next_heartbeat_{};       // when to heartbeat every worker

  mutable std::mutex mutex_;                  // guards control_sender_ and violations_
  std::vector<std::string> violations_;       // see violations()
  std::atomic<std::size_t> worker_count_{0};  // workers_.size(), for other threads
  std::atomic<bool> stopping_{false};         // run() returns when set
  std::thread thread_;                        // made by start()
};

}  // namespace carico::test
