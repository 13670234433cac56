#include "shared/codec.hpp"

#include <cassert>

namespace carico {
namespace {

constexpr std::size_t max_service_name = 255;
// A request header is a small map; decoding expands MessagePack up to ~24x in
// memory, kept as long as the request is queued, so its frame is bounded.
constexpr std::size_t max_request_header = 64 << 10;

template <class T>
decoded<T> fail(std::string reason) {
  decoded<T> out;
  out.error = std::move(reason);
  return out;
}

template <class T>
decoded<T> success(T&& value) {
  decoded<T> out;
  out.value.emplace(std::move(value));
  return out;
}

// Checks frames [0] empty and [1] one of the two signatures; *from receives
// the dialect frame 1 names.
std::string check_envelope(const zmq::multipart_t& frames, std::string_view stock,
                           std::string_view ext, std::optional<dialect>* from) {
  if (frames.empty()) return "message has no frames";
  if (frames.size() < 2) return "message has no protocol signature";
  if (frame_equals(frames[1], stock)) {
    *from = dialect::mdp;
  } else if (frame_equals(frames[1], ext)) {
    *from = dialect::carico;
  } else {
    return "frame 1 must be " + std::string(stock) + " or " + std::string(ext);
  }
  if (frames[0].size() != 0) return "frame 0 must be empty";
  return {};
}

std::string check_service(const zmq::message_t& frame) {
  if (frame.size() == 0) return "service name is empty";
  if (frame.size() > max_service_name) return "service name is longer than 255 bytes";
  return {};
}

std::vector<zmq::message_t> take_rest(zmq::multipart_t& frames, std::size_t from) {
  std::vector<zmq::message_t> out;
  out.reserve(frames.size() - from);
  for (std::size_t i = from; i < frames.size(); ++i) out.push_back(std::move(frames[i]));
  return out;
}

zmq::message_t from_view(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

// With keep_raw, whether raw_map reads `frame` (then it stays encoded), read
// into *raw when the caller gives one; in decode mode, no.
bool keeps_raw(header_mode mode, const zmq::message_t& frame, raw_map* raw) {
  if (mode != header_mode::keep_raw) return false;
  if (raw != nullptr) return raw->parse(frame.data(), frame.size());
  raw_map local;
  return local.parse(frame.data(), frame.size());
}

zmq::multipart_t worker_envelope(dialect d, command cmd) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(worker_signature_of(d)));
  const auto byte = static_cast<std::uint8_t>(cmd);
  frames.add(zmq::message_t(&byte, 1));
  return frames;
}

std::optional<double> as_number(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::POSITIVE_INTEGER: return static_cast<double>(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return static_cast<double>(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return o.via.f64;
    default: return std::nullopt;
  }
}

}  // namespace

std::string_view dialect_name(dialect d) { return d == dialect::mdp ? "mdp" : "carico"; }

std::string_view command_name(command c) {
  switch (c) {
    case command::ready: return "READY";
    case command::request: return "REQUEST";
    case command::reply: return "REPLY";
    case command::heartbeat: return "HEARTBEAT";
    case command::disconnect: return "DISCONNECT";
  }
  return "UNKNOWN";
}

std::string_view state_name(worker_state s) {
  switch (s) {
    case worker_state::ready: return "ready";
    case worker_state::overload: return "overload";
    case worker_state::drain: return "drain";
  }
  return "overload";
}

worker_state parse_state(std::string_view name) {
  if (name == "ready") return worker_state::ready;
  if (name == "drain") return worker_state::drain;
  return worker_state::overload;
}

// ---------------------------------------------------------------- clients

namespace {

// decode_client_request's reading: fills `out`, or returns why the frames are
// not a client request.
std::optional<std::string> read_client_request(zmq::multipart_t& frames,
                                               client_envelope& envelope, header_mode mode,
                                               raw_map* raw, client_request& out) {
  std::string e = check_envelope(frames, client_signature, client_ext_signature, &envelope.from);
  if (frames.size() >= 3 && envelope.from) envelope.service = frames[2].to_string();
  if (!e.empty()) return e;
  if (frames.size() < 3) return "message has no service frame";
  if (std::string bad = check_service(frames[2]); !bad.empty()) return bad;
  out.from = *envelope.from;
  out.service = frames[2].to_string();
  const std::size_t body = frames.size() - 3;
  if (out.from == dialect::mdp) {  // RFC 7: the body is one or more opaque frames
    if (body == 0) return "message has no body frame";
    out.body_frames = body;
    if (body > 0) out.payload = std::move(frames[3]);
    for (std::size_t i = 4; i < frames.size(); ++i) out.more.push_back(std::move(frames[i]));
    return std::nullopt;
  }
  if (body == 0) return "message has no header frame";
  if (body > 2) {
    return "message has " + std::to_string(body) + " body frames; at most 2 (header, payload)";
  }
  if (frames[3].size() > max_request_header) {
    return "header frame has " + std::to_string(frames[3].size()) + " bytes; at most " +
           std::to_string(max_request_header);
  }
  if (keeps_raw(mode, frames[3], raw)) {
    out.head_raw = true;
  } else {
    header_result h = header::decode(frames[3]);
    if (!h) return std::move(h.error);
    out.head = std::move(*h.value);
  }
  out.head_frame = std::move(frames[3]);
  out.body_frames = 1;
  if (body == 2) out.payload = std::move(frames[4]);
  return std::nullopt;
}

}  // namespace

// The result is built where the caller's lives (one named return value):
// no client_request is moved or destroyed on the way out.
decoded<client_request> decode_client_request(zmq::multipart_t&& frames,
                                              client_envelope* envelope, header_mode mode,
                                              raw_map* raw) {
  decoded<client_request> result;
  client_envelope local;
  if (std::optional<std::string> error = read_client_request(
          frames, envelope ? *envelope : local, mode, raw, result.value.emplace())) {
    result.value.reset();
    result.error = std::move(*error);
  }
  return result;
}

header& decode_head(client_request& r) {
  if (r.head_raw) {
    r.head_raw = false;
    header_result h = header::decode(r.head_frame);
    // raw_map read these bytes, and it accepts a subset of what header::decode
    // does; only running out of memory fails here.
    assert(h);
    if (h) r.head = std::move(*h.value);
  }
  return r.head;
}

decoded<client_reply> decode_client_reply(zmq::multipart_t&& frames) {
  std::optional<dialect> from;
  if (std::string e = check_envelope(frames, client_signature, client_ext_signature, &from);
      !e.empty()) {
    return fail<client_reply>(std::move(e));
  }
  if (frames.size() < 3) return fail<client_reply>("reply has no service frame");
  client_reply out;
  out.from = *from;
  out.service = frames[2].to_string();
  if (out.from == dialect::mdp) {
    out.body = take_rest(frames, 3);
    return success(std::move(out));
  }
  if (frames.size() < 4) return fail<client_reply>("reply has no header frame");
  header_result h = header::decode(frames[3]);
  if (!h) return fail<client_reply>(std::move(h.error));
  out.head = std::move(*h.value);
  out.body = take_rest(frames, 4);
  return success(std::move(out));
}

zmq::multipart_t encode_client_request(std::string_view service, const header& head,
                                       zmq::message_t&& payload) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(client_ext_signature));
  frames.add(from_view(service));
  frames.add(head.encode());
  frames.add(std::move(payload));
  return frames;
}

zmq::multipart_t encode_mdp_request(std::string_view service, std::vector<zmq::message_t>&& body) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(client_signature));
  frames.add(from_view(service));
  for (zmq::message_t& f : body) frames.add(std::move(f));
  return frames;
}

zmq::multipart_t encode_client_reply(std::string_view service, const header& head,
                                     std::vector<zmq::message_t>&& body) {
  return encode_client_reply(service, head.encode(), std::move(body));
}

zmq::multipart_t encode_client_reply(std::string_view service, zmq::message_t&& head_frame,
                                     std::vector<zmq::message_t>&& body) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(client_ext_signature));
  frames.add(from_view(service));
  frames.add(std::move(head_frame));
  for (zmq::message_t& f : body) frames.add(std::move(f));
  return frames;
}

// RFC 7 gives a client's request and its reply the same shape.
zmq::multipart_t encode_mdp_reply(std::string_view service, std::vector<zmq::message_t>&& body) {
  return encode_mdp_request(service, std::move(body));
}

// ---------------------------------------------------------------- workers

decoded<worker_info> decode_info(const header& head) {
  worker_info info;
  if (const msgpack::object* o = head.find("name")) {
    if (o->type != msgpack::type::STR) return fail<worker_info>("READY name must be a string");
    info.name.assign(o->via.str.ptr, o->via.str.size);
  }
  if (const msgpack::object* o = head.find("capacity")) {
    if (o->type != msgpack::type::POSITIVE_INTEGER || o->via.u64 == 0 || o->via.u64 > 65536) {
      return fail<worker_info>("READY capacity must be an integer from 1 to 65536");
    }
    info.capacity = o->via.u64;
  }
  if (const msgpack::object* o = head.find("pid")) {
    if (o->type != msgpack::type::POSITIVE_INTEGER) {
      return fail<worker_info>("READY pid must be a non-negative integer");
    }
    info.pid = o->via.u64;
  }
  if (const msgpack::object* o = head.find("host")) {
    if (o->type != msgpack::type::STR) return fail<worker_info>("READY host must be a string");
    info.host.assign(o->via.str.ptr, o->via.str.size);
  }
  if (const msgpack::object* o = head.find("heartbeat_ms")) {
    if (o->type != msgpack::type::POSITIVE_INTEGER || o->via.u64 < min_heartbeat_ms ||
        o->via.u64 > max_heartbeat_ms) {
      return fail<worker_info>("READY heartbeat_ms must be an integer from " +
                               std::to_string(min_heartbeat_ms) + " to " +
                               std::to_string(max_heartbeat_ms));
    }
    info.heartbeat_ms = o->via.u64;
  }
  return success(std::move(info));
}

header encode_info(const worker_info& info) {
  header h;
  h.set("name", info.name);
  h.set("capacity", info.capacity);
  h.set("pid", info.pid);
  h.set("host", info.host);
  if (info.heartbeat_ms != 0) h.set("heartbeat_ms", info.heartbeat_ms);
  return h;
}

decoded<load_report> decode_load(const header& head) {
  load_report load;
  if (const msgpack::object* o = head.find("state")) {
    if (o->type != msgpack::type::STR) return fail<load_report>("load state must be a string");
    load.state = parse_state(std::string_view(o->via.str.ptr, o->via.str.size));
  }
  auto read_uint = [&](std::string_view key, std::uint64_t& out) {
    const msgpack::object* o = head.find(key);
    if (o == nullptr) return true;
    if (o->type != msgpack::type::POSITIVE_INTEGER) return false;
    out = o->via.u64;
    return true;
  };
  auto read_number = [&](std::string_view key, double& out) {
    const msgpack::object* o = head.find(key);
    if (o == nullptr) return true;
    std::optional<double> n = as_number(*o);
    if (!n) return false;
    out = *n;
    return true;
  };
  if (!read_uint("in_flight", load.in_flight)) return fail<load_report>("in_flight must be uint");
  if (!read_uint("rss_bytes", load.rss_bytes)) return fail<load_report>("rss_bytes must be uint");
  if (!read_number("mem_percent", load.mem_percent)) {
    return fail<load_report>("mem_percent must be a number");
  }
  if (!read_number("cpu_percent", load.cpu_percent)) {
    return fail<load_report>("cpu_percent must be a number");
  }
  if (const msgpack::object* o = head.find("reason")) {
    if (o->type != msgpack::type::STR) return fail<load_report>("reason must be a string");
    load.reason.assign(o->via.str.ptr, o->via.str.size);
  }
  return success(std::move(load));
}

header encode_load(const load_report& load) {
  header h;
  h.set("state", state_name(load.state));
  h.set("in_flight", load.in_flight);
  h.set("rss_bytes", load.rss_bytes);
  h.set("mem_percent", msgpack::object(load.mem_percent));
  h.set("cpu_percent", msgpack::object(load.cpu_percent));
  if (!load.reason.empty()) h.set("reason", load.reason);
  return h;
}

namespace {

// decode_worker_message's reading: fills `m`, or returns why the frames are
// not a worker-protocol message.
std::optional<std::string> read_worker_message(zmq::multipart_t& frames, header_mode mode,
                                               raw_map* raw, std::optional<dialect>& from,
                                               worker_message& m) {
  if (std::string e = check_envelope(frames, worker_signature, worker_ext_signature, &from);
      !e.empty()) {
    return e;
  }
  m.from = *from;
  const bool stock = m.from == dialect::mdp;
  if (frames.size() < 3) return "message has no command frame";
  if (frames[2].size() != 1) return "command frame must be one byte";
  const auto byte = *frames[2].data<std::uint8_t>();
  if (byte < 0x01 || byte > 0x05) return "unknown command byte " + std::to_string(byte);
  m.cmd = static_cast<command>(byte);
  const std::size_t n = frames.size();
  switch (m.cmd) {
    case command::ready: {
      if (stock && n != 4) return "READY takes a service frame and nothing more";
      if (n < 4 || n > 5) return "READY takes a service and an optional info map";
      if (std::string e = check_service(frames[3]); !e.empty()) return e;
      m.service = frames[3].to_string();
      if (n == 5) {
        header_result h = header::decode(frames[4]);
        if (!h) return "READY info: " + h.error;
        decoded<worker_info> info = decode_info(*h.value);
        if (!info) return std::move(info.error);
        m.info = std::move(info.value);
      }
      break;
    }
    case command::request:
    case command::reply: {
      const std::string_view name = command_name(m.cmd);
      if (n < 5) return std::string(name) + " takes an address and an empty frame";
      if (frames[4].size() != 0) return std::string(name) + " frame 4 must be empty";
      m.address = std::move(frames[3]);
      if (stock) {  // RFC 7: frames 6+ are the body, one or more
        if (n < 6) return std::string(name) + " has no body frame";
        m.body = take_rest(frames, 5);
        break;
      }
      if (n < 6) return std::string(name) + " has no header frame";
      if (keeps_raw(mode, frames[5], raw)) {
        m.head_frame = std::move(frames[5]);
      } else {
        header_result h = header::decode(frames[5]);
        if (!h) return std::string(name) + " header: " + h.error;
        m.head = std::move(*h.value);
      }
      m.body = take_rest(frames, 6);
      break;
    }
    case command::heartbeat: {
      if (stock && n != 3) return "HEARTBEAT takes no further frames";
      if (n > 4) return "HEARTBEAT takes at most a load report";
      if (n == 4) {
        header_result h = header::decode(frames[3]);
        if (!h) return "HEARTBEAT load report: " + h.error;
        decoded<load_report> load = decode_load(*h.value);
        if (!load) return std::move(load.error);
        m.load = std::move(load.value);
      }
      break;
    }
    case command::disconnect:
      if (n != 3) return "DISCONNECT takes no further frames";
      break;
  }
  return std::nullopt;
}

}  // namespace

// Built where the caller's result lives, as decode_client_request's.
decoded<worker_message> decode_worker_message(zmq::multipart_t&& frames, header_mode mode,
                                              raw_map* raw, std::optional<dialect>* seen) {
  decoded<worker_message> result;
  std::optional<dialect> from;
  if (std::optional<std::string> error =
          read_worker_message(frames, mode, raw, from, result.value.emplace())) {
    result.value.reset();
    result.error = std::move(*error);
  }
  if (seen != nullptr) *seen = from;
  return result;
}

zmq::multipart_t encode_ready(dialect d, std::string_view service, const worker_info& info) {
  zmq::multipart_t frames = worker_envelope(d, command::ready);
  frames.add(from_view(service));
  if (d == dialect::carico) frames.add(encode_info(info).encode());
  return frames;
}

namespace {

// REQUEST or REPLY: [envelope, address, "", header (carico only), body...].
zmq::multipart_t addressed(dialect d, command cmd, zmq::message_t&& address,
                           zmq::message_t&& head_frame, std::vector<zmq::message_t>&& body) {
  zmq::multipart_t frames = worker_envelope(d, cmd);
  frames.add(std::move(address));
  frames.add(zmq::message_t());
  if (d == dialect::carico) frames.add(std::move(head_frame));
  for (zmq::message_t& f : body) frames.add(std::move(f));
  return frames;
}

}  // namespace

zmq::multipart_t encode_request(dialect d, zmq::message_t&& address, const header& head,
                                std::vector<zmq::message_t>&& body) {
  return addressed(d, command::request, std::move(address),
                   d == dialect::carico ? head.encode() : zmq::message_t(), std::move(body));
}

zmq::multipart_t encode_reply(dialect d, zmq::message_t&& address, const header& head,
                              std::vector<zmq::message_t>&& body) {
  return addressed(d, command::reply, std::move(address),
                   d == dialect::carico ? head.encode() : zmq::message_t(), std::move(body));
}

zmq::multipart_t encode_reply(dialect d, zmq::message_t&& address, zmq::message_t&& head_frame,
                              std::vector<zmq::message_t>&& body) {
  return addressed(d, command::reply, std::move(address), std::move(head_frame), std::move(body));
}

zmq::multipart_t encode_heartbeat(dialect d, const load_report* load) {
  zmq::multipart_t frames = worker_envelope(d, command::heartbeat);
  if (load != nullptr && d == dialect::carico) frames.add(encode_load(*load).encode());
  return frames;
}

zmq::multipart_t encode_disconnect(dialect d) { return worker_envelope(d, command::disconnect); }

}  // namespace carico
