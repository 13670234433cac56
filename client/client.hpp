// A carico client: one DEALER to the broker's frontend, any number of requests
// outstanding on it, each answered through a future or a callback.
//
//   zmq::context_t context;
//   carico::client c(context, {.endpoint = "tcp://127.0.0.1:5555"});
//   std::future<carico::reply> f = c.submit("text", {{"title", "x"}}, R"({"title":"x",...})");
//   carico::reply r = f.get();                      // r.code == 200, r.head["result"]...
//   c.submit("text", {}, payload, [](carico::reply r) { ... });   // on the I/O thread
//   carico::reply s = c.call("mmi.stats", {}, "");  // blocking
//
// The socket belongs to one internal I/O thread. submit() may be called from
// any thread (callbacks included); callbacks run on the I/O thread and must not
// block (close() from a callback only asks the loop to stop; never destroy the
// client from one). Every request completes exactly once: with the
// broker's reply, a local 504 when its timeout passes, or a local 503 when the
// client closes or no broker was ever reached. A reply that arrives for a
// request already completed is dropped.
//
// Broker restarts: a socket monitor watches the DEALER. When its connection
// comes back after a loss, every unanswered request is sent again at once (the
// same client and id: the broker runs it once), each resend taking one of its
// `retries`; an attempt that times out is resent only while connected (else
// it ends with 504: its copy is still waiting in the client). When no connection to the broker was ever made (tcp/ipc; the
// monitor sees none over inproc), requests fail with a local 503 "no broker at
// ...: nothing answered in 2 s" no_broker_ms after they were submitted, and
// later ones at once, until the socket connects.
//
// Several brokers (active / standby): `endpoint` may list them, comma-separated
// ("tcp://a:5555,tcp://b:5555"). The one DEALER connects to all of them; a
// standby binds nothing, so only the active broker's connection completes, and
// with ZMQ_IMMEDIATE requests go only over completed connections. A failover is
// a reconnect like a restart: when the new active broker's connection
// completes, every unanswered request is sent to it (its keys make it answer
// each once, from the shared journal). "no broker" means that none of them ever
// answered. broker() says which one the client is on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
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

namespace carico {

struct client_options {
  std::string endpoint = "tcp://127.0.0.1:5555";  // the broker's frontend; or several,
                                                  // comma-separated (one per broker that may be active)
  std::string name;                               // header `client`; empty: host-pid-random
  long timeout_ms = 10000;                        // per attempt, unless submit() says otherwise
  int retries = 3;                                // resends of an unanswered request (same client,
                                                  // id): after a timeout or a reconnect
  long no_broker_ms = 2000;                       // never connected this long: requests fail 503
  int send_hwm = 1000;                            // DEALER send high-water mark; beyond it a local backlog
  curve_client_keys curve{};                      // CurveZMQ keys; off when empty
  message_limits limits{};                        // ZMQ_MAXMSGSIZE on the DEALER
  // carico (MDPCX1): one DEALER, any number of requests in flight, replies
  // matched by `id`. mdp: a stock MDP/0.1 broker, which returns no id: one
  // request in flight per connection (RFC 7), `connections` of them, no resends
  // (a request has no key there, so a resend could run twice).
  dialect protocol = dialect::carico;
  int connections = 1;                            // mdp: DEALERs, one request in flight on each
};

// The outcome of one request, from the broker or made locally (504, 503, 400).
struct reply {
  std::uint64_t code{0};                   // the contract's code: 200 done, 4xx/5xx otherwise
  nlohmann::json head;                     // the reply header (id, request, worker, result, error...)
  std::vector<std::string> body;           // reply frames 4.. (mmi.service answers here)
  std::chrono::microseconds latency{0};    // from submit() to completion
  bool local{false};                       // made by the client, not received from the broker

  bool ok() const { return code == 200; }
  // head["error"] when it is a string, else empty.
  std::string error() const;
};

using reply_callback = std::function<void(reply)>;

// Counters of the client's life, readable from any thread.
struct client_counters {
  std::atomic<std::uint64_t> submitted{0};   // requests accepted by submit()
  std::atomic<std::uint64_t> sent{0};        // messages handed to the DEALER (resends included)
  std::atomic<std::uint64_t> replies{0};     // requests completed by a broker reply
  std::atomic<std::uint64_t> timeouts{0};    // requests completed with a local 504
  std::atomic<std::uint64_t> resends{0};     // requests sent again after a timeout or a reconnect
  std::atomic<std::uint64_t> reconnects{0};  // connections to the broker made again after a loss
  std::atomic<std::uint64_t> no_broker{0};   // requests failed with 503: no broker ever reached
  std::atomic<std::uint64_t> late{0};        // replies dropped: no such request outstanding
  std::atomic<std::uint64_t> malformed{0};   // broker messages that could not be decoded
};

class client {
 public:
  // Connects the DEALER (lazily, as ZeroMQ does) and starts the I/O thread.
  // Throws std::invalid_argument for a malformed endpoint list
  // (parse_endpoint_list's message) and zmq::error_t for an endpoint ZeroMQ rejects.
  client(zmq::context_t& context, client_options options = {},
         std::shared_ptr<spdlog::logger> logger = nullptr);
  ~client();  // close()
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends payload to service. head must be a JSON object (else a local 400);
  // the client sets `id` (its own counter) and `client` (name()) unless head has
  // them. A caller-chosen id must be unique among this client's outstanding
  // requests (a duplicate completes at once with a local 400). timeout is per
  // attempt; without it options.timeout_ms. Never blocks on the network.
  std::future<reply> submit(std::string service, nlohmann::json head, std::string payload,
                            std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // As above; on_reply runs once, on the I/O thread (or on the caller's thread
  // when the request fails before it is queued: bad header, client closed).
  void submit(std::string service, nlohmann::json head, std::string payload,
              reply_callback on_reply,
              std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // submit(...).get().
  reply call(std::string service, nlohmann::json head, std::string payload,
             std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // Stops the I/O thread and completes every outstanding request with a local
  // 503 "client closed"; later submits complete the same way at once. Idempotent.
  void close();

  const std::string& name() const { return name_; }
  const client_options& options() const { return options_; }
  // Requests submitted and not yet completed.
  std::size_t outstanding() const { return outstanding_.load(); }
  const client_counters& counters() const { return counters_; }
  // The brokers' endpoints, as listed in options().endpoint.
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // The endpoint of the broker the client is connected to now (the one whose
  // connection completed last and still holds); empty when none is, or over
  // inproc (no connection events there). Any thread.
  std::string broker() const;

 private:
  struct submission;
  struct pending;
  class io_loop;

  void enqueue(std::unique_ptr<submission> s);
  void set_broker(std::string endpoint);

  client_options options_;                 // as configured, name resolved
  std::string name_;                       // header `client`
  std::vector<std::string> endpoints_;     // options_.endpoint as a list
  mutable std::mutex broker_mutex_;        // guards broker_
  std::string broker_;                     // see broker(); written by the I/O thread
  std::shared_ptr<spdlog::logger> log_;    // never null
  zmq::context_t& context_;                // for the pipe and the DEALER
  std::string pipe_endpoint_;              // inproc endpoint of the submission pipe

  std::mutex mutex_;                       // guards pipe_push_, queue_, closed_
  zmq::socket_t pipe_push_;                // wakes the I/O thread; used under mutex_
  std::deque<std::unique_ptr<submission>> queue_;  // submitted, not yet taken by the I/O thread
  bool closed_{false};                     // close() was called

  std::atomic<std::uint64_t> next_id_{1};  // the next automatic `id`
  std::atomic<std::size_t> outstanding_{0};// submitted and not completed
  client_counters counters_;               // see client_counters
  std::unique_ptr<io_loop> loop_;          // owns the DEALER; run by thread_
  std::thread thread_;                     // the I/O thread
};

// "host-pid-xxxx" with four random hex digits.
std::string default_client_name();

}  // namespace carico
