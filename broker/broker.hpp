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
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/access_log.hpp"
#include "broker/block_recycler.hpp"
#include "broker/broker_monitor.hpp"
#include "broker/client_quota.hpp"
#include "broker/journal.hpp"
#include "broker/known_worker.hpp"
#include "broker/outbox.hpp"
#include "broker/reply_cache.hpp"
#include "broker/request.hpp"
#include "broker/service.hpp"
#include "broker/zap_handler.hpp"
#include "shared/codec.hpp"
#include "shared/curve.hpp"
#include "shared/limits.hpp"
#include "shared/map_writer.hpp"
#include "shared/raw_map.hpp"
#include "shared/runtime.hpp"

namespace carico {

struct broker_options {
  std::string frontend = "tcp://127.0.0.1:5555";  // clients connect here
  std::string backend = "tcp://127.0.0.1:5556";   // workers connect here
  long heartbeat_ms = 500;                        // heartbeat interval both ways (carico
                                                  // workers that announce none)
  long stock_heartbeat_ms = 2500;                 // interval stock MDP/0.1 workers are held to
                                                  // (the reference implementation's)
  long queue_timeout_ms = 60000;                  // a request not given to a worker by then is
                                                  // answered 504 (unless it says timeout_ms)
  long liveness = 3;                              // missed intervals before a worker is dead
  std::size_t max_queue = 100000;                 // waiting requests per service
  int client_hwm = 64;                            // messages ZeroMQ buffers per client before it
                                                  // stops reading that client's connection
  int client_send_hwm = 100000;                   // replies owed to one client that it has not
                                                  // read; more are dropped (counted); 0: no limit
  std::size_t park_after = 1024;                  // waiting requests per service kept in full;
                                                  // later ones are packed (broker/packed_queue.hpp)
  std::uint64_t max_attempts = 3;                 // workers a request may be given to
  std::string journal_path{};                     // request journal: SQLite file or
                                                  // postgresql:// URI; empty for none
  std::shared_ptr<journal> opened_journal{};      // a journal main.cpp already opened (a
                                                  // PostgreSQL one, once leader); wins over journal_path
  std::chrono::milliseconds journal_keep = std::chrono::hours(24 * 7);  // finished rows kept
  std::uint64_t journal_max_bytes = 1ULL << 30;   // journal files on disk; the oldest
                                                  // finished rows go to stay under it
  std::size_t remembered_replies = 100000;        // answered keys kept in memory for resends
  // Security and limits (docs/security.md).
  bool curve = false;                             // CurveZMQ on both sockets, ZAP allow lists
  curve_key_pair curve_key{};                     // the broker's long-term key pair (curve)
  allow_list curve_clients{};                     // client keys admitted on the frontend (curve)
  allow_list curve_workers{};                     // worker keys admitted on the backend (curve)
  bool insecure = false;                          // allow a non-loopback bind without curve
  message_limits limits{};                        // bytes per frame/message, frames per message
  std::size_t max_payload_bytes = default_max_payload_bytes(default_max_message_bytes);  // larger: 413
  std::size_t max_inflight_per_client = 10000;    // unanswered requests per client, then 503; 0: no cap
  std::size_t max_services = 10000;               // distinct service names (clients' and workers')
  std::size_t max_held_bytes = std::size_t{2} << 30;  // request bytes held in memory, then 503; 0: no cap
  long shutdown_grace_ms = 5000;                  // on SIGINT/SIGTERM: how long workers may finish
                                                  // what they hold before the broker leaves
  milliseconds snapshot_every{0};                 // how often the loop publishes a snapshot for
                                                  // the HTTP port (broker_monitor); 0: never
};

// Counters reported by mmi.stats.
struct broker_stats {
  std::uint64_t received{0};       // requests accepted for a service
  std::uint64_t done{0};           // answered 200 by a worker
  std::uint64_t failed{0};         // answered with another code by a worker
  std::uint64_t expired{0};        // answered 504: out of attempts, or its deadline passed queued
  std::uint64_t redispatched{0};   // given back to the queue after a worker was lost
  std::uint64_t refused{0};        // answered 503 (queue full)
  std::uint64_t malformed{0};      // client messages answered 400
  std::uint64_t late_replies{0};   // worker replies dropped (already answered / unknown)
  std::uint64_t unread_dropped{0}; // replies dropped: their client left --client-send-hwm unread
  std::uint64_t workers_joined{0}; // READY accepted
  std::uint64_t workers_lost{0};   // workers forgotten for any reason
  std::uint64_t resends{0};        // keyed requests seen again: attached or answered again
  std::uint64_t mdp_dropped{0};    // stock (MDPC01) requests that failed: MDP/0.1 has no error
                                   // reply, so nothing was sent
  std::uint64_t journal_refused{0};  // new requests answered 503: the journal could not be written
};

class broker {
 public:
  // Binds both endpoints; throws zmq::error_t when one cannot be bound. With a
  // journal_path, opens the journal (journal_error when it is corrupt, locked or
  // unwritable) and queues the requests it left unfinished. Throws
  // std::invalid_argument for a non-loopback endpoint without curve (unless
  // insecure). With curve, starts the ZAP handler: one curve broker per context.
  broker(zmq::context_t& context, broker_options options,
         std::shared_ptr<spdlog::logger> logger = nullptr);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // The endpoints actually bound (a tcp port of * is resolved).
  std::string frontend_endpoint() const;
  std::string backend_endpoint() const;

  // Serves until stop() or SIGINT/SIGTERM, then sends DISCONNECT to every worker.
  // A signal stops it cleanly: new requests are answered 503 "shutting down",
  // nothing more is dispatched, the workers get up to shutdown_grace_ms to
  // answer what they hold, and every outcome is committed before it returns;
  // what is still unfinished stays in the journal for the next start.
  void run();
  // Asks run() to return at once; safe from any thread.
  void stop();
  // The snapshots the loop publishes every options.snapshot_every, for the
  // HTTP port (http_server.hpp); the last one says `stopping` once run() ends.
  std::shared_ptr<const snapshot_publisher> snapshots() const { return monitor_.publisher(); }

 private:
  // ---- The loop (broker.cpp): sockets, batches, the tick, the sends that end a batch.
  void secure_sockets(zmq::context_t& context);
  // Each receives a batch of messages and returns how many it read.
  std::size_t handle_frontend();
  std::size_t handle_backend();
  void on_tick();
  void trim_after_burst(bool burst_ended);
  void release_when_quiet(time_point now);
  void release_memory();
  // Enters the clean stop (run()'s contract): refuse, stop dispatching, wait.
  void begin_shutdown();
  // Forgets services with no worker and nothing waiting or in flight.
  void forget_idle_services();
  void mark_batch();
  void flush_sends();
  void send_to_client(const std::string& client, std::string_view service, const header& head,
                      std::vector<zmq::message_t>&& body);
  // head_frame is sent only to a carico client (`to`); a stock client gets the body alone.
  void send_to_client(const std::string& client, dialect to, std::string_view service,
                      zmq::message_t&& head_frame, std::vector<zmq::message_t>&& body);
  void send_to_worker(const std::string& identity, zmq::multipart_t&& frames);
  void on_reply_refused(std::string_view client, int error);

  // ---- Clients (broker_clients.cpp): a request read, checked and accepted, or refused.
  void on_client_message(std::string&& client, zmq::multipart_t&& frames);
  void on_oversized_client_message(const std::string& client, zmq::multipart_t& frames,
                                   receive_status status, std::size_t seen);
  void accept_request(std::string&& client, client_request&& message);
  bool refuse_over_limits(const std::string& client, client_request& message,
                          std::size_t bytes);
  static std::size_t held_bytes(const client_request& message);
  // An error reply: to a carico client a header with `code` and `error`; a
  // stock client gets nothing (MDP/0.1 has no error reply): counted and logged.
  void reply_error(const std::string& client, dialect to, std::string_view service,
                   std::uint64_t code, std::string_view reason,
                   const header* request_head = nullptr);
  std::string client_label(std::string_view client) const;

  // ---- Workers (broker_workers.cpp): joining, heartbeats, replies, loss.
  void on_worker_message(const std::string& identity, zmq::multipart_t&& frames);
  void register_worker(const std::string& identity, worker_message& message);
  void on_heartbeat(known_worker& w, worker_message& message);
  void on_reply(known_worker& w, worker_message& message);
  void delete_worker(known_worker& w, std::string_view reason, bool send_disconnect);
  void purge_expired(time_point now);

  // ---- Service queues and dispatch (broker_queues.cpp).
  service& require_service(const std::string& name);
  bool should_park(const service& s) const;
  void queue_back(service& s, request&& r);
  request& unpark(service& s);
  std::size_t waiting(const service& s) const;
  void dispatch(service& s);
  void send_request(known_worker& w, request& r);
  // Gives request `number`, which `by` held, back to its queue's front (a
  // re-dispatch), or answers 504 when it is out of attempts or past its deadline.
  void requeue(std::uint64_t number, const known_worker& by, std::string_view why);
  // Answers 504 to waiting request r (in requests_ or just unparked), which
  // is past its deadline; the caller erases it.
  void expire(request& r);
  // Expires every waiting request past its deadline; sets next_expiry_.
  void expire_waiting(time_point now);
  void note_deadline(const request& r) {
    next_expiry_ = std::min(next_expiry_, r.deadline);
    next_tick_ = std::min(next_tick_, next_expiry_);
  }
  // How long a request that asks for `asked` (its header's timeout_ms) may
  // wait: that, or the queue timeout for none or 0; at most 30 days.
  std::uint64_t effective_timeout(std::optional<std::uint64_t> asked) const;

  // ---- The exactly-once ledger (broker_ledger.cpp): the journal, keyed requests, held
  // replies, the reply cache, and the end of every request.
  void open_journal();
  void reload_unfinished();
  void release_sticky(known_worker* returning);
  void on_journal_commit();
  // Fenced (another broker is active, or this one lost its session): throws
  // journal_fenced, which ends run() at once; nothing more may leave.
  void stop_if_fenced() const;
  // timeout_ms: the resend's own (effective_timeout); a waiting request's
  // deadline is pushed out to it.
  bool answer_resend(const std::string& client, const request_key_parts& key,
                     std::uint64_t timeout_ms);
  void finish_request(request& r, header& head, std::vector<zmq::message_t>&& body,
                      request_state state, std::string_view worker);
  void finish_request(request& r, zmq::message_t&& head_frame, std::uint64_t result_code,
                      std::vector<zmq::message_t>&& body, request_state state,
                      std::string_view worker);
  void log_access(request& r, std::uint64_t code, request_state state, std::string_view worker);
  void send_after_commit(std::uint64_t seq, const std::string& client, dialect to,
                         std::string_view service, zmq::message_t&& head_frame,
                         std::vector<zmq::message_t>&& body);
  journal_record record_of(const request& r, const header& head,
                           const request_key_parts* key = nullptr) const;
  static void keep_header(request& r, header& head, zmq::message_t&& frame);

  // ---- `get` (fetch.cpp): a stored document fetched from the worker that stored it.
  // The number a carico request's header asks for with `get`; nothing for none.
  // A `get` that is not an unsigned integer is answered 400 and yields 0.
  std::optional<std::uint64_t> get_of(const std::string& client, client_request& message);
  // Routes a `get` of request `of` to the worker that stored it, or answers
  // 404 (unknown, not stored, not this client's) or 503 (holder not connected).
  void accept_get(std::string&& client, client_request&& message, std::uint64_t of);
  // A `get` whose holder was lost or answered 503: answered 503 naming it,
  // never given to another worker. The caller erases r.
  void fail_get(request& r, const known_worker& by, std::string_view why);
  // The client's ZAP User-Id with curve (its allow-list name), else "".
  std::string owner_of(const client_request& message) const;
  // mmi.stored: the last `last` stored documents (this client's with curve).
  nlohmann::json stored_json(std::size_t last, const std::string& owner);

  // ---- MMI (broker_mmi.cpp): the broker's own services.
  void answer_mmi(const std::string& client, client_request& message);
  void answer_stock_mmi(const std::string& client, client_request& message);
  nlohmann::json workers_json() const;
  nlohmann::json stats_json() const;
  nlohmann::json request_json(const request& r) const;
  std::optional<nlohmann::json> find_request_json(std::uint64_t number);
  std::optional<nlohmann::json> find_request_json(const request_key_parts& key);
  nlohmann::json history_json(std::size_t last);
  nlohmann::json parked_json(service& s, const packed_view& v) const;
  std::optional<nlohmann::json> find_parked_json(std::uint64_t number);

  broker_options options_;                   // as configured
  std::shared_ptr<spdlog::logger> log_;      // loadbalancer.log and stderr
  access_log access_;                        // one line per finished request (info)
  zmq::socket_t frontend_;                   // ROUTER for clients
  zmq::socket_t backend_;                    // ROUTER for workers
  outbox to_clients_;                        // frontend sends, flushed after each batch
  outbox to_workers_;                        // backend sends, flushed after each batch
  map_writer reply_head_;                    // builds each client reply header; buffer reused
  raw_map client_head_;  // the request header being handled, as the codec read it (keep_raw)
  raw_map worker_head_;  // the same for the REPLY header being handled
  loop_waker waker_;                         // lets stop() interrupt poll
  std::atomic<bool> stopping_{false};        // set by stop()
  bool shutting_down_{false};                // a signal arrived: clean stop under way
  time_point shutdown_deadline_{};           // when the clean stop gives up waiting
  milliseconds expiry_;                      // liveness x the broker's heartbeat interval

  std::unordered_map<std::string, std::unique_ptr<known_worker>> workers_;  // by routing id
  std::unordered_map<std::string, std::unique_ptr<service>> services_;      // by name
  // requests_'s nodes, recycled: a reply frees one moments before the next
  // request takes one (block_recycler.hpp). At most 1024 kept (~350 KiB).
  block_recycler request_nodes_{1024};
  // Unanswered and not parked, by number.
  std::unordered_map<std::uint64_t, request, std::hash<std::uint64_t>,
                     std::equal_to<std::uint64_t>,
                     recycling_allocator<std::pair<const std::uint64_t, request>>>
      requests_{recycling_allocator<std::pair<const std::uint64_t, request>>(request_nodes_)};
  std::size_t parked_at_trim_{0};            // requests parked when memory was last trimmed
  std::uint64_t seen_at_release_check_{0};   // requests seen at the last release_when_quiet
  time_point last_traffic_at_{};             // when release_when_quiet last saw that move
  bool release_pending_{false};              // traffic since memory was last released
  std::uint64_t next_request_{1};            // number of the next accepted request
  broker_stats stats_;                       // counters for mmi.stats
  time_point started_at_;                    // for uptime
  time_point next_tick_;                     // earliest deadline: heartbeat or an expiry
  time_point batch_now_{};                   // the clock as mark_batch() last read it
  std::int64_t batch_unix_ms_{0};            // the same in unix milliseconds, for records

  // A reply that may leave only once the journal holds the outcome it reports.
  // Kept in parts (no multipart to build) and sent by send_to_client().
  struct held_reply {
    std::uint64_t seq;                   // journal sequence that must be committed first
    std::string client;                  // routing id of the client
    dialect to;                          // the client's dialect
    std::string service;                 // frame 3 of the reply
    zmq::message_t head;                 // the reply header
    std::vector<zmq::message_t> body;    // frames 5..
  };
  loop_waker journal_commits_;               // woken by the journal writer after each commit
  std::shared_ptr<journal> journal_;         // the request journal; null with none (goes first)
  std::deque<std::pair<std::uint64_t, std::uint64_t>> uncommitted_;  // (seq, number) received, not yet durable
  std::deque<held_reply> held_replies_;      // replies waiting for their commit
  std::unordered_map<std::string, std::uint64_t> keyed_;  // idempotency key -> unanswered request
  // Clients that sent a parked keyed request again, by request number: they
  // join its waiters when it is unparked.
  std::unordered_map<std::uint64_t, std::vector<std::string>> parked_waiters_;
  reply_cache answered_;                     // replies of answered keyed requests, for resends
  std::unique_ptr<key_filter> journal_keys_; // keys the journal may hold (null with none)
  // Reloaded requests that a named worker held when the last broker died: kept
  // for that worker (which may have run them already: its file name comes from
  // the request number, so running them again overwrites, never duplicates)
  // until it comes back or sticky_until_ passes.
  std::unordered_map<std::string, std::vector<std::uint64_t>> sticky_;
  time_point sticky_until_{};                // when sticky_ is given to any worker

  // The earliest deadline of a waiting request, as far as the broker knows:
  // expire_waiting() runs then, and sets it anew from what still waits.
  time_point next_expiry_{time_point::max()};

  std::unique_ptr<zap_handler> zap_;         // CURVE authentication (ZAP); null without curve
  client_quota quota_;                       // unanswered requests per client routing id
  broker_monitor monitor_;                   // counts and publishes snapshots for the HTTP port
};

// Hex rendering of a routing id, for names and logs.
std::string hex_id(std::string_view bytes);

}  // namespace carico
