// A stock MDP/0.1 worker (ZeroMQ RFC 7), strict about what the broker sends.
//
//   zmq::context_t context;
//   carico::test::stock_worker w(context, {.endpoint = broker_backend, .service = "echo"});
//   ... a client calls "echo" ...
//   REQUIRE(w.events().violations.empty());   // every broker message had the RFC 7 shape
//   REQUIRE(w.events().disconnects == 0);
//
// It runs its own thread: READY ["", "MDPW01", 0x01, service] on every new
// socket, HEARTBEAT ["", "MDPW01", 0x04] every heartbeat interval (the reference
// implementation's 2500 ms by default), and it takes the broker for dead after
// liveness x interval of silence, or on DISCONNECT: then it closes the socket
// and, after reconnect_delay, opens a new one and says READY again (RFC 7).
// A REQUEST must be exactly ["", "MDPW01", 0x02, address, "", body...]; each
// one is answered ["", "MDPW01", 0x03, address, "", handler(body)...]. Anything
// else the broker sends is recorded as a violation. Controls and observations
// are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "tests/support/stock_mdp.hpp"

namespace carico::test {

struct stock_worker_options {
  std::string endpoint;                             // the broker's worker socket
  std::string service = "echo";                     // READY service
  std::chrono::milliseconds heartbeat{2500};        // HEARTBEAT interval (the RFC 7 reference's)
  int liveness = 3;                                 // silent intervals before the broker is dead
  std::chrono::milliseconds reconnect_delay{2500};  // pause before a new socket
  bool reconnect = true;                           // false: stay down after DISCONNECT/broker death
  bool auto_reply = true;                          // false: hold requests until release()
  std::function<frames(const frames&)> handler{};  // reply body from request body; empty: echo
};

// A REQUEST as the worker received it.
struct stock_request {
  std::string address;  // frame 3, echoed in the REPLY
  frames body;          // frames 5+
};

// What the worker has seen and done so far.
struct stock_worker_events {
  std::vector<stock_request> requests;  // every well-formed REQUEST, in order
  std::vector<std::string> violations;  // broker messages that broke RFC 7, with a sample
  std::size_t readies{0};               // READYs sent (one per socket)
  std::size_t reconnects{0};            // new sockets after the first
  std::size_t disconnects{0};           // DISCONNECTs received
  std::size_t heartbeats{0};            // HEARTBEATs received
  std::size_t replies{0};               // REPLYs sent
  std::size_t broker_deaths{0};         // times the broker fell silent past liveness
};

class stock_worker {
 public:
  stock_worker(zmq::context_t& context, stock_worker_options options);
  ~stock_worker();  // stops the thread; says nothing more to the broker
  stock_worker(const stock_worker&) = delete;
  stock_worker& operator=(const stock_worker&) = delete;

  // Sends exactly these frames on the current socket (false when it has none).
  bool send_raw(const frames& message);
  // Answers the oldest held request (auto_reply off); false when none is held.
  bool release();

  stock_worker_events events() const;
  // Waits until pred holds for the events, or timeout passes; returns pred's last value.
  bool wait_for(const std::function<bool(const stock_worker_events&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(3)) const;

 private:
  using clock = std::chrono::steady_clock;

  void run();
  void run_on_thread(std::function<void()> job);
  void open_socket();
  void close_socket(clock::time_point now);
  void handle(const frames& message);
  void handle_request(const frames& message);
  void send_reply(const stock_request& request);
  void violation(const std::string& what, const frames& message);
  template <class Change>
  void record(Change change);

  stock_worker_options options_;  // as given
  zmq::context_t& context_;       // for each new socket
  zmq::socket_t control_;         // PAIR: wakes the thread (thread side)
  zmq::socket_t control_sender_;  // PAIR: other threads wake it, under mutex_

  // Thread-only state.
  std::unique_ptr<zmq::socket_t> socket_;  // DEALER to the broker; null while down
  std::deque<stock_request> held_;         // requests not answered yet
  clock::time_point broker_expires_{};     // the broker is dead when silent past this
  clock::time_point next_heartbeat_{};     // when to send the next HEARTBEAT
  clock::time_point reconnect_at_{};       // when to open a new socket (socket_ null)
  bool down_{false};                       // socket closed and no reconnect wanted

  // Shared with other threads, under mutex_.
  mutable std::mutex mutex_;                 // guards everything below
  mutable std::condition_variable changed_;  // signalled on every change below
  stock_worker_events events_;               // see stock_worker_events
  std::deque<std::function<void()>> jobs_;   // controls to run on the thread
  std::size_t jobs_queued_{0};               // jobs queued so far
  std::size_t jobs_done_{0};                 // jobs finished so far
  bool stopping_{false};                     // set by the destructor

  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace carico::test
