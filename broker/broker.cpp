#include "broker/broker.hpp"
#include "broker/leadership.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <unordered_set>

#ifdef __GLIBC__
#include <malloc.h>  // malloc_trim
#endif

#include "shared/logging.hpp"

namespace carico {
namespace {

// Messages read from one socket before the loop looks at the other one.
constexpr int io_batch = 256;

bool starts_with_mmi(std::string_view name) { return name.rfind("mmi.", 0) == 0; }

long ms_between(time_point from, time_point to) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(to - from).count());
}

std::string describe(const zmq::multipart_t& frames) {
  std::string out = std::to_string(frames.size()) + " frames";
  for (std::size_t i = 0; i < frames.size() && i < 4; ++i) {
    out += i == 0 ? ": [" : ", [";
    out += sample(frames[i].data(), frames[i].size(), 24) + "]";
  }
  return out;
}

// The client's reply header made from a worker's, read in place: the worker's
// entries in their order without `attempt` and `id`, the broker's `request`,
// `code`, `status`, `worker` and `attempts` in place of the worker's own, then
// the request's `id` and whichever of those the worker did not send (with
// `error` for a failure that has none): the keys, values and order on_reply's
// header edits give a decoded header.
zmq::message_t client_reply_head(map_writer& out, const raw_map& worker_head, const request& r,
                                 std::string_view worker, std::uint64_t result_code) {
  const std::string_view status = result_code == code::ok ? "ok" : "error";
  // The broker's own entries, in the order on_reply sets them.
  enum { k_request, k_code, k_status, k_error, k_worker, k_attempts, k_count };
  static constexpr std::string_view names[k_count] = {"request", "code",   "status",
                                                      "error",   "worker", "attempts"};
  bool sent[k_count] = {};  // the worker's header has it
  std::size_t count = 0;
  for (const raw_map::entry& e : worker_head) {
    if (e.key == "attempt" || e.key == "id") continue;
    ++count;
    for (int k = 0; k < k_count; ++k) {
      if (e.key == names[k]) sent[k] = true;
    }
  }
  const bool add_error = result_code != code::ok && !sent[k_error];
  if (!r.id.empty()) ++count;
  for (int k = 0; k < k_count; ++k) {
    if (!sent[k] && (k != k_error || add_error)) ++count;
  }
  auto add = [&](int k) {
    switch (k) {
      case k_request: out.add(names[k], r.number); break;
      case k_code: out.add(names[k], result_code); break;
      case k_status: out.add(names[k], status); break;
      case k_error: out.add(names[k], "worker failed"); break;
      case k_worker: out.add(names[k], worker); break;
      case k_attempts: out.add(names[k], r.attempts); break;
    }
  };
  out.begin(count);
  for (const raw_map::entry& e : worker_head) {
    if (e.key == "attempt" || e.key == "id") continue;
    int own = k_count;
    for (int k = 0; k < k_count; ++k) {
      if (k != k_error && e.key == names[k]) own = k;
    }
    if (own == k_count) {
      out.add_raw(e.key, e.value);  // the worker's error included
    } else {
      add(own);
    }
  }
  if (!r.id.empty()) out.add_raw("id", r.id);
  for (int k = 0; k < k_count; ++k) {
    if (!sent[k] && (k != k_error || add_error)) add(k);
  }
  return out.to_message();
}

// The broker's token for a request (send_request's address): its number.
std::optional<std::uint64_t> parse_token(std::string_view token) {
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), number);
  if (ec != std::errc() || end != token.data() + token.size() || token.empty()) return std::nullopt;
  return number;
}

// The dialect frame 1 of a worker message names, if any (for a DISCONNECT in kind).
std::optional<dialect> worker_dialect_of(const zmq::multipart_t& frames) {
  if (frames.size() < 2) return std::nullopt;
  if (frame_equals(frames[1], worker_signature)) return dialect::mdp;
  if (frame_equals(frames[1], worker_ext_signature)) return dialect::carico;
  return std::nullopt;
}

// A carico client's reply header for a stock worker's reply (which has none):
// the request's `id`, then `request`, `code` 200, `status`, `worker`, `attempts`.
zmq::message_t stock_reply_head(map_writer& out, const request& r, std::string_view worker) {
  out.begin(r.id.empty() ? 5 : 6);
  if (!r.id.empty()) out.add_raw("id", r.id);
  out.add("request", r.number);
  out.add("code", code::ok);
  out.add("status", "ok");
  out.add("worker", worker);
  out.add("attempts", r.attempts);
  return out.to_message();
}

// The body a stock client gets for a carico worker's reply that has no
// payload frames: its `result` as one frame of JSON text, else one empty frame.
zmq::message_t result_as_json(const zmq::message_t& worker_head) {
  header_result h = header::decode(worker_head);
  if (!h) return zmq::message_t();
  const msgpack::object* result = h.value->find("result");
  if (result == nullptr) return zmq::message_t();
  const std::string text = to_json(*result).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return zmq::message_t(text.data(), text.size());
}

// A worker's `code` as the broker reports it: a 3-digit number, else 500.
std::uint64_t reported_code(std::optional<std::uint64_t> code) {
  return code && *code >= 100 && *code < 1000 ? *code : code::worker_failed;
}

// The reply header's `result` (whatever the service put there) as JSON text
// for the journal row, read in place; a header raw_map leaves to
// header::decode is decoded (a repeated key: the last value wins).
void read_result(const zmq::message_t& head_frame, journal_record& row) {
  raw_map head;
  if (head.parse(head_frame.data(), head_frame.size())) {
    const raw_map::entry* result = head.find("result");
    if (result == nullptr) return;
    try {
      msgpack::object_handle h = msgpack::unpack(result->value.data(), result->value.size());
      if (h.get().type == msgpack::type::MAP) row.result = to_json_text(h.get());
    } catch (const std::exception&) {
      row.result.clear();  // not MessagePack: no result recorded
    }
    return;
  }
  header_result decoded = header::decode(head_frame);
  if (!decoded) return;
  const msgpack::object* result = decoded.value->find("result");
  if (result != nullptr && result->type == msgpack::type::MAP) row.result = to_json_text(*result);
}

// mmi.stats' "journal": whether it can be written (and since when, unix ms),
// why not, and its size on disk against its bound.
nlohmann::json journal_json(const journal& j, const broker_options& options,
                            std::uint64_t refused) {
  const journal_health h = j.health();
  nlohmann::json out = {{"state", h.writable ? "ok" : "unavailable"},
                        {"since_ms", h.since_ms},
                        {"refused", refused},
                        {"bytes", j.disk_bytes()},
                        {"max_bytes", options.journal_max_bytes}};
  out.update(j.describe());  // backend; PostgreSQL: term, active
  if (!h.writable) {
    out["error"] = h.error;
    out["failed_writes"] = h.attempts;
    out["waiting_events"] = h.waiting;
  }
  return out;
}

}  // namespace

std::string hex_id(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

broker::broker(zmq::context_t& context, broker_options options,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      access_(log_),
      frontend_(context, zmq::socket_type::router),
      backend_(context, zmq::socket_type::router),
      to_clients_(frontend_,
                  [this](std::string_view client, int error) { on_reply_refused(client, error); }),
      to_workers_(backend_),
      expiry_(options_.heartbeat_ms * options_.liveness),
      answered_(options_.remembered_replies),
      quota_(options_.max_inflight_per_client, options_.max_held_bytes),
      monitor_(options_.snapshot_every) {
  // Replies a client has not read wait in ZeroMQ, up to client_send_hwm of them:
  // a client that sends and never reads cannot grow the broker without bound.
  // Mandatory routing makes a full client (or a gone one) a send error the
  // broker sees (send_to_client), instead of a silent drop.
  frontend_.set(zmq::sockopt::sndhwm, options_.client_send_hwm);
  frontend_.set(zmq::sockopt::router_mandatory, true);
  // The loop takes requests into its own queues as fast as they come: a deep
  // ZeroMQ buffer per client adds nothing but memory (each buffered frame can
  // hold an 8 KiB receive buffer in ZeroMQ's I/O thread).
  frontend_.set(zmq::sockopt::rcvhwm, options_.client_hwm);
  frontend_.set(zmq::sockopt::linger, 200);
  backend_.set(zmq::sockopt::linger, 200);
  secure_sockets(context);
  frontend_.bind(options_.frontend);
  backend_.bind(options_.backend);
  started_at_ = clock::now();
  mark_batch();
  next_tick_ =
      std::min(started_at_ + milliseconds(options_.heartbeat_ms), monitor_.next_publish());
  if (!options_.journal_path.empty()) open_journal();
  log_->info("broker listening: clients on {}, workers on {}", frontend_endpoint(),
             backend_endpoint());
}

broker::~broker() = default;

// Refuses an open door (a non-loopback bind without CURVE, unless insecure),
// then sets message limits and, with curve, CURVE and the ZAP handler on both
// sockets. Before bind: a peer must never meet an unprotected socket.
void broker::secure_sockets(zmq::context_t& context) {
  for (const std::string* endpoint : {&options_.frontend, &options_.backend}) {
    if (!options_.curve && !options_.insecure && !is_local_endpoint(*endpoint)) {
      throw std::invalid_argument(
          "refusing to bind " + *endpoint + " without --curve: anyone who can reach it could "
          "send work or register as a worker. Use --curve (see docs/security.md), bind "
          "127.0.0.1, or pass --insecure on a network you trust");
    }
  }
  apply_limits(frontend_, options_.limits);
  apply_limits(backend_, options_.limits);
  if (!options_.curve) return;
  if (options_.curve_clients.empty()) log_->warn("curve: the client allow list is empty");
  if (options_.curve_workers.empty()) log_->warn("curve: the worker allow list is empty");
  zap_ = std::make_unique<zap_handler>(context, log_);
  zap_->allow(frontend_zap_domain, options_.curve_clients);
  zap_->allow(backend_zap_domain, options_.curve_workers);
  zap_->monitor(frontend_, "frontend");
  zap_->monitor(backend_, "backend");
  zap_->start();
  apply_curve_server(frontend_, options_.curve_key, frontend_zap_domain);
  apply_curve_server(backend_, options_.curve_key, backend_zap_domain);
  log_->info("curve: on; broker key {}, {} client keys, {} worker keys",
             options_.curve_key.public_key, options_.curve_clients.size(),
             options_.curve_workers.size());
}

std::string broker::frontend_endpoint() const {
  return frontend_.get(zmq::sockopt::last_endpoint);
}

std::string broker::backend_endpoint() const { return backend_.get(zmq::sockopt::last_endpoint); }

void broker::stop() {
  stopping_ = true;
  waker_.wake();
}

void broker::begin_shutdown() {
  shutting_down_ = true;
  shutdown_deadline_ = clock::now() + milliseconds(options_.shutdown_grace_ms);
  next_tick_ = std::min(next_tick_, shutdown_deadline_);
  std::size_t held = 0;
  for (const auto& [identity, w] : workers_) held += w->in_flight.size();
  log_->info("broker shutting down: refusing new requests, waiting up to {} ms for the {} "
             "requests workers hold",
             options_.shutdown_grace_ms, held);
}

void broker::run() {
  // A busy broker goes from one receive batch to the next; it waits only after
  // a pass that found nothing on either socket. Then each socket's last
  // operation was a receive that found nothing, so wait_for_input, which costs
  // one system call where zmq::poll costs five, is sound.
  bool idle = false;
  while (!stopping_) {
    if (stop_signalled() && !shutting_down_) begin_shutdown();
    if (shutting_down_) {
      std::size_t held = 0;
      for (const auto& [identity, w] : workers_) held += w->in_flight.size();
      if (held == 0 || clock::now() >= shutdown_deadline_) break;
    }
    try {
      if (idle) {
        zmq::pollitem_t items[] = {
            {backend_.handle(), 0, ZMQ_POLLIN, 0},
            {frontend_.handle(), 0, ZMQ_POLLIN, 0},
            waker_.pollitem(),
            journal_commits_.pollitem(),
        };
        wait_for_input(items, journal_ ? 4 : 3, poll_timeout(next_tick_));
        if (items[2].revents & ZMQ_POLLIN) waker_.drain();
        if (items[3].revents & ZMQ_POLLIN) journal_commits_.drain();
      }
      // Sends come first, so that the receives below are each socket's last
      // operation. Workers before clients: replies free capacity.
      mark_batch();
      if (journal_) on_journal_commit();  // a load and two checks when nothing committed
      if (batch_now_ >= next_tick_) on_tick();
      flush_sends();
      // What a batch sends goes out at its end, together (outbox.hpp).
      const std::size_t from_workers = handle_backend();
      flush_sends();
      mark_batch();
      const std::size_t from_clients = handle_frontend();
      flush_sends();
      // Handling a client's request may send to a worker after the backend's
      // receive, so only a pass with nothing received may end in a wait.
      idle = from_workers + from_clients == 0;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      idle = false;
    }
  }
  std::size_t unanswered = requests_.size();
  for (const auto& [name, s] : services_) unanswered += s->parked.size();
  log_->info("broker stopping: disconnecting {} workers, {} requests unanswered",
             workers_.size(), unanswered);
  monitor_.publish({stats_, services_, requests_.size(), journal_.get(), true}, clock::now());
  if (journal_) {
    journal_->flush();  // the replies already earned go out before we leave
    on_journal_commit();
  }
  for (auto& [identity, w] : workers_) send_to_worker(identity, encode_disconnect(w->from));
  flush_sends();
  log_->flush();
}

// ------------------------------------------------------------------ clients

std::size_t broker::handle_frontend() {
  zmq::multipart_t frames;  // reused: its deque keeps its map and block between messages
  int i = 0;
  for (; i < io_batch; ++i) {
    std::size_t seen = 0;
    zmq::message_t id;  // the routing id, apart: `frames` is never popped (limits.hpp)
    const receive_status status = receive_bounded(frontend_, frames, options_.limits, &seen, &id);
    if (status == receive_status::none) break;
    if (status == receive_status::ok) {
      on_client_message(id.to_string(), std::move(frames));
    } else {
      on_oversized_client_message(id.to_string(), frames, status, seen);
    }
  }
  return static_cast<std::size_t>(i);
}

// A client message over the frame cap (400) or the size cap (413); only its
// first frames were kept (after the routing id), enough to name the service.
void broker::on_oversized_client_message(const std::string& client, zmq::multipart_t& frames,
                                         receive_status status, std::size_t seen) {
  if (client.empty()) return;
  std::optional<dialect> from;
  if (frames.size() > 1 && frame_equals(frames[1], client_signature)) from = dialect::mdp;
  if (frames.size() > 1 && frame_equals(frames[1], client_ext_signature)) from = dialect::carico;
  std::string service_name;
  if (from && frames.size() > 2) service_name = frames[2].to_string();
  ++stats_.malformed;
  const bool too_many = status == receive_status::too_many_frames;
  const std::string reason =
      too_many ? "message has " + std::to_string(seen) + " frames; at most " +
                     std::to_string(options_.limits.max_frames)
               : "message is larger than " + std::to_string(options_.limits.max_message_bytes) +
                     " bytes";
  log_->warn("{} client message from {}: {} (service [{}])", too_many ? "malformed" : "oversized",
             hex_id(client), reason, sample(service_name.data(), service_name.size(), 24));
  if (from) {
    reply_error(client, *from, service_name, too_many ? code::bad_request : code::too_large,
                reason);
  }
}

void broker::on_client_message(std::string&& client, zmq::multipart_t&& frames) {
  client_envelope envelope;
  // The header stays encoded where raw_map reads it: accept_request reads the
  // few entries it needs in place, and decodes it only off the common path.
  decoded<client_request> message =
      decode_client_request(std::move(frames), &envelope, header_mode::keep_raw, &client_head_);
  if (message && message->head_raw) client_head_.rebase(message->head_frame.data());
  if (!message) {
    ++stats_.malformed;
    log_->warn("malformed client message from {}: {} ({})", hex_id(client), message.error,
               describe(frames));
    // Neither client signature: not a client of ours; nothing to answer.
    if (envelope.from) {
      reply_error(client, *envelope.from, envelope.service, code::bad_request, message.error);
    }
    return;
  }
  std::size_t payload_bytes = message->payload.size();
  for (const zmq::message_t& f : message->more) payload_bytes += f.size();
  if (payload_bytes > options_.max_payload_bytes) {
    ++stats_.malformed;
    log_->warn("request too large from {}: service={} payload {} bytes > {}", hex_id(client),
               message->service, payload_bytes, options_.max_payload_bytes);
    reply_error(client, message->from, message->service, code::too_large,
                "payload of " + std::to_string(payload_bytes) + " bytes is over the limit of " +
                    std::to_string(options_.max_payload_bytes),
                &decode_head(*message));
    return;
  }
  if (starts_with_mmi(message->service)) {
    if (message->from == dialect::mdp) {
      answer_stock_mmi(client, *message);
    } else {
      answer_mmi(client, *message);
    }
    return;
  }
  if (message->from == dialect::carico) {
    if (std::optional<std::uint64_t> of = get_of(client, *message)) {
      if (*of != 0) accept_get(std::move(client), std::move(*message), *of);
      return;
    }
  }
  accept_request(std::move(client), std::move(*message));
}

std::string broker::client_label(std::string_view client) const { return hex_id(client); }

// Memory a queued request holds: its frames as received, and its bookkeeping
// (the request record, its map node, its key; docs/benchmarks.md measures it).
std::size_t broker::held_bytes(const client_request& message) {
  constexpr std::size_t bookkeeping = 512;
  std::size_t bytes = message.payload.size() + message.head_frame.size() + bookkeeping;
  for (const zmq::message_t& f : message.more) bytes += f.size();
  return bytes;
}

// Answers 503 when the client already has its cap of requests in flight, the
// broker holds its byte budget of requests already, or the request names a new
// service when the broker knows max_services already.
// Only this client is refused; nothing is remembered or journaled.
bool broker::refuse_over_limits(const std::string& client, client_request& message,
                                std::size_t bytes) {
  std::string reason;
  if (auto why = quota_.refusal(client, bytes)) {
    reason = std::move(*why);
  } else if (services_.size() >= options_.max_services && !services_.count(message.service)) {
    reason = "too many services: " + std::to_string(services_.size()) + " known (limit " +
             std::to_string(options_.max_services) + ")";
  } else {
    return false;
  }
  ++stats_.refused;
  monitor_.on_refusal(message.service, reason);
  log_->warn("request refused: {} client={} service={}", reason, client_label(client),
             sample(message.service.data(), message.service.size(), 32));
  reply_error(client, message.from, message.service, code::queue_full, reason,
              &decode_head(message));
  return true;
}

void broker::accept_request(std::string&& client, client_request&& message) {
  // While message.head_raw, the header is read here in place, from what the
  // codec's raw_map read (client_head_). A key needs `client`, so a header
  // with one is decoded; so is one the journal will read. (The access log
  // reads the encoded header on its own thread.)
  // What is read in place, found in one pass: `id`, and whether the header
  // has a `client` (a key) or `request`/`attempt` (replaced per dispatch).
  const raw_map::entry* raw_id = nullptr;
  bool raw_client = false;
  bool raw_reserved = false;
  std::optional<std::uint64_t> timeout_ms;  // the header's, when it has one
  const bool was_raw = message.head_raw;
  std::string owner = owner_of(message);  // for the journal row; read before the frames move
  if (message.head_raw) {
    for (const raw_map::entry& e : client_head_) {
      if (e.key == "id") {
        raw_id = &e;
      } else if (e.key == "client") {
        raw_client = true;
      } else if (e.key == "request" || e.key == "attempt") {
        raw_reserved = true;
      } else if (e.key == "timeout_ms") {
        timeout_ms = raw_map::as_uint(e.value);
      }
    }
  }
  if (message.head_raw && (journal_ || raw_client)) decode_head(message);
  if (!was_raw) timeout_ms = message.head.get_uint("timeout_ms");
  std::optional<request_key_parts> key;
  if (!message.head_raw) key = request_key(message.head);
  if (journal_ && !journal_->writable() && !(key && keyed_.contains(key->text))) {
    // No outcome could be recorded, so nothing new is taken (the journal
    // logged the state once); a resend of a request in flight may still
    // wait for its outcome.
    ++stats_.refused;
    ++stats_.journal_refused;
    reply_error(client, message.from, message.service, code::queue_full, "journal unavailable",
                &decode_head(message));
    return;
  }
  if (key && answer_resend(client, *key, effective_timeout(timeout_ms))) return;
  if (shutting_down_) {
    ++stats_.refused;
    reply_error(client, message.from, message.service, code::queue_full, "shutting down",
                &decode_head(message));
    return;
  }
  const std::size_t bytes = held_bytes(message);
  if (refuse_over_limits(client, message, bytes)) return;
  service& s = require_service(message.service);
  if (waiting(s) + uncommitted_.size() >= options_.max_queue) {
    ++stats_.refused;
    monitor_.on_refusal(s.name, "queue full");
    log_->warn("request refused: queue of {} is full ({} waiting) client={}", s.name,
               waiting(s), client_label(client));
    if (journal_) {
      journal_event e;
      e.what = journal_event::kind::refused;
      e.row.number = next_request_++;
      e.row.state = request_state::refused;
      e.row.service = s.name;
      if (key) {
        e.row.client = key->client;
        e.row.client_id = key->client_id;
      }
      e.row.bytes = message.payload.size();
      e.row.received_ms = e.row.completed_ms = unix_ms();
      e.row.code = code::queue_full;
      journal_->post(std::move(e));
    }
    reply_error(client, message.from, s.name, code::queue_full,
                "queue full: " + std::to_string(waiting(s)) + " requests waiting for " + s.name,
                &decode_head(message));
    return;
  }
  ++stats_.received;
  const std::uint64_t number = next_request_++;
  quota_.add(client, bytes);
  request r;
  r.number = number;
  r.client = std::move(client);
  r.target = &s;
  r.quota_bytes = bytes;
  r.from = message.from;
  if (message.head_raw && !raw_reserved) {
    // As keep_header does, from the entries raw read in place (in the frame).
    // r.id is the id as the client encoded it (keep_header re-encodes it): the
    // same value, as packed_queue's encoded_id also reads it.
    if (raw_id != nullptr) r.id = std::string(raw_id->value);
    r.head = std::move(message.head_frame);
  } else {
    keep_header(r, decode_head(message), std::move(message.head_frame));
  }
  if (message.from == dialect::mdp) {
    // A stock body is any number of opaque frames: kept packed in one frame,
    // as the journal keeps it, and unpacked for each dispatch.
    std::vector<zmq::message_t> body;
    body.reserve(message.body_frames);
    if (message.body_frames > 0) body.push_back(std::move(message.payload));
    for (zmq::message_t& f : message.more) body.push_back(std::move(f));
    const std::string packed = encode_frames(body);
    r.payload = zmq::message_t(packed.data(), packed.size());
    r.framed = true;
  } else {
    r.payload = std::move(message.payload);
  }
  r.received_at = batch_now_;
  r.received_ms = batch_unix_ms_;
  r.timeout_ms = effective_timeout(timeout_ms);
  r.deadline = r.received_at + milliseconds(r.timeout_ms);
  if (key) {
    r.key = std::move(key->text);  // key's client and client_id are still used below
    keyed_[r.key] = number;
    if (journal_keys_) journal_keys_->add(r.key);
  }
  if (journal_) {
    journal_event e;
    e.what = journal_event::kind::received;
    e.row = record_of(r, message.head, key ? &*key : nullptr);
    e.row.owner = std::move(owner);
    // A stock request is kept with no header: that is how a reload tells it.
    e.head = r.from == dialect::mdp ? std::string()
             : r.head.size() > 0    ? r.head.to_string()
                                    : header().encode_string();
    e.payload.copy(r.payload);  // shares the buffer (reference counted)
    const std::uint64_t seq = journal_->post(std::move(e));
    // A keyed request is written ahead: no worker sees it before its row (with
    // the payload) is in the file, so a resend after a restart finds it and it
    // never runs under a second number. An unkeyed one cannot be resent, so it
    // goes to a worker at once when its number is reserved in the file (see
    // journal::reserved()): a restart never reuses that number, and its reply
    // still waits for the outcome's commit like every reply.
    if (key || number > journal_->reserved()) {
      uncommitted_.emplace_back(seq, number);
      note_deadline(r);
      requests_.emplace(number, std::move(r));
      return;
    }
  }
  note_deadline(r);
  queue_back(s, std::move(r));
  dispatch(s);
}

void broker::reply_error(const std::string& client, dialect to, std::string_view service,
                         std::uint64_t code, std::string_view reason, const header* request_head) {
  if (to == dialect::mdp) {
    ++stats_.mdp_dropped;
    log_->info("no reply to stock client={} service={}: {} {} (MDP/0.1 has no error reply)",
               client_label(client), sample(service.data(), service.size(), 32), code, reason);
    return;
  }
  header head;
  if (request_head != nullptr) {
    if (const msgpack::object* id = request_head->find("id")) head.set("id", *id);
  }
  head.set("code", code);
  head.set("status", "error");
  head.set("error", reason);
  send_to_client(client, service, head, {});
}

void broker::send_to_client(const std::string& client, std::string_view service,
                            const header& head, std::vector<zmq::message_t>&& body) {
  send_to_client(client, dialect::carico, service, head.encode(), std::move(body));
}

// [client, "", MDPCX1, service, header, body...] to a carico client,
// [client, "", MDPC01, service, body...] to a stock one (the codec's
// encode_client_reply / encode_mdp_reply frames after the routing id), sent
// frame by frame: no multipart to build.
void broker::send_to_client(const std::string& client, dialect to, std::string_view service,
                            zmq::message_t&& head_frame, std::vector<zmq::message_t>&& body) {
  constexpr auto more = zmq::send_flags::sndmore;
  // The routing frame decides (on_reply_refused): once it is queued, ZeroMQ
  // takes the message whole.
  to_clients_.send(zmq::const_buffer(client.data(), client.size()),
                   more | zmq::send_flags::dontwait);
  to_clients_.send(zmq::message_t(), more);
  const std::string_view signature = client_signature_of(to);
  to_clients_.send(zmq::const_buffer(signature.data(), signature.size()), more);
  const bool last = to == dialect::mdp && body.empty();
  to_clients_.send(zmq::const_buffer(service.data(), service.size()),
                   last ? zmq::send_flags::none : more);
  if (to == dialect::carico) {
    to_clients_.send(head_frame, body.empty() ? zmq::send_flags::none : more);
  }
  for (std::size_t i = 0; i < body.size(); ++i) {
    to_clients_.send(body[i], i + 1 < body.size() ? more : zmq::send_flags::none);
  }
}

// A reply the frontend would not take: the client has client_send_hwm replies
// unread (EAGAIN), or is gone (EHOSTUNREACH, the quiet case).
void broker::on_reply_refused(std::string_view client, int error) {
  if (error != EAGAIN) {
    log_->debug("reply dropped: client={} is gone", client_label(client));
    return;
  }
  if (++stats_.unread_dropped % 1000 == 1) {
    log_->warn("reply dropped: client={} has {} replies unread (--client-send-hwm); "
               "{} dropped so far",
               client_label(client), options_.client_send_hwm, stats_.unread_dropped);
  }
}

// Reads the clock for the batch about to be handled: its requests and worker
// messages take their times from here, at most the batch's handling early,
// instead of reading the clock five times per request.
void broker::mark_batch() {
  batch_now_ = clock::now();
  batch_unix_ms_ = unix_ms();
}

// Sends what the last steps queued.
void broker::flush_sends() {
  to_workers_.flush();
  to_clients_.flush();
  access_.flush();
}

// RFC 8 (MMI) for a stock client: mmi.service answers one frame, 200 or 404;
// any other mmi. name one frame, 501.
void broker::answer_stock_mmi(const std::string& client, client_request& message) {
  std::vector<zmq::message_t> body;
  if (message.service == "mmi.service") {
    auto it = services_.find(message.payload.to_string());
    const bool served = it != services_.end() && !it->second->ring.empty();
    body.emplace_back(served ? std::string_view("200") : std::string_view("404"));
  } else {
    body.emplace_back(std::string_view("501"));
  }
  send_to_client(client, dialect::mdp, message.service, zmq::message_t(), std::move(body));
}

void broker::answer_mmi(const std::string& client, client_request& message) {
  decode_head(message);
  header head;
  if (const msgpack::object* id = message.head.find("id")) head.set("id", *id);
  head.set("code", code::ok);
  head.set("status", "ok");
  std::vector<zmq::message_t> body;
  const std::string& name = message.service;
  if (name == "mmi.service") {
    auto it = services_.find(message.payload.to_string());
    const bool served = it != services_.end() && !it->second->ring.empty();
    body.emplace_back(served ? std::string_view("200") : std::string_view("404"));
  } else if (name == "mmi.workers") {
    head.set_json("result", nlohmann::json{{"workers", workers_json()}});
  } else if (name == "mmi.stats") {
    head.set_json("result", stats_json());
  } else if (name == "mmi.request") {
    std::optional<nlohmann::json> found;
    const std::optional<std::string_view> of_client = message.head.get_string("of_client");
    const msgpack::object* of_id = message.head.find("of_id");
    if (auto number = message.head.get_uint("of_request")) {
      found = find_request_json(*number);
    } else if (of_client && !of_client->empty() && of_id != nullptr) {
      request_key_parts key;
      key.client = std::string(*of_client);
      key.client_id = to_json_text(*of_id);
      key.text = join_key(key.client, key.client_id);
      found = find_request_json(key);
    } else {
      reply_error(client, dialect::carico, name, code::bad_request,
                  "mmi.request needs of_request, or of_client and of_id", &message.head);
      return;
    }
    if (!found) {
      reply_error(client, dialect::carico, name, code::not_found, "no such request", &message.head);
      return;
    }
    head.set_json("result", *found);
  } else if (name == "mmi.history") {
    const std::uint64_t last = std::clamp<std::uint64_t>(message.head.get_uint("last").value_or(20), 1, 1000);
    head.set_json("result", nlohmann::json{{"requests", history_json(last)}});
  } else if (name == "mmi.stored") {
    const std::uint64_t last = std::clamp<std::uint64_t>(message.head.get_uint("last").value_or(20), 1, 1000);
    if (!journal_) {
      reply_error(client, dialect::carico, name, code::not_found,
                  "no journal: this broker runs with --journal none", &message.head);
      return;
    }
    head.set_json("result", nlohmann::json{{"documents", stored_json(last, owner_of(message))}});
  } else {
    reply_error(client, dialect::carico, name, code::not_implemented,
                "unknown mmi service " + name, &message.head);
    return;
  }
  send_to_client(client, name, head, std::move(body));
}

nlohmann::json broker::workers_json() const {
  const time_point now = clock::now();
  nlohmann::json list = nlohmann::json::array();
  std::vector<const known_worker*> sorted;
  for (const auto& [id, w] : workers_) sorted.push_back(w.get());
  std::sort(sorted.begin(), sorted.end(), [](const known_worker* a, const known_worker* b) {
    return a->joined_at < b->joined_at;
  });
  for (const known_worker* w : sorted) {
    list.push_back({{"name", w->name},
                    {"service", w->served->name},
                    {"state", state_name(w->load.state)},
                    {"reason", w->load.reason},
                    {"dialect", dialect_name(w->from)},
                    {"heartbeat_ms", w->heartbeat_ms},
                    {"in_flight", w->in_flight.size()},
                    {"capacity", w->info.capacity},
                    {"answered", w->answered},
                    {"pid", w->info.pid},
                    {"host", w->info.host},
                    {"rss_bytes", w->load.rss_bytes},
                    {"mem_percent", w->load.mem_percent},
                    {"cpu_percent", w->load.cpu_percent},
                    {"last_seen_ms", ms_between(w->last_seen, now)},
                    {"uptime_ms", ms_between(w->joined_at, now)}});
  }
  return list;
}

nlohmann::json broker::stats_json() const {
  std::size_t queued = 0;
  std::size_t queued_in_full = 0;  // the waiting requests that are in requests_
  // At most stats_services of them by name, those with workers or the
  // longest queues first: the reply stays small however many names clients
  // send (a header map holds at most 4096 entries).
  constexpr std::size_t stats_services = 256;
  std::vector<const service*> shown;
  for (const auto& [name, s] : services_) {
    queued += waiting(*s);
    queued_in_full += s->queue.size();
    shown.push_back(s.get());
  }
  const auto weight = [this](const service* s) {
    return std::make_pair(s->ring.size(), waiting(*s));
  };
  if (shown.size() > stats_services) {
    std::partial_sort(shown.begin(), shown.begin() + stats_services, shown.end(),
                      [&](const service* a, const service* b) { return weight(a) > weight(b); });
    shown.resize(stats_services);
  }
  nlohmann::json services = nlohmann::json::object();
  for (const service* s : shown) {
    services[s->name] = {{"workers", s->ring.size()}, {"queued", waiting(*s)}};
  }
  nlohmann::json out = {{"received", stats_.received},
                        {"done", stats_.done},
                        {"failed", stats_.failed},
                        {"expired", stats_.expired},
                        {"redispatched", stats_.redispatched},
                        {"refused", stats_.refused},
                        {"malformed", stats_.malformed},
                        {"late_replies", stats_.late_replies},
                        {"unread_dropped", stats_.unread_dropped},
                        {"resends", stats_.resends},
                        {"mdp_dropped", stats_.mdp_dropped},
                        {"queued", queued},
                        {"in_flight", requests_.size() - queued_in_full},
                        {"workers", workers_.size()},
                        {"workers_joined", stats_.workers_joined},
                        {"workers_lost", stats_.workers_lost},
                        {"services", services},
                        {"services_known", services_.size()},
                        {"uptime_ms", ms_between(started_at_, clock::now())}};
  if (journal_) out["journal"] = journal_json(*journal_, options_, stats_.journal_refused);
  return out;
}

nlohmann::json broker::request_json(const request& r) const {
  header head;
  if (r.head.size() > 0) {
    if (header_result decoded = header::decode(r.head)) head = std::move(*decoded.value);
  }
  nlohmann::json out = record_of(r, head).to_json();
  out["age_ms"] = ms_between(r.received_at, clock::now());
  // An unanswered request's title, from its header (the journal keeps no title).
  if (auto title = head.get_string("title")) out["title"] = std::string(*title);
  return out;
}

// With key (the request's, already worked out), client and id are taken from
// it rather than rendered from the header a second time.
journal_record broker::record_of(const request& r, const header& head,
                                 const request_key_parts* key) const {
  journal_record out;
  out.number = r.number;
  out.service = r.target->name;
  out.state = r.holder ? request_state::dispatched : request_state::queued;
  out.worker = r.holder ? r.holder->name : "";
  out.attempts = r.attempts;
  out.bytes = r.payload.size();
  out.received_ms = r.received_ms;
  out.dispatched_ms = r.dispatched_ms;
  if (key != nullptr) {
    out.client = key->client;
    out.client_id = key->client_id;
  } else {
    out.client = std::string(head.get_string("client").value_or(""));
    if (const msgpack::object* id = head.find("id")) {
      out.client_id = to_json_text(*id);
    }
  }
  return out;
}

// Keeps the client's header as r.head, encoded, for forwarding: the frame as
// received when it has no `request` or `attempt` (the broker adds its own at
// each dispatch), re-encoded without them otherwise. Its `id` goes to r.id.
void broker::keep_header(request& r, header& head, zmq::message_t&& frame) {
  if (const msgpack::object* id = head.find("id")) r.id = header::encode_value(*id);
  if (head.contains("request") || head.contains("attempt")) {
    head.erase("request");
    head.erase("attempt");
    r.head = head.encode();
  } else {
    r.head = std::move(frame);
  }
}

// ------------------------------------------------------------------ workers

std::size_t broker::handle_backend() {
  zmq::multipart_t frames;  // reused: its deque keeps its map and block between messages
  int i = 0;
  for (; i < io_batch; ++i) {
    std::size_t seen = 0;
    zmq::message_t id;  // the routing id, apart: `frames` is never popped (limits.hpp)
    const receive_status status = receive_bounded(backend_, frames, options_.limits, &seen, &id);
    if (status == receive_status::none) break;
    const std::string identity = id.to_string();
    if (status == receive_status::ok) {
      on_worker_message(identity, std::move(frames));
      continue;
    }
    // Over a cap: an invalid message, so DISCONNECT and forget the worker.
    if (identity.empty()) continue;
    const std::string reason =
        status == receive_status::too_many_frames
            ? "message has " + std::to_string(seen) + " frames; at most " +
                  std::to_string(options_.limits.max_frames)
            : "message is larger than " + std::to_string(options_.limits.max_message_bytes) +
                  " bytes";
    auto found = workers_.find(identity);
    log_->warn("invalid message from worker {}: {}; sending DISCONNECT",
               found != workers_.end() ? found->second->name : hex_id(identity), reason);
    if (found != workers_.end()) {
      delete_worker(*found->second, "protocol error: " + reason, true);
    } else {
      std::optional<dialect> from = worker_dialect_of(frames);
      send_to_worker(identity, encode_disconnect(from.value_or(dialect::mdp)));
    }
  }
  return static_cast<std::size_t>(i);
}

// The routing id first, then frames as they are: no frame pushed at the front.
void broker::send_to_worker(const std::string& identity, zmq::multipart_t&& frames) {
  constexpr auto more = zmq::send_flags::sndmore;
  to_workers_.send(zmq::const_buffer(identity.data(), identity.size()),
                   frames.empty() ? zmq::send_flags::none : more);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    to_workers_.send(frames[i], i + 1 < frames.size() ? more : zmq::send_flags::none);
  }
}

void broker::on_worker_message(const std::string& identity, zmq::multipart_t&& frames) {
  auto found = workers_.find(identity);
  known_worker* w = found == workers_.end() ? nullptr : found->second.get();
  std::optional<dialect> seen;
  decoded<worker_message> message =
      decode_worker_message(std::move(frames), header_mode::keep_raw, &worker_head_, &seen);
  if (message && message->head_frame.size() > 0) worker_head_.rebase(message->head_frame.data());
  if (!message) {
    log_->warn("invalid message from worker {}: {} ({}); sending DISCONNECT",
               w ? w->name : hex_id(identity), message.error, describe(frames));
    if (w) {
      delete_worker(*w, "protocol error: " + message.error, true);
    } else {
      send_to_worker(identity, encode_disconnect(seen.value_or(dialect::mdp)));
    }
    return;
  }
  const command cmd = message->cmd;
  if (w == nullptr) {
    if (cmd == command::ready) {
      register_worker(identity, *message);
    } else {
      // The contract: anything but READY from an unknown worker is invalid,
      // DISCONNECT included, and is answered with DISCONNECT. A REPLY is one
      // from a worker given up on: its request went to another or failed.
      if (cmd == command::reply) ++stats_.late_replies;
      log_->warn("{} from unknown worker {}; sending DISCONNECT", command_name(cmd), hex_id(identity));
      send_to_worker(identity, encode_disconnect(message->from));
    }
    return;
  }
  if (message->from != w->from) {
    delete_worker(*w, "protocol error: " + std::string(worker_signature_of(message->from)) +
                          " from a worker that joined with " +
                          std::string(worker_signature_of(w->from)), true);
    return;
  }
  w->last_seen = batch_now_;
  w->expires_at = w->last_seen + milliseconds(w->heartbeat_ms * options_.liveness);
  switch (cmd) {
    case command::heartbeat: on_heartbeat(*w, *message); break;
    case command::reply: on_reply(*w, *message); break;
    case command::disconnect: delete_worker(*w, "disconnected", false); break;
    case command::ready:
      delete_worker(*w, "protocol error: READY from a worker already registered", true);
      break;
    case command::request:
      delete_worker(*w, "protocol error: REQUEST sent by a worker", true);
      break;
  }
}

void broker::register_worker(const std::string& identity, worker_message& message) {
  const dialect from = message.from;
  if (starts_with_mmi(message.service)) {  // RFC 8: mmi. services are the broker's own
    log_->warn("READY from {} for service {} refused: mmi. names are the broker's; sending "
               "DISCONNECT", hex_id(identity), sample(message.service.data(), message.service.size(), 32));
    send_to_worker(identity, encode_disconnect(from));
    return;
  }
  auto w = std::make_unique<known_worker>();
  w->identity = identity;
  w->from = from;
  if (message.info) w->info = std::move(*message.info);
  w->name = w->info.name.empty() ? "worker-" + hex_id(identity) : w->info.name;
  // A stock worker is held to the stock interval; a carico worker to the one it
  // announced, else the broker's own.
  w->heartbeat_ms = from == dialect::mdp ? options_.stock_heartbeat_ms
                    : w->info.heartbeat_ms != 0 ? static_cast<long>(w->info.heartbeat_ms)
                                                : options_.heartbeat_ms;
  w->joined_at = w->last_seen = clock::now();
  w->expires_at = w->last_seen + milliseconds(w->heartbeat_ms * options_.liveness);
  w->next_heartbeat = w->joined_at + milliseconds(w->heartbeat_ms);
  next_tick_ = std::min(next_tick_, w->next_heartbeat);
  service& s = require_service(message.service);
  w->served = &s;
  known_worker* raw = w.get();
  workers_.emplace(identity, std::move(w));
  s.ring.add(raw);
  ++stats_.workers_joined;
  log_->info("worker {} joined service={} dialect={} capacity={} heartbeat={}ms pid={} host={} "
             "({} workers in ring)",
             raw->name, s.name, dialect_name(raw->from), raw->info.capacity, raw->heartbeat_ms,
             raw->info.pid, raw->info.host, s.ring.size());
  if (!sticky_.empty()) release_sticky(raw);
  dispatch(s);
}

void broker::on_heartbeat(known_worker& w, worker_message& message) {
  if (!message.load) return;
  const worker_state before = w.load.state;
  w.load = std::move(*message.load);
  if (w.load.state != before) {
    const std::string why = w.load.reason.empty() ? std::string() : ": " + w.load.reason;
    switch (w.load.state) {
      case worker_state::ready:
        log_->info("worker {} recovered: ready again (mem {:.1f}%, {} in flight)", w.name,
                   w.load.mem_percent, w.in_flight.size());
        break;
      case worker_state::overload:
        log_->warn("worker {} overloaded{}: skipped until ready (mem {:.1f}%, {} in flight)",
                   w.name, sample(why.data(), why.size(), 120), w.load.mem_percent,
                   w.in_flight.size());
        break;
      case worker_state::drain:
        log_->info("worker {} draining: no new work, {} in flight", w.name, w.in_flight.size());
        break;
    }
  }
  if (w.eligible()) dispatch(*w.served);
}

void broker::on_reply(known_worker& w, worker_message& message) {
  // The address is the broker's token for the request: its number, in decimal.
  std::optional<std::uint64_t> number = parse_token(message.address.to_string_view());
  auto it = number ? requests_.find(*number) : requests_.end();
  if (it == requests_.end() || it->second.holder != &w) {
    // RFC 7: a REPLY for a request the worker does not hold is invalid.
    ++stats_.late_replies;
    delete_worker(w, "protocol error: REPLY for request " +
                         sample(message.address.data(), message.address.size(), 24) +
                         ", which it does not hold", true);
    return;
  }
  request& r = it->second;
  // A worker mostly answers in the order it was given work: try the front
  // before a search through up to `capacity` numbers.
  if (!w.in_flight.empty() && w.in_flight.front() == r.number) {
    w.in_flight.erase(w.in_flight.begin());
  } else {
    std::erase(w.in_flight, r.number);
  }
  // The header left encoded (the common case) is read where it lies, from
  // what the codec's raw_map read (worker_head_); one raw_map leaves to
  // header::decode came decoded. A stock worker's reply has none: it is 200.
  const bool raw = message.head_frame.size() > 0;
  const raw_map& worker_head = worker_head_;
  std::uint64_t result_code = code::ok;
  if (raw) {
    if (const raw_map::entry* c = worker_head.find("code")) {
      result_code = reported_code(raw_map::as_uint(c->value));
    }
  } else if (message.head && message.head->contains("code")) {
    result_code = reported_code(message.head->get_uint("code"));
  }
  service& s = *w.served;
  if (result_code == code::queue_full && w.from == dialect::carico) {
    // 503 from a worker: "not executed here"; another worker gets it.
    requeue(r.number, w, "answered 503 (not executed here)");
    dispatch(s);
    return;
  }
  zmq::message_t head_frame;
  std::vector<zmq::message_t> body = std::move(message.body);
  if (r.from == dialect::mdp) {
    // A stock client gets the body alone; the worker's header (a carico
    // worker's) still goes to the journal for its summary.
    if (w.from == dialect::carico) {
      if (raw) {
        head_frame = std::move(message.head_frame);
      } else if (message.head) {
        head_frame = message.head->encode();
      }
      if (body.empty()) body.push_back(result_as_json(head_frame));
    }
  } else if (w.from == dialect::mdp) {
    head_frame = stock_reply_head(reply_head_, r, w.name);
  } else if (raw) {
    head_frame = client_reply_head(reply_head_, worker_head, r, w.name, result_code);
  } else {
    header head = message.head ? std::move(*message.head) : header();
    head.erase("attempt");
    head.erase("id");
    head.set_encoded("id", r.id);
    head.set("request", r.number);
    head.set("code", result_code);
    head.set("status", result_code == code::ok ? "ok" : "error");
    if (result_code != code::ok && !head.contains("error")) head.set("error", "worker failed");
    head.set("worker", w.name);
    head.set("attempts", r.attempts);
    head_frame = head.encode();
  }
  finish_request(r, std::move(head_frame), result_code, std::move(body),
                 result_code == code::ok ? request_state::done : request_state::failed, w.name);

  ++w.answered;
  if (result_code == code::ok) {
    ++stats_.done;
  } else {
    ++stats_.failed;
  }
  requests_.erase(it);
  dispatch(s);
}

void broker::delete_worker(known_worker& w, std::string_view reason, bool send_disconnect) {
  if (send_disconnect) send_to_worker(w.identity, encode_disconnect(w.from));
  ++stats_.workers_lost;
  service& s = *w.served;
  s.ring.remove(&w);
  const std::string identity = w.identity;
  if (w.in_flight.empty()) {
    log_->info("worker {} left service={}: {} ({} workers in ring)", w.name, s.name, reason,
               s.ring.size());
  } else {
    log_->warn("worker {} lost service={}: {}; re-dispatching {} requests ({} workers in ring)",
               w.name, s.name, reason, w.in_flight.size(), s.ring.size());
  }
  // Oldest first at the front of the queue: requeue newest first.
  for (auto n = w.in_flight.rbegin(); n != w.in_flight.rend(); ++n) {
    requeue(*n, w, "lost it");
  }
  workers_.erase(identity);  // w is gone from here on
  dispatch(s);
}

void broker::requeue(std::uint64_t number, const known_worker& by, std::string_view why) {
  auto it = requests_.find(number);
  if (it == requests_.end()) return;
  request& r = it->second;
  r.holder = nullptr;
  if (r.fetch) {  // only its holder has the document
    fail_get(r, by, why);
    requests_.erase(it);
    return;
  }
  if (r.attempts >= options_.max_attempts) {
    ++stats_.expired;
    monitor_.on_expiry(number, r.target->name, "out of attempts, the last worker " + by.name);
    log_->warn("request {} failed: {} workers tried it (last {}, which {}), giving up", number,
               r.attempts, by.name, why);
    header head;
    head.set_encoded("id", r.id);
    head.set("request", r.number);
    head.set("code", code::expired);
    head.set("status", "error");
    head.set("error", "out of attempts: " + std::to_string(r.attempts) +
                          " workers were given it and none answered it (last " + by.name + ", which " +
                          std::string(why) + ")");
    head.set("attempts", r.attempts);
    finish_request(r, head, {}, request_state::expired, by.name);
    requests_.erase(it);
    return;
  }
  ++stats_.redispatched;
  monitor_.on_redispatch(number, by.name, r.target->name);
  log_->warn("request {} re-dispatched: worker {} {} on attempt {}", number, by.name, why,
             r.attempts);
  // It keeps its first deadline; past it, it waits no more.
  if (r.deadline <= batch_now_) {
    expire(r);
    requests_.erase(it);
    return;
  }
  note_deadline(r);
  r.target->queue.push_front(number);
}

void broker::expire(request& r) {
  ++stats_.expired;
  monitor_.on_expiry(r.number, r.target->name, "its deadline passed while it waited");
  log_->warn("request {} expired: no {} worker took it within {} ms", r.number, r.target->name,
             r.timeout_ms);
  // Refused before any worker got it: not remembered, a resend is a new request.
  if (!r.key.empty() && r.attempts == 0) {
    keyed_.erase(r.key);
    r.key.clear();
  }
  header head;
  head.set_encoded("id", r.id);
  head.set("request", r.number);
  head.set("code", code::expired);
  head.set("status", "error");
  head.set("error", "expired: no " + r.target->name + " worker took it within " +
                        std::to_string(r.timeout_ms) + " ms");
  head.set("attempts", r.attempts);
  finish_request(r, head, {}, request_state::expired, r.holder ? r.holder->name : "");
}

std::uint64_t broker::effective_timeout(std::optional<std::uint64_t> asked) const {
  constexpr std::uint64_t longest = std::uint64_t{30} * 24 * 3600 * 1000;
  if (!asked || *asked == 0) return static_cast<std::uint64_t>(options_.queue_timeout_ms);
  return std::min(*asked, longest);
}

void broker::expire_waiting(time_point now) {
  if (now < next_expiry_) return;
  time_point next = time_point::max();
  auto past = [&](const request& r) {
    if (r.deadline <= now) return true;
    next = std::min(next, r.deadline);
    return false;
  };
  for (auto& [name, s] : services_) {
    // The requests kept in full: any of them may be past due (deadlines come
    // from each request's timeout_ms, so they need not grow along the queue).
    std::size_t kept = 0;
    for (std::uint64_t number : s->queue) {
      auto it = requests_.find(number);
      if (it == requests_.end()) continue;  // answered meanwhile
      if (past(it->second)) {
        expire(it->second);
        requests_.erase(it);
      } else {
        s->queue[kept++] = number;
      }
    }
    s->queue.resize(kept);
    // The parked ones in order, while the oldest is past due; the rest are
    // checked when they reach the front (dispatch never sends one past due).
    while (!s->parked.empty()) {
      const std::optional<time_point> due = s->parked.front_deadline();
      if (!due) break;
      if (*due > now) {
        next = std::min(next, *due);
        break;
      }
      request& r = unpark(*s);
      const std::uint64_t number = r.number;
      expire(r);
      requests_.erase(number);
    }
  }
  // Reloaded requests kept for their old worker, and keyed ones waiting for
  // their row's commit, wait too.
  for (auto& [worker, numbers] : sticky_) {
    for (std::uint64_t number : numbers) {
      auto it = requests_.find(number);
      if (it == requests_.end() || it->second.holder != nullptr) continue;
      if (past(it->second)) {
        expire(it->second);
        requests_.erase(it);
      }
    }
  }
  for (const auto& [seq, number] : uncommitted_) {
    auto it = requests_.find(number);
    if (it != requests_.end()) next = std::min(next, it->second.deadline);
  }
  next_expiry_ = next;
}

void broker::purge_expired(time_point now) {
  std::vector<known_worker*> dead;
  for (auto& [id, w] : workers_) {
    if (w->expires_at <= now) dead.push_back(w.get());
  }
  // Unlink them all first, so one dead worker's requests never go to another.
  for (known_worker* w : dead) w->served->ring.remove(w);
  for (known_worker* w : dead) {
    delete_worker(*w, "silent for " + std::to_string(ms_between(w->last_seen, now)) + " ms (dead)",
                  true);
  }
}

void broker::on_tick() {
  const time_point now = clock::now();
  // Each worker is heartbeated at its own interval (stock ones at the stock one).
  for (auto& [identity, w] : workers_) {
    if (now < w->next_heartbeat) continue;
    send_to_worker(identity, encode_heartbeat(w->from));
    w->next_heartbeat = now + milliseconds(w->heartbeat_ms);
  }
  purge_expired(now);
  expire_waiting(now);
  forget_idle_services();
  if (!sticky_.empty() && now >= sticky_until_) release_sticky(nullptr);
  trim_after_burst();
  if (now >= monitor_.next_publish()) {
    monitor_.publish({stats_, services_, requests_.size(), journal_.get(), false}, now);
  }
  // An idle broker still looks around once per heartbeat interval.
  next_tick_ = std::min({now + milliseconds(options_.heartbeat_ms), next_expiry_,
                         monitor_.next_publish()});
  for (auto& [id, w] : workers_) {
    next_tick_ = std::min({next_tick_, w->expires_at, w->next_heartbeat});
  }
  if (!sticky_.empty()) next_tick_ = std::min(next_tick_, sticky_until_);
}

// A service is kept while a worker serves it or a request names it; the
// names clients send cost nothing once their requests are answered or expired
// (so max_services counts what is in use, and a worker can always join).
void broker::forget_idle_services() {
  std::unordered_set<service*> idle;
  for (auto& [name, s] : services_) {
    if (s->ring.empty() && s->queue.empty() && s->parked.empty()) idle.insert(s.get());
  }
  if (idle.empty()) return;
  // Requests waiting for their journal commit or for their old worker, or
  // held, point at their service without being in its queue.
  for (const auto& [number, r] : requests_) {
    idle.erase(r.target);
    if (idle.empty()) return;
  }
  for (service* s : idle) services_.erase(s->name);
}

// A burst that parks many requests leaves ZeroMQ's I/O thread with receive
// buffers it has freed but its malloc arena keeps (tens of MiB for 10^6
// requests): give those pages back once parking grew by a lot. Not done in a
// steady flow (nothing parks), where the pages would only be faulted back in.
void broker::trim_after_burst() {
  std::size_t parked = 0;
  for (const auto& [name, s] : services_) parked += s->parked.size();
  constexpr std::size_t burst = 65536;
  if (parked < parked_at_trim_) parked_at_trim_ = parked;
  if (parked < parked_at_trim_ + burst) return;
  parked_at_trim_ = parked;
  request_nodes_.release();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

// ------------------------------------------------------------------ routing

service& broker::require_service(const std::string& name) {
  auto it = services_.find(name);
  if (it != services_.end()) return *it->second;
  auto s = std::make_unique<service>();
  s->name = name;
  service& ref = *s;
  services_.emplace(name, std::move(s));
  return ref;
}

// A service's waiting requests: the full ones first (re-dispatched requests go
// to their front), then the parked ones. Once a service has parked requests,
// every newcomer is parked behind them, so arrival order is kept.
bool broker::should_park(const service& s) const {
  return !s.parked.empty() || s.queue.size() >= options_.park_after;
}

std::size_t broker::waiting(const service& s) const { return s.queue.size() + s.parked.size(); }

// Puts r, not yet in requests_, at the back of s's queue.
void broker::queue_back(service& s, request&& r) {
  if (should_park(s)) {
    s.parked.push(std::move(r));
    return;
  }
  const std::uint64_t number = r.number;
  requests_.emplace(number, std::move(r));
  s.queue.push_back(number);
}

// Takes s's oldest parked request back into requests_, with the clients that
// sent it again while it was parked as its waiters.
request& broker::unpark(service& s) {
  request r = s.parked.pop();
  r.target = &s;
  if (!parked_waiters_.empty()) {
    if (auto it = parked_waiters_.find(r.number); it != parked_waiters_.end()) {
      for (std::string& c : it->second) {
        if (r.client.empty()) {
          r.client = std::move(c);
        } else if (c != r.client && std::find(r.waiters.begin(), r.waiters.end(), c) == r.waiters.end()) {
          r.waiters.push_back(std::move(c));
        }
      }
      parked_waiters_.erase(it);
    }
  }
  const std::uint64_t number = r.number;
  return requests_.emplace(number, std::move(r)).first->second;
}

void broker::dispatch(service& s) {
  if (shutting_down_) return;  // what waits stays in the journal for the next start
  while (!s.queue.empty() || !s.parked.empty()) {
    known_worker* w = s.ring.next_eligible();
    if (w == nullptr) return;
    request* r = nullptr;
    if (s.queue.empty()) {
      r = &unpark(s);
    } else {
      auto it = requests_.find(s.queue.front());
      s.queue.pop_front();
      if (it == requests_.end()) continue;  // answered while it waited
      r = &it->second;
    }
    if (r->deadline <= batch_now_) {  // never dispatched past its deadline
      const std::uint64_t number = r->number;
      expire(*r);
      requests_.erase(number);
      continue;
    }
    send_request(*w, *r);
  }
}

void broker::send_request(known_worker& w, request& r) {
  ++r.attempts;
  r.holder = &w;
  r.dispatched_at = batch_now_;
  r.dispatched_ms = batch_unix_ms_;
  w.in_flight.push_back(r.number);
  // The address is the broker's token for the request, its number: the
  // worker echoes it, and the REPLY is matched by it (whatever the dialects).
  char token[24];
  const auto [end, ec] = std::to_chars(token, token + sizeof token, r.number);
  const std::string_view address(token, static_cast<std::size_t>(end - token));
  // A carico worker's header: the client's (none from a stock client) with
  // the broker's `request` and `attempt`. A stock worker gets the body alone.
  zmq::message_t head;
  if (w.from == dialect::carico) {
    head = append_uints(r.head, {{"request", r.number}, {"attempt", r.attempts}});
  }
  if (r.framed) {
    std::vector<zmq::message_t> body;
    for (const std::string& f : decode_frames(r.payload.to_string_view())) {
      body.emplace_back(f.data(), f.size());
    }
    send_addressed(to_workers_, w.identity, w.from, command::request, address, &head, body.data(),
                   body.size());
  } else {
    zmq::message_t payload;
    payload.copy(r.payload);  // shares the buffer; kept for a re-dispatch
    send_addressed(to_workers_, w.identity, w.from, command::request, address, &head, &payload, 1);
  }
  if (journal_ && !r.fetch) {
    journal_event e;
    e.what = journal_event::kind::dispatched;
    e.row.number = r.number;
    e.row.worker = w.name;
    e.row.attempts = r.attempts;
    e.row.dispatched_ms = r.dispatched_ms;
    journal_->post(std::move(e));
  }
}


// ------------------------------------------------------------------ journal and exactly once

void broker::open_journal() {
  // main.cpp opens a PostgreSQL journal itself before the broker binds (a
  // standby binds nothing); anything else is opened here.
  if (options_.opened_journal) {
    journal_ = std::exchange(options_.opened_journal, nullptr);
  } else {
    journal_ = carico::open_journal(journal_options_for(options_), log_);
  }
  journal_->set_on_commit([this] { journal_commits_.wake(); });
  journal_keys_ = std::make_unique<key_filter>();
  journal_->for_each_key([this](std::string_view client, std::string_view client_id) {
    journal_keys_->add(join_key(client, client_id));
  });
  next_request_ = journal_->first_number();
  reload_unfinished();
  log_->info("journal {}: next request number {}, {} requests reloaded", journal_->path(),
             next_request_, requests_.size());
}

void broker::reload_unfinished() {
  const time_point now = clock::now();
  const std::int64_t now_ms = unix_ms();
  for (journal_unfinished& u : journal_->take_unfinished()) {
    // A stock client's request was kept with no header (accept_request).
    const bool stock = u.head.empty();
    header_result head = stock ? header_result{header(), {}}
                               : header::decode(u.head.data(), u.head.size());
    if (!head) {
      log_->error("journal: request {} has an unreadable header ({}); marked failed",
                  u.record.number, head.error);
      journal_event e;
      e.what = journal_event::kind::finished;
      e.row = u.record;
      e.row.state = request_state::failed;
      e.row.code = code::worker_failed;
      e.row.completed_ms = now_ms;
      journal_->post(std::move(e));
      continue;
    }
    service& s = require_service(u.record.service);
    request r;
    r.number = u.record.number;
    r.target = &s;
    if (stock) {
      r.from = dialect::mdp;
      r.framed = true;
    } else {
      keep_header(r, *head.value, zmq::message_t(u.head.data(), u.head.size()));
    }
    r.payload = zmq::message_t(u.payload.data(), u.payload.size());
    r.attempts = u.record.attempts;
    r.received_ms = u.record.received_ms;
    r.received_at = steady_time_of(u.record.received_ms, now, now_ms);
    r.timeout_ms = effective_timeout(head.value->get_uint("timeout_ms"));
    r.deadline = r.received_at + milliseconds(r.timeout_ms);
    note_deadline(r);
    if (auto key = request_key(*head.value)) {
      r.key = key->text;
      keyed_[r.key] = r.number;
    }
    log_->info("request {} reloaded from the journal service={} state={} attempts={}", r.number,
               s.name, request_state_name(u.record.state), r.attempts);
    // Whoever held it is gone with the old broker's sockets: queue it again,
    // first for the same worker if it had one.
    if (u.record.state == request_state::dispatched && !u.record.worker.empty()) {
      sticky_[u.record.worker].push_back(r.number);
      sticky_until_ = now + 2 * expiry_;
      next_tick_ = std::min(next_tick_, sticky_until_);
      requests_.emplace(r.number, std::move(r));
    } else {
      queue_back(s, std::move(r));
    }
  }
}

// Gives the reloaded requests kept for `returning` to it (those it cannot take
// now go to the front of their queue); with nullptr, the wait is over and all
// of them go to the front of their queues.
void broker::release_sticky(known_worker* returning) {
  std::vector<std::vector<std::uint64_t>> lists;
  if (returning == nullptr) {
    for (auto& [name, numbers] : sticky_) lists.push_back(std::move(numbers));
    sticky_.clear();
    log_->info("reloaded requests no longer kept for their old workers");
  } else {
    auto it = sticky_.find(returning->name);
    if (it == sticky_.end()) return;
    lists.push_back(std::move(it->second));
    sticky_.erase(it);
  }
  std::vector<service*> touched;
  for (const auto& numbers : lists) {
    for (auto n = numbers.rbegin(); n != numbers.rend(); ++n) {
      auto it = requests_.find(*n);
      if (it == requests_.end()) continue;
      request& r = it->second;
      if (returning != nullptr && returning->served == r.target && returning->eligible()) {
        log_->info("request {} given back to {}, which held it before the restart", r.number,
                   returning->name);
        send_request(*returning, r);
        continue;
      }
      r.target->queue.push_front(r.number);
      if (std::find(touched.begin(), touched.end(), r.target) == touched.end()) {
        touched.push_back(r.target);
      }
    }
  }
  for (service* s : touched) dispatch(*s);
}

void broker::on_journal_commit() {
  // Fenced (another broker is active): nothing more may leave; committed()
  // will not move again. run() ends here, without flushing.
  if (journal_->fenced()) {
    throw journal_fenced("journal " + journal_->path() + ": " + journal_->health().error);
  }
  const std::uint64_t committed = journal_->committed();
  while (!held_replies_.empty() && held_replies_.front().seq <= committed) {
    held_reply& h = held_replies_.front();
    send_to_client(h.client, h.to, h.service, std::move(h.head), std::move(h.body));
    held_replies_.pop_front();
  }
  std::vector<service*> ready;
  while (!uncommitted_.empty() && uncommitted_.front().first <= committed) {
    auto it = requests_.find(uncommitted_.front().second);
    uncommitted_.pop_front();
    if (it == requests_.end()) continue;
    service* s = it->second.target;
    if (should_park(*s)) {
      s->parked.push(std::move(it->second));
      requests_.erase(it);
    } else {
      s->queue.push_back(it->first);
    }
    if (std::find(ready.begin(), ready.end(), s) == ready.end()) ready.push_back(s);
  }
  for (service* s : ready) dispatch(*s);
}

void broker::send_after_commit(std::uint64_t seq, const std::string& client, dialect to,
                               std::string_view service, zmq::message_t&& head_frame,
                               std::vector<zmq::message_t>&& body) {
  if (!journal_ || journal_->committed() >= seq) {
    send_to_client(client, to, service, std::move(head_frame), std::move(body));
    return;
  }
  held_replies_.push_back(
      {seq, client, to, std::string(service), std::move(head_frame), std::move(body)});
}

// Hands the access log the record of r, which ends now with `code`.
void broker::log_access(request& r, std::uint64_t code, request_state state,
                        std::string_view worker) {
  const time_point now = clock::now();
  auto us = [](time_point from, time_point to) {
    return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  };
  const bool dispatched = r.attempts > 0;
  access_record a;
  a.number = r.number;
  a.code = code;
  a.outcome = std::string(request_state_name(state));
  a.service = r.target->name;
  a.worker = std::string(worker);
  a.attempts = r.attempts;
  a.client = r.client;
  a.stock = r.from == dialect::mdp;
  a.head.copy(r.head);  // shares a large buffer; a small one is copied inline
  a.bytes = r.payload.size();
  a.queued_us = us(r.received_at, dispatched ? r.dispatched_at : now);
  a.worker_us = dispatched ? us(r.dispatched_at, now) : 0;
  a.total_us = us(r.received_at, now);
  access_.add(std::move(a));
}

// The final reply of r goes to its client and to every resend waiting for it,
// once the journal holds the outcome; the reply is remembered under r's key so
// that a later resend gets it again. The caller erases r.
void broker::finish_request(request& r, header& head, std::vector<zmq::message_t>&& body,
                            request_state state, std::string_view worker) {
  finish_request(r, head.encode(), head.get_uint("code").value_or(0), std::move(body), state,
                 worker);
}

// The same with the reply header encoded (once, for the journal, the cache and
// the replies); result_code is its `code`.
void broker::finish_request(request& r, zmq::message_t&& head_frame, std::uint64_t result_code,
                            std::vector<zmq::message_t>&& body, request_state state,
                            std::string_view worker) {
  if (r.quota_bytes > 0) quota_.release(r.client, r.quota_bytes);
  r.quota_bytes = 0;
  monitor_.on_finished(r, result_code, batch_now_);
  if (access_.enabled()) log_access(r, result_code, state, worker);
  std::uint64_t seq = 0;
  // The reply, for the reply cache and the journal: only a request with a key
  // can be sent again, so only its reply is kept.
  const bool keep = !r.key.empty();
  const std::string_view encoded(head_frame.data<char>(), head_frame.size());  // the header
  const std::string packed = keep ? encode_frames(body) : std::string();       // the body frames
  if (journal_ && !r.fetch) {
    journal_event e;
    e.what = journal_event::kind::finished;
    e.row.number = r.number;
    e.row.state = state;
    e.row.worker = std::string(worker);
    e.row.attempts = r.attempts;
    e.row.completed_ms = unix_ms();
    e.row.code = result_code;
    read_result(head_frame, e.row);
    if (keep) {
      e.head = encoded;
      e.body = packed;
    }
    seq = journal_->post(std::move(e));
  }
  if (keep) {
    answered_.put(r.key, r.number, r.target->name, encoded, packed);
    keyed_.erase(r.key);
  }
  if (r.from == dialect::mdp && result_code != code::ok) {
    // MDP/0.1 has no error reply: the stock client's own timeout takes over.
    ++stats_.mdp_dropped;
    log_->info("no reply to stock client={} for request {}: code {} (MDP/0.1 has no error reply)",
               client_label(r.client), r.number, result_code);
    return;
  }
  if (r.waiters.empty()) {  // the common case: one client, no list to build
    if (!r.client.empty()) {
      send_after_commit(seq, r.client, r.from, r.target->name, std::move(head_frame),
                        std::move(body));
    }
    return;
  }
  std::vector<const std::string*> to;
  if (!r.client.empty()) to.push_back(&r.client);
  for (const std::string& w : r.waiters) to.push_back(&w);
  for (std::size_t i = 0; i < to.size(); ++i) {
    std::vector<zmq::message_t> frames;
    if (i + 1 == to.size()) {
      frames = std::move(body);
    } else {
      for (zmq::message_t& f : body) frames.emplace_back().copy(f);
    }
    zmq::message_t frame;
    frame.copy(head_frame);
    send_after_commit(seq, *to[i], r.from, r.target->name, std::move(frame), std::move(frames));
  }
}

// A request whose (client, id) the broker has seen: an unanswered one gains a
// waiter, an answered one is answered again from memory or the journal.
// Returns false when the key is new.
bool broker::answer_resend(const std::string& client, const request_key_parts& key,
                           std::uint64_t timeout_ms) {
  if (auto it = keyed_.find(key.text); it != keyed_.end()) {
    // Unanswered: in requests_, or else parked (a key leaves keyed_ only when
    // its request is answered).
    const std::uint64_t number = it->second;
    if (auto found = requests_.find(number); found != requests_.end()) {
      request& r = found->second;
      // The client still waits: a waiting request's deadline runs from its
      // latest send (a reloaded one's first deadline may have passed while
      // the broker was down).
      const time_point wanted = batch_now_ + milliseconds(timeout_ms);
      if (r.holder == nullptr && wanted > r.deadline) {
        r.deadline = wanted;
        r.timeout_ms = timeout_ms;
      }
      if (r.client.empty()) {
        r.client = client;
      } else if (r.client != client &&
                 std::find(r.waiters.begin(), r.waiters.end(), client) == r.waiters.end()) {
        r.waiters.push_back(client);
      }
    } else {
      std::vector<std::string>& waiters = parked_waiters_[number];
      if (std::find(waiters.begin(), waiters.end(), client) == waiters.end()) {
        waiters.push_back(client);
      }
    }
    ++stats_.resends;
    log_->info("request {} sent again by client={} name={} id={}: waiting for the same outcome",
               number, client_label(client), key.client, key.client_id);
    return true;
  }
  cached_reply again;
  const char* source = "memory";
  if (std::optional<cached_reply> c = answered_.find(key.text)) {
    again = std::move(*c);
  } else if (journal_keys_ && journal_keys_->may_contain(key.text)) {
    std::optional<cached_reply> stored;
    try {
      stored = journal_->find_reply(key.client, key.client_id);
    } catch (const journal_error& e) {
      log_->error("journal lookup for client={} id={} failed: {}", key.client, key.client_id,
                  e.what());
    }
    if (!stored) return false;
    again = std::move(*stored);
    source = "journal";
  } else {
    return false;
  }
  // Checked, then sent as stored: the very bytes the first reply carried.
  if (header_result head = header::decode(again.head.data(), again.head.size()); !head) {
    log_->error("remembered reply of request {} is unreadable ({}); executing the resend",
                again.number, head.error);
    return false;
  }
  std::vector<zmq::message_t> body;
  for (const std::string& f : decode_frames(again.body)) body.emplace_back(f.data(), f.size());
  ++stats_.resends;
  log_->info("request {} sent again by client={} name={} id={}: answered from {}, not executed",
             again.number, client_label(client), key.client, key.client_id, source);
  send_after_commit(journal_ ? journal_->posted() : 0, client, dialect::carico, again.service,
                    zmq::message_t(again.head.data(), again.head.size()), std::move(body));
  return true;
}

std::optional<nlohmann::json> broker::find_request_json(std::uint64_t number) {
  if (auto it = requests_.find(number); it != requests_.end()) return request_json(it->second);
  if (auto parked = find_parked_json(number)) return parked;
  if (!journal_) return std::nullopt;
  try {
    journal_->flush();  // an answer still being written is part of the record
    if (auto row = journal_->find(number)) return row->to_json();
  } catch (const journal_error& e) {
    log_->error("journal lookup of request {} failed: {}", number, e.what());
  }
  return std::nullopt;
}

std::optional<nlohmann::json> broker::find_request_json(const request_key_parts& key) {
  if (auto it = keyed_.find(key.text); it != keyed_.end()) return find_request_json(it->second);
  if (!journal_) return std::nullopt;
  try {
    journal_->flush();
    if (auto row = journal_->find(key.client, key.client_id)) return row->to_json();
  } catch (const journal_error& e) {
    log_->error("journal lookup of client={} id={} failed: {}", key.client, key.client_id,
                e.what());
  }
  return std::nullopt;
}

nlohmann::json broker::history_json(std::size_t last) {
  nlohmann::json list = nlohmann::json::array();
  if (journal_) {
    try {
      journal_->flush();
      for (const journal_record& row : journal_->history(last)) {
        // The in-memory view of an unanswered request is fresher than its row.
        auto it = requests_.find(row.number);
        list.push_back(it != requests_.end() ? request_json(it->second) : row.to_json());
      }
      return list;
    } catch (const journal_error& e) {
      log_->error("journal history failed: {}", e.what());
    }
  }
  // The newest `last` of each service's parked requests, as views (valid
  // until the next push or pop), and every request in full.
  std::vector<std::uint64_t> numbers;
  for (const auto& [number, r] : requests_) numbers.push_back(number);
  std::unordered_map<std::uint64_t, std::pair<service*, packed_view>> parked;
  for (auto& [name, s] : services_) {
    std::deque<packed_view> newest;
    s->parked.for_each([&newest, last](const packed_view& v) {
      newest.push_back(v);
      if (newest.size() > last) newest.pop_front();
      return true;
    });
    for (const packed_view& v : newest) {
      numbers.push_back(v.number);
      parked.emplace(v.number, std::make_pair(s.get(), v));
    }
  }
  std::sort(numbers.rbegin(), numbers.rend());
  if (numbers.size() > last) numbers.resize(last);
  for (std::uint64_t n : numbers) {
    auto it = requests_.find(n);
    if (it != requests_.end()) {
      list.push_back(request_json(it->second));
    } else {
      const auto& [s, v] = parked.at(n);
      list.push_back(parked_json(*s, v));
    }
  }
  return list;
}

// The mmi.request view of parked request `number`, if one is parked.
std::optional<nlohmann::json> broker::find_parked_json(std::uint64_t number) {
  // Numbers need not grow along a parked queue: with the journal on, a keyed
  // request is parked when its row commits, after unkeyed ones that came later.
  for (auto& [name, s] : services_) {
    if (s->parked.empty()) continue;
    std::optional<nlohmann::json> found;
    s->parked.for_each([&](const packed_view& v) {
      if (v.number == number) found = parked_json(*s, v);
      return !found;
    });
    if (found) return found;
  }
  return std::nullopt;
}

nlohmann::json broker::parked_json(service& s, const packed_view& v) const {
  request r = to_request(v);
  r.target = &s;
  nlohmann::json out = request_json(r);
  out["bytes"] = v.payload_bytes;  // r was rebuilt without its payload
  return out;
}

}  // namespace carico
