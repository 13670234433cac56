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

// Checks frames [0] empty and [1] == signature.
std::string check_envelope(const zmq::multipart_t& frames, std::string_view signature) {
  if (frames.empty()) return "message has no frames";
  if (frames[0].size() != 0) return "frame 0 must be empty";
  if (frames.size() < 2) return "message has no protocol signature";
  if (!frame_equals(frames[1], signature)) {
    return "frame 1 must be " + std::string(signature);
  }
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

zmq::multipart_t worker_envelope(command cmd) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(worker_signature));
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
std::optional<std::string> read_client_request(zmq::multipart_t& frames, std::string* service,
                                               header_mode mode, raw_map* raw,
                                               client_request& out) {
  if (std::string e = check_envelope(frames, client_signature); !e.empty()) {
    if (service != nullptr && frames.size() >= 3) *service = frames[2].to_string();
    return e;
  }
  if (frames.size() < 3) return "message has no service frame";
  if (service != nullptr) *service = frames[2].to_string();
  if (std::string e = check_service(frames[2]); !e.empty()) return e;
  const std::size_t body = frames.size() - 3;
  if (body == 0) return "message has no payload frame";
  if (body > 2) {
    return "message has " + std::to_string(body) + " body frames; at most 2 (header, payload)";
  }
  out.service = frames[2].to_string();
  if (body == 2) {
    if (frames[3].size() > max_request_header) {
      return "header frame has " + std::to_string(frames[3].size()) + " bytes; at most " +
             std::to_string(max_request_header);
    }
    out.had_header = true;
    if (keeps_raw(mode, frames[3], raw)) {
      out.head_raw = true;
    } else {
      header_result h = header::decode(frames[3]);
      if (!h) return std::move(h.error);
      out.head = std::move(*h.value);
    }
    out.head_frame = std::move(frames[3]);
  }
  out.payload = std::move(frames[frames.size() - 1]);
  return std::nullopt;
}

}  // namespace

// The result is built where the caller's lives (one named return value):
// no client_request is moved or destroyed on the way out.
decoded<client_request> decode_client_request(zmq::multipart_t&& frames, std::string* service,
                                              header_mode mode, raw_map* raw) {
  decoded<client_request> result;
  if (std::optional<std::string> error =
          read_client_request(frames, service, mode, raw, result.value.emplace())) {
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
  if (std::string e = check_envelope(frames, client_signature); !e.empty()) {
    return fail<client_reply>(std::move(e));
  }
  if (frames.size() < 4) return fail<client_reply>("reply has no header frame");
  header_result h = header::decode(frames[3]);
  if (!h) return fail<client_reply>(std::move(h.error));
  client_reply out;
  out.service = frames[2].to_string();
  out.head = std::move(*h.value);
  out.body = take_rest(frames, 4);
  return success(std::move(out));
}

zmq::multipart_t encode_client_request(std::string_view service, const header& head,
                                       zmq::message_t&& payload) {
  zmq::multipart_t frames;
  frames.add(zmq::message_t());
  frames.add(from_view(client_signature));
  frames.add(from_view(service));
  frames.add(head.encode());
  frames.add(std::move(payload));
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
  frames.add(from_view(client_signature));
  frames.add(from_view(service));
  frames.add(std::move(head_frame));
  for (zmq::message_t& f : body) frames.add(std::move(f));
  return frames;
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
  return success(std::move(info));
}

header encode_info(const worker_info& info) {
  header h;
  h.set("name", info.name);
  h.set("capacity", info.capacity);
  h.set("pid", info.pid);
  h.set("host", info.host);
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
  return success(std::move(load));
}

header encode_load(const load_report& load) {
  header h;
  h.set("state", state_name(load.state));
  h.set("in_flight", load.in_flight);
  h.set("rss_bytes", load.rss_bytes);
  h.set("mem_percent", msgpack::object(load.mem_percent));
  h.set("cpu_percent", msgpack::object(load.cpu_percent));
  return h;
}

namespace {

// decode_worker_message's reading: fills `m`, or returns why the frames are
// not a worker-protocol message.
std::optional<std::string> read_worker_message(zmq::multipart_t& frames, header_mode mode,
                                               raw_map* raw, worker_message& m) {
  if (std::string e = check_envelope(frames, worker_signature); !e.empty()) {
    return e;
  }
  if (frames.size() < 3) return "message has no command frame";
  if (frames[2].size() != 1) return "command frame must be one byte";
  const auto byte = *frames[2].data<std::uint8_t>();
  if (byte < 0x01 || byte > 0x05) return "unknown command byte " + std::to_string(byte);
  m.cmd = static_cast<command>(byte);
  const std::size_t n = frames.size();
  switch (m.cmd) {
    case command::ready: {
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
    case command::request: {
      if (n != 7) return "REQUEST takes address, empty, header, payload";
      if (frames[4].size() != 0) return "REQUEST frame 4 must be empty";
      if (keeps_raw(mode, frames[5], raw)) {
        m.head_frame = std::move(frames[5]);
      } else {
        header_result h = header::decode(frames[5]);
        if (!h) return "REQUEST header: " + h.error;
        m.head = std::move(*h.value);
      }
      m.address = std::move(frames[3]);
      m.body = take_rest(frames, 6);
      break;
    }
    case command::reply: {
      if (n < 6) return "REPLY takes address, empty and at least one body frame";
      if (frames[4].size() != 0) return "REPLY frame 4 must be empty";
      m.address = std::move(frames[3]);
      if (keeps_raw(mode, frames[5], raw)) {
        m.head_frame = std::move(frames[5]);
        m.body = take_rest(frames, 6);
        break;
      }
      header_result h = header::decode(frames[5]);
      if (h) {
        m.head = std::move(*h.value);
        m.body = take_rest(frames, 6);
      } else {
        m.body = take_rest(frames, 5);  // a plain MDP reply: every frame is body
      }
      break;
    }
    case command::heartbeat: {
      if (n > 4) return "HEARTBEAT takes at most a load report";
      if (n == 4) {
        header_result h = header::decode(frames[3]);
        if (!h) return "HEARTBEAT load report: " + h.error;
        decoded<load_report> load = decode_load(*h.value);
        if (!load) return std::move(load.error);
        m.load = load.value;
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
                                              raw_map* raw) {
  decoded<worker_message> result;
  if (std::optional<std::string> error =
          read_worker_message(frames, mode, raw, result.value.emplace())) {
    result.value.reset();
    result.error = std::move(*error);
  }
  return result;
}

zmq::multipart_t encode_ready(std::string_view service, const worker_info& info) {
  zmq::multipart_t frames = worker_envelope(command::ready);
  frames.add(from_view(service));
  frames.add(encode_info(info).encode());
  return frames;
}

zmq::multipart_t encode_request(zmq::message_t&& address, const header& head,
                                zmq::message_t&& payload) {
  return encode_request(std::move(address), head.encode(), std::move(payload));
}

zmq::multipart_t encode_request(zmq::message_t&& address, zmq::message_t&& head_frame,
                                zmq::message_t&& payload) {
  zmq::multipart_t frames = worker_envelope(command::request);
  frames.add(std::move(address));
  frames.add(zmq::message_t());
  frames.add(std::move(head_frame));
  frames.add(std::move(payload));
  return frames;
}

zmq::multipart_t encode_reply(zmq::message_t&& address, const header& head,
                              std::vector<zmq::message_t>&& body) {
  return encode_reply(std::move(address), head.encode(), std::move(body));
}

zmq::multipart_t encode_reply(zmq::message_t&& address, zmq::message_t&& head_frame,
                              std::vector<zmq::message_t>&& body) {
  zmq::multipart_t frames = worker_envelope(command::reply);
  frames.add(std::move(address));
  frames.add(zmq::message_t());
  frames.add(std::move(head_frame));
  for (zmq::message_t& f : body) frames.add(std::move(f));
  return frames;
}

zmq::multipart_t encode_heartbeat(const load_report* load) {
  zmq::multipart_t frames = worker_envelope(command::heartbeat);
  if (load != nullptr) frames.add(encode_load(*load).encode());
  return frames;
}

zmq::multipart_t encode_disconnect() { return worker_envelope(command::disconnect); }

}  // namespace carico
