// The frontend room: a client message read, checked against the limits and
// accepted as a request (or answered with an error).
#include "broker/broker.hpp"

#include <algorithm>

#include "broker/broker_util.hpp"

namespace carico {

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
  // While message.head_raw, the header is read here in place, through what the
  // codec's raw_map read (client_head_), and never decoded on the common path:
  // `id`, `client` (a key), `timeout_ms`, and whether it has `request` or
  // `attempt` (replaced per dispatch) are found in one pass. A `client` or an
  // `id` of an unusual shape has the header decoded, as request_key reads it.
  // (The access log reads the encoded header on its own thread.)
  // The encoded `id` and `client` values, copied out: the frame moves on.
  std::optional<std::string> raw_id;
  std::optional<std::string> raw_client;
  bool raw_reserved = false;
  std::optional<std::uint64_t> timeout_ms;  // the header's, when it has one
  std::string owner = owner_of(message);  // for the journal row; read before the frames move
  std::optional<request_key_parts> key;
  request_key_parts id_only;  // an unkeyed raw header's `client` and `id`, for its journal row
  if (message.head_raw) {
    for (const raw_view::entry& e : client_head_.over(message.head_frame.data())) {
      if (e.key == "id") {
        raw_id = std::string(e.value);
      } else if (e.key == "client") {
        raw_client = std::string(e.value);
      } else if (e.key == "request" || e.key == "attempt") {
        raw_reserved = true;
      } else if (e.key == "timeout_ms") {
        timeout_ms = raw_map::as_uint(e.value);
      }
    }
    const std::optional<std::string> id_text = raw_id ? id_json_text(*raw_id) : std::nullopt;
    const std::optional<std::string_view> name =
        raw_client ? raw_map::as_string(*raw_client) : std::nullopt;
    if ((raw_id && !id_text) || (raw_client && !name)) {
      decode_head(message);
      timeout_ms = message.head.get_uint("timeout_ms");
    } else if (name && !name->empty() && id_text) {
      key = request_key_parts{std::string(*name), *id_text, join_key(*name, *id_text)};
    } else {
      id_only.client = std::string(name.value_or(""));
      id_only.client_id = id_text.value_or("");
    }
  } else {
    timeout_ms = message.head.get_uint("timeout_ms");
  }
  if (!message.head_raw) key = request_key(message.head);
  if (journal_ && !journal_->writable() && !(key && keyed_.contains(key->text))) {
    // No outcome could be recorded, so nothing new is taken (the journal
    // logged the state once); a resend of a request in flight may still
    // wait for its outcome. A fenced broker answers nothing at all: the
    // client resends to the broker that took over.
    stop_if_fenced();
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
    // As keep_header does, from the entries read in place above. r.id is the
    // id as the client encoded it (keep_header re-encodes it): the same value,
    // as packed_queue's encoded_id also reads it.
    if (raw_id) r.id = std::move(*raw_id);
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
    e.row = record_of(r, message.head, key ? &*key : message.head_raw ? &id_only : nullptr);
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

}  // namespace carico
