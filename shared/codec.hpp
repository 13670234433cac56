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

// Two dialects on the same sockets (docs/protocol.md): plain Majordomo 0.1
// (ZeroMQ RFC 7) for stock peers, and carico's extensions under their own
// signatures. The broker never guesses a dialect from a frame's content.
enum class dialect : std::uint8_t {
  mdp,     // MDPC01 / MDPW01: exactly RFC 7, nothing added
  carico,  // MDPCX1 / MDPWX1: header frames, READY info, load reports
};
inline constexpr std::string_view client_signature = "MDPC01";      // stock client
inline constexpr std::string_view client_ext_signature = "MDPCX1";  // carico client
inline constexpr std::string_view worker_signature = "MDPW01";      // stock worker
inline constexpr std::string_view worker_ext_signature = "MDPWX1";  // carico worker
inline constexpr std::string_view client_signature_of(dialect d) {
  return d == dialect::mdp ? client_signature : client_ext_signature;
}
inline constexpr std::string_view worker_signature_of(dialect d) {
  return d == dialect::mdp ? worker_signature : worker_ext_signature;
}
// "mdp" or "carico", as mmi.workers reports it.
std::string_view dialect_name(dialect d);

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

// A client request as the broker receives it (routing id popped):
//   carico: ["", MDPCX1, service, header, payload?]
//   stock:  ["", MDPC01, service, body...]
struct client_request {
  dialect from{dialect::carico};  // frame 1
  std::string service;            // frame 2
  header head;                    // carico: frame 3, when decoded (not while head_raw); stock: empty
  zmq::message_t head_frame;      // carico: frame 3 as received; stock: empty
  zmq::message_t payload;         // the first body frame: carico frame 4 (an empty frame when
                                  // absent); stock frame 3
  std::vector<zmq::message_t> more;  // stock: body frames after the first (usually none)
  std::size_t body_frames{0};     // stock: frames in the body, 1 or more; carico: 1
  bool head_raw{false};           // header_mode::keep_raw: raw_map reads head_frame, `head` is not
                                  // decoded yet (decode_head() does it)
};

// Decodes r.head from r.head_frame if head_raw (a header raw_map read always
// decodes) and returns it. Call it before head_frame is moved away: after
// that the header is gone.
header& decode_head(client_request& r);

// What a decoder saw of a client message's envelope, even when the rest is
// malformed: the broker answers a malformed carico request 400 and drops a
// stock one, echoing its service name.
struct client_envelope {
  std::optional<dialect> from;  // set when frame 1 is one of the client signatures
  std::string service;          // frame 2, when the message has one
};

// A reply to a client: carico ["", MDPCX1, service, header, body...], stock
// ["", MDPC01, service, body...] (then `head` is empty).
struct client_reply {
  dialect from{dialect::carico};     // frame 1
  std::string service;               // frame 2
  header head;                       // carico: frame 3
  std::vector<zmq::message_t> body;  // the frames after the header (stock: after the service)
};

// Decodes a request as received by the broker (routing id already popped).
// `envelope` (when given) receives the dialect and service even on failure.
// The mode changes only whether a carico header is decoded now, never what
// is valid. With keep_raw, `raw` (when given) receives the map that raw_map
// read when the header stays encoded (head_raw), so the caller need not parse
// it again; read it through the frame: raw->over(head_frame.data()).
decoded<client_request> decode_client_request(zmq::multipart_t&& frames,
                                              client_envelope* envelope = nullptr,
                                              header_mode mode = header_mode::decode,
                                              raw_map* raw = nullptr);
// Decodes a reply as a client receives it, in either dialect.
decoded<client_reply> decode_client_reply(zmq::multipart_t&& frames);

// A carico request: ["", MDPCX1, service, header, payload].
zmq::multipart_t encode_client_request(std::string_view service, const header& head,
                                       zmq::message_t&& payload);
// A stock request: ["", MDPC01, service, body...].
zmq::multipart_t encode_mdp_request(std::string_view service, std::vector<zmq::message_t>&& body);
// A carico reply: ["", MDPCX1, service, header, body...].
zmq::multipart_t encode_client_reply(std::string_view service, const header& head,
                                     std::vector<zmq::message_t>&& body);
// The same with the header already encoded (head.encode() or a frame kept as received).
zmq::multipart_t encode_client_reply(std::string_view service, zmq::message_t&& head_frame,
                                     std::vector<zmq::message_t>&& body);
// A stock reply: ["", MDPC01, service, body...].
zmq::multipart_t encode_mdp_reply(std::string_view service, std::vector<zmq::message_t>&& body);

// ---------------------------------------------------------------- workers

enum class worker_state { ready, overload, drain };
std::string_view state_name(worker_state s);
// "ready", "overload", "drain"; anything else is overload, as the contract says.
worker_state parse_state(std::string_view name);

// READY frame 4 (carico workers): who the worker is. Every key is optional.
struct worker_info {
  std::string name;             // shown in logs and replies
  std::uint64_t capacity{1};    // requests it takes at once
  std::uint64_t pid{0};         // its process id, 0 when unknown
  std::string host;             // its host name
  std::uint64_t heartbeat_ms{0};// the interval it heartbeats at (10..60000); 0: not said
};

// The range a carico worker's `heartbeat_ms` must fall in.
inline constexpr std::uint64_t min_heartbeat_ms = 10;
inline constexpr std::uint64_t max_heartbeat_ms = 60000;

// HEARTBEAT frame 3 (carico workers): how loaded the worker is.
struct load_report {
  worker_state state{worker_state::ready};  // whether it wants new work
  std::uint64_t in_flight{0};               // requests it holds
  std::uint64_t rss_bytes{0};               // resident memory
  double mem_percent{0};                    // rss as a share of the machine's memory
  double cpu_percent{0};                    // CPU use since the last report
  std::string reason;                       // why the state is not `ready`; empty when none
};

// Any worker-protocol message: ["", MDPW01 or MDPWX1, command, ...].
//   carico: READY [service, info?]; REQUEST/REPLY [address, "", header, body...];
//           HEARTBEAT [load?]; DISCONNECT []
//   stock:  READY [service]; REQUEST/REPLY [address, "", body...]; HEARTBEAT []; DISCONNECT []
struct worker_message {
  dialect from{dialect::carico};           // frame 1
  command cmd{command::heartbeat};
  std::string service;                     // READY
  std::optional<worker_info> info;         // READY (carico), when frame 4 is present
  std::optional<load_report> load;         // HEARTBEAT (carico), when frame 3 is present
  zmq::message_t address;                  // REQUEST, REPLY: the broker's token for the request
  std::optional<header> head;              // REQUEST, REPLY (carico): frame 5 decoded; empty
                                           // when kept in head_frame (keep_raw)
  std::vector<zmq::message_t> body;        // REQUEST, REPLY: the frames after the header (carico)
                                           // or after the empty frame (stock)
  // carico REQUEST or REPLY with header_mode::keep_raw: frame 5 as received
  // when raw_map reads it (then `head` stays empty), else empty. Read it with
  // raw_map where it lies: a small frame's bytes live inside the message_t
  // and move with it.
  zmq::message_t head_frame;
};

// Decodes a worker-protocol message (routing id already popped, if any). The
// mode changes only where a carico REQUEST or REPLY header lands, never what is
// valid. With keep_raw, `raw` (when given) receives what raw_map read of a
// header left in head_frame (read it as raw->over(head_frame.data())). `seen` (when given)
// receives the dialect of frame 1 even when the rest is malformed.
decoded<worker_message> decode_worker_message(zmq::multipart_t&& frames,
                                              header_mode mode = header_mode::decode,
                                              raw_map* raw = nullptr,
                                              std::optional<dialect>* seen = nullptr);

// READY: carico sends `info` as frame 4; stock sends the service only.
zmq::multipart_t encode_ready(dialect d, std::string_view service, const worker_info& info = {});
// REQUEST and REPLY; `head` is sent (as frame 5) in the carico dialect only.
zmq::multipart_t encode_request(dialect d, zmq::message_t&& address, const header& head,
                                std::vector<zmq::message_t>&& body);
zmq::multipart_t encode_reply(dialect d, zmq::message_t&& address, const header& head,
                              std::vector<zmq::message_t>&& body);
// The same with the header already encoded.
zmq::multipart_t encode_reply(dialect d, zmq::message_t&& address, zmq::message_t&& head_frame,
                              std::vector<zmq::message_t>&& body);
// REQUEST or REPLY sent frame by frame, with no multipart to build: the frames
// encode_request / encode_reply make, after `routing_id` when it is not empty
// (a ROUTER's peer; a worker's DEALER has none). head_frame is sent only when
// not null (the carico dialect). The header and the body frames are moved out
// (copy a frame first to keep it). With dontwait, a first frame that cannot be
// queued (a DEALER with no connection) sends nothing and returns false; once it
// is queued ZeroMQ takes the rest of the message whole.
// Socket: anything with zmq::socket_t's two send() calls (the broker's outbox).
template <class Socket>
bool send_addressed(Socket& socket, std::string_view routing_id, dialect d, command cmd,
                    std::string_view address, zmq::message_t* head_frame,
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
  const std::string_view signature = worker_signature_of(d);
  (void)socket.send(zmq::const_buffer(signature.data(), signature.size()), more);
  (void)socket.send(zmq::const_buffer(&byte, 1), more);
  (void)socket.send(zmq::const_buffer(address.data(), address.size()), more);
  const bool has_head = head_frame != nullptr && d == dialect::carico;
  (void)socket.send(zmq::const_buffer(nullptr, 0),
                    has_head || body_frames > 0 ? more : zmq::send_flags::none);
  if (has_head) (void)socket.send(*head_frame, body_frames == 0 ? zmq::send_flags::none : more);
  for (std::size_t i = 0; i < body_frames; ++i) {
    (void)socket.send(body[i], i + 1 < body_frames ? more : zmq::send_flags::none);
  }
  return true;
}
zmq::multipart_t encode_heartbeat(dialect d, const load_report* load = nullptr);
zmq::multipart_t encode_disconnect(dialect d);

header encode_info(const worker_info& info);
header encode_load(const load_report& load);
decoded<worker_info> decode_info(const header& head);
decoded<load_report> decode_load(const header& head);

// True when frame holds exactly these bytes.
inline bool frame_equals(const zmq::message_t& frame, std::string_view s) {
  return frame.size() == s.size() && frame.to_string_view() == s;
}

}  // namespace carico
