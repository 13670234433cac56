// The carico broker: a ROUTER frontend for clients, a ROUTER backend for
// workers, a round-robin ring of workers per service, and bounded queues.
//
//   zmq::context_t context;
//   carico::broker b(context, {.frontend = "inproc://f", .backend = "inproc://b"});
//   std::thread t([&] { b.run(); });
//   ...
//   b.stop(); t.join();
//
// One thread runs run(); stop() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/known_worker.hpp"
#include "broker/request.hpp"
#include "broker/service.hpp"
#include "shared/codec.hpp"
#include "shared/runtime.hpp"

namespace carico {

struct broker_options {
  std::string frontend = "tcp://127.0.0.1:5555";  // clients connect here
  std::string backend = "tcp://127.0.0.1:5556";   // workers connect here
  long heartbeat_ms = 500;                        // heartbeat interval both ways
  long liveness = 3;                              // missed intervals before a worker is dead
  std::size_t max_queue = 100000;                 // waiting requests per service
  std::uint64_t max_attempts = 3;                 // workers a request may be given to
};

// Counters reported by mmi.stats.
struct broker_stats {
  std::uint64_t received{0};       // requests accepted for a service
  std::uint64_t done{0};           // answered 200 by a worker
  std::uint64_t failed{0};         // answered with another code by a worker
  std::uint64_t expired{0};        // answered 504 after max attempts
  std::uint64_t redispatched{0};   // given back to the queue after a worker was lost
  std::uint64_t refused{0};        // answered 503 (queue full)
  std::uint64_t malformed{0};      // client messages answered 400
  std::uint64_t late_replies{0};   // worker replies dropped (already answered / unknown)
  std::uint64_t workers_joined{0}; // READY accepted
  std::uint64_t workers_lost{0};   // workers forgotten for any reason
};

class broker {
 public:
  // Binds both endpoints; throws zmq::error_t when one cannot be bound.
  broker(zmq::context_t& context, broker_options options,
         std::shared_ptr<spdlog::logger> logger = nullptr);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // The endpoints actually bound (a tcp port of * is resolved).
  std::string frontend_endpoint() const;
  std::string backend_endpoint() const;

  // Serves until stop() or SIGINT/SIGTERM, then sends DISCONNECT to every worker.
  void run();
  // Asks run() to return; safe from any thread.
  void stop();

 private:
  void handle_frontend();
  void handle_backend();
  void on_tick();

  void on_client_message(zmq::multipart_t&& frames);
  void accept_request(std::string&& client, client_request&& message);
  void answer_mmi(const std::string& client, client_request& message);
  void reply_error(const std::string& client, std::string_view service, std::uint64_t code,
                   std::string_view reason, const header* request_head = nullptr);
  void send_to_client(const std::string& client, std::string_view service, const header& head,
                      std::vector<zmq::message_t>&& body);

  void on_worker_message(zmq::multipart_t&& frames);
  void register_worker(const std::string& identity, worker_message& message);
  void on_heartbeat(known_worker& w, worker_message& message);
  void on_reply(known_worker& w, worker_message& message);
  void send_to_worker(const std::string& identity, zmq::multipart_t&& frames);
  void delete_worker(known_worker& w, std::string_view reason, bool send_disconnect);
  void purge_expired(time_point now);

  service& require_service(const std::string& name);
  void dispatch(service& s);
  void send_request(known_worker& w, request& r);
  void requeue(std::uint64_t number, const known_worker& lost_by);

  std::string client_label(const std::string& client) const;
  nlohmann::json workers_json() const;
  nlohmann::json stats_json() const;
  nlohmann::json request_json(const request& r) const;

  broker_options options_;                   // as configured
  std::shared_ptr<spdlog::logger> log_;      // loadbalancer.log and stderr
  zmq::socket_t frontend_;                   // ROUTER for clients
  zmq::socket_t backend_;                    // ROUTER for workers
  loop_waker waker_;                         // lets stop() interrupt poll
  std::atomic<bool> stopping_{false};        // set by stop()
  milliseconds expiry_;                      // liveness x heartbeat interval

  std::unordered_map<std::string, std::unique_ptr<known_worker>> workers_;  // by routing id
  std::unordered_map<std::string, std::unique_ptr<service>> services_;      // by name
  std::unordered_map<std::uint64_t, request> requests_;                     // unanswered, by number
  std::uint64_t next_request_{1};            // number of the next accepted request
  broker_stats stats_;                       // counters for mmi.stats
  time_point started_at_;                    // for uptime
  time_point next_heartbeat_;                // when heartbeats are next sent
  time_point next_tick_;                     // earliest deadline: heartbeat or an expiry
};

// Hex rendering of a routing id, for names and logs.
std::string hex_id(std::string_view bytes);

}  // namespace carico
