// The backend room: workers joining, heartbeating, replying, lost.
#include "broker/broker.hpp"

#include <algorithm>
#include <charconv>

#include "broker/broker_util.hpp"

namespace carico {
namespace {

// The client's reply header made from a worker's, read in place: the worker's
// entries in their order without `attempt` and `id`, the broker's `request`,
// `code`, `status`, `worker` and `attempts` in place of the worker's own, then
// the request's `id` and whichever of those the worker did not send (with
// `error` for a failure that has none): the keys, values and order on_reply's
// header edits give a decoded header.
zmq::message_t client_reply_head(map_writer& out, const raw_view& worker_head, const request& r,
                                 std::string_view worker, std::uint64_t result_code) {
  const std::string_view status = result_code == code::ok ? "ok" : "error";
  // The broker's own entries, in the order on_reply sets them.
  enum { k_request, k_code, k_status, k_error, k_worker, k_attempts, k_count };
  static constexpr std::string_view names[k_count] = {"request", "code",   "status",
                                                      "error",   "worker", "attempts"};
  bool sent[k_count] = {};  // the worker's header has it
  std::size_t count = 0;
  for (const raw_view::entry& e : worker_head) {
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
  for (const raw_view::entry& e : worker_head) {
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

}  // namespace

void broker::on_worker_message(const std::string& identity, zmq::multipart_t&& frames) {
  auto found = workers_.find(identity);
  known_worker* w = found == workers_.end() ? nullptr : found->second.get();
  std::optional<dialect> seen;
  decoded<worker_message> message =
      decode_worker_message(std::move(frames), header_mode::keep_raw, &worker_head_, &seen);
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
  // through what the codec's raw_map read (worker_head_); one raw_map leaves to
  // header::decode came decoded. A stock worker's reply has none: it is 200.
  const bool raw = message.head_frame.size() > 0;
  const raw_view worker_head = worker_head_.over(message.head_frame.data());
  std::uint64_t result_code = code::ok;
  if (raw) {
    if (const std::optional<raw_view::entry> c = worker_head.find("code")) {
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

}  // namespace carico
