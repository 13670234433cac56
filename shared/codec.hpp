// The carico wire contract (docs/protocol.md) as pure functions between
// ZeroMQ frames and typed messages. No sockets, no logging.
//
//   zmq::multipart_t frames;            // as received, routing id popped
//   auto request = carico::decode_client_request(std::move(frames));
//   if (!request) reply_error(400, request.error);
//
// Frames are moved into and out of the messages, never copied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shared/header.hpp"
#include "shared/raw_map.hpp"

namespace carico {

inline constexpr std::string_view client_signature = "MDPC01";
inline constexpr std::string_view worker_signature = "MDPW01";

// Reply codes of the contract.
namespace code {
inline constexpr std::uint64_t ok = 200;
inline constexpr std::uint64_t bad_request = 400;
inline constexpr std::uint64_t not_found = 404;
inline constexpr std::uint64_t too_large = 413;
inline constexpr std::uint64_t worker_failed = 500;
inline constexpr std::uint64_t not_implemented = 501;
inline constexpr std::uint64_t queue_full = 503;
inline constexpr std::uint64_t expired = 504;
}  // namespace code

enum class command : std::uint8_t {
  ready = 0x01,
  request = 0x02,
  reply = 0x03,
  heartbeat = 0x04,
  disconnect = 0x05,
};
std::string_view command_name(command c);

// The outcome of a decode: a message, or the reason the frames are malformed.
template <class T>
struct decoded {
  std::optional<T> value;  // set on success
  std::string error;       // why decoding failed, when value is empty
  explicit operator bool() const { return value.has_value(); }
  T& operator*() { return *value; }
  T* operator->() { return &*value; }
};

// What a decoder does with a header map: a client request's (frame 3) with
// decode_client_request, a REPLY's (frame 5) with decode_worker_message.
enum class header_mode {
  decode,    // into `head` (a zone and a copy of every value)
  keep_raw,  // into head_frame, as received, when raw_map reads it; else into `head`
};

// ---------------------------------------------------------------- clients

// A client request: ["", MDPC01, service, header?, payload].
struct client_request {
  std::string service;    // frame 2
  header head;            // frame 3; empty for a stock one-frame body, and while head_raw
  zmq::message_t head_frame;  // frame 3 as received (empty when none), for forwarding
  zmq::message_t payload; // the last frame
  bool had_header{false}; // false when the body was a single frame
  bool head_raw{false};   // header_mode::keep_raw: raw_map reads head_frame, `head` is not
                          // decoded yet (decode_head() does it)
};

// Decodes r.head from r.head_frame if head_raw (a header raw_map read always
// decodes) and returns it. Call it before head_frame is moved away: after
// that the header is gone.
header& decode_head(client_request& r);

// A reply to a client: ["", MDPC01, service, header, body...].
struct client_reply {
  std::string service;               // frame 2
  header head;                       // frame 3
  std::vector<zmq::message_t> body;  // frames 4..
};

// Decodes a request as received by the broker (routing id already popped).
// On failure `service` names frame 2 when the message had one. The mode
// changes only whether the header is decoded now, never what is valid.
// With keep_raw, `raw` (when given) receives the map that raw_map read when
// the header stays encoded (head_raw), so the caller need not parse it again.
// It was read before head_frame moved into the result: call
// raw->rebase(head_frame.data()) first.
decoded<client_request> decode_client_request(zmq::multipart_t&& frames,
                                              std::string* service = nullptr,
                                              header_mode mode = header_mode::decode,
                                              raw_map* raw = nullptr);
decoded<client_reply> decode_client_reply(zmq::multipart_t&& frames);

zmq::multipart_t encode_client_request(std::string_view service, const header& head,
                                       zmq::message_t&& payload);
zmq::multipart_t encode_client_reply(std::string_view service, const header& head,
                                     std::vector<zmq::message_t>&& body);
// The same with the header already encoded (head.encode() or a frame kept as received).
zmq::multipart_t encode_client_reply(std::string_view service, zmq::message_t&& head_frame,
                                     std::vector<zmq::message_t>&& body);

// ---------------------------------------------------------------- workers

enum class worker_state { ready, overload, drain };
std::string_view state_name(worker_state s);
// "ready", "overload", "drain"; anything else is overload, as the contract says.
worker_state parse_state(std::string_view name);

// READY frame 4: who the worker is.
struct worker_info {
  std::string name;             // shown in logs and replies
  std::uint64_t capacity{1};    // requests it takes at once
  std::uint64_t pid{0};         // its process id, 0 when unknown
  std::string host;             // its host name
};

// HEARTBEAT frame 3: how loaded the worker is.
struct load_report {
  worker_state state{worker_state::ready};  // whether it wants new work
  std::uint64_t in_flight{0};               // requests it holds
  std::uint64_t rss_bytes{0};               // resident memory
  double mem_percent{0};                    // rss as a share of the machine's memory
  double cpu_percent{0};                    // CPU use since the last report
};

// Any worker-protocol message: ["", MDPW01, command, ...].
struct worker_message {
  command cmd{command::heartbeat};
  std::string service;                     // READY
  std::optional<worker_info> info;         // READY, when frame 4 is present
  std::optional<load_report> load;         // HEARTBEAT, when frame 3 is present
  zmq::message_t address;                  // REQUEST, REPLY: the client address
  std::optional<header> head;              // REQUEST, REPLY: frame 5 decoded (a REPLY's when it is
                                           // a map); empty when kept in head_frame (keep_raw)
  std::vector<zmq::message_t> body;        // REQUEST payload; REPLY result frames
  // REQUEST or REPLY with header_mode::keep_raw: frame 5 as received when
  // raw_map reads it (then `head` stays empty), else empty. Read it with
  // raw_map where it lies: a small frame's bytes live inside the message_t
  // and move with it.
  zmq::message_t head_frame;
};

// Decodes a worker-protocol message (routing id already popped, if any). The
// mode changes only where a REQUEST or REPLY header lands, never what is valid.
// With keep_raw, `raw` (when given) receives what raw_map read of a REQUEST
// or REPLY header left in head_frame; as with decode_client_request, call
// raw->rebase(head_frame.data()) before reading it.
decoded<worker_message> decode_worker_message(zmq::multipart_t&& frames,
                                              header_mode mode = header_mode::decode,
                                              raw_map* raw = nullptr);

zmq::multipart_t encode_ready(std::string_view service, const worker_info& info);
zmq::multipart_t encode_request(zmq::message_t&& address, const header& head,
                                zmq::message_t&& payload);
zmq::multipart_t encode_request(zmq::message_t&& address, zmq::message_t&& head_frame,
                                zmq::message_t&& payload);
zmq::multipart_t encode_reply(zmq::message_t&& address, const header& head,
                              std::vector<zmq::message_t>&& body);
// The same with the header already encoded.
zmq::multipart_t encode_reply(zmq::message_t&& address, zmq::message_t&& head_frame,
                              std::vector<zmq::message_t>&& body);
// REQUEST or REPLY sent frame by frame, with no multipart to build: the frames
// encode_request / encode_reply make, after `routing_id` when it is not empty
// (a ROUTER's peer; a worker's DEALER has none). The header and the body frames
// are moved out (copy a frame first to keep it). With dontwait, a first frame
// that cannot be queued (a DEALER with no connection) sends nothing and returns
// false; once it is queued ZeroMQ takes the rest of the message whole.
// Socket: anything with zmq::socket_t's two send() calls (the broker's outbox).
template <class Socket>
bool send_addressed(Socket& socket, std::string_view routing_id, command cmd,
                    std::string_view address, zmq::message_t& head_frame,
                    zmq::message_t* body, std::size_t body_frames, bool dontwait = false) {
  constexpr auto more = zmq::send_flags::sndmore;
  const auto first = dontwait ? more | zmq::send_flags::dontwait : more;
  if (!routing_id.empty()) {
    if (!socket.send(zmq::const_buffer(routing_id.data(), routing_id.size()), first)) return false;
    (void)socket.send(zmq::const_buffer(nullptr, 0), more);
  } else if (!socket.send(zmq::const_buffer(nullptr, 0), first)) {
    return false;
  }
  const auto byte = static_cast<std::uint8_t>(cmd);
  (void)socket.send(zmq::const_buffer(worker_signature.data(), worker_signature.size()), more);
  (void)socket.send(zmq::const_buffer(&byte, 1), more);
  (void)socket.send(zmq::const_buffer(address.data(), address.size()), more);
  (void)socket.send(zmq::const_buffer(nullptr, 0), more);
  (void)socket.send(head_frame, body_frames == 0 ? zmq::send_flags::none : more);
  for (std::size_t i = 0; i < body_frames; ++i) {
    (void)socket.send(body[i], i + 1 < body_frames ? more : zmq::send_flags::none);
  }
  return true;
}
zmq::multipart_t encode_heartbeat(const load_report* load = nullptr);
zmq::multipart_t encode_disconnect();

header encode_info(const worker_info& info);
header encode_load(const load_report& load);
decoded<worker_info> decode_info(const header& head);
decoded<load_report> decode_load(const header& head);

// True when frame holds exactly these bytes.
inline bool frame_equals(const zmq::message_t& frame, std::string_view s) {
  return frame.size() == s.size() && frame.to_string_view() == s;
}

}  // namespace carico
