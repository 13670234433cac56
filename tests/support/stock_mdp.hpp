// Stock Majordomo peers, written from ZeroMQ RFC 7 (MDP/0.1) and RFC 8 (MMI)
// alone: they share no code with carico's codec, so a fault in it cannot hide
// itself here. This file holds the frames helpers, the strict shape checks and
// the client; stock_worker.hpp and stock_broker.hpp hold the other two peers.
//
//   zmq::context_t context;
//   carico::test::stock_client c(context, broker_frontend);
//   carico::test::frames body = c.call("echo", {"part1", "part2"});  // throws on a bad shape
//   REQUIRE(body == carico::test::frames{"part1", "part2"});
//
// A stock_client belongs to the thread that uses it.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

namespace carico::test {

// RFC 7 on the wire.
namespace mdp {
inline constexpr std::string_view client_signature = "MDPC01";  // MDP/Client v0.1
inline constexpr std::string_view worker_signature = "MDPW01";  // MDP/Worker v0.1
inline constexpr std::string_view mmi_prefix = "mmi.";          // RFC 8 namespace

// The one-byte command frame of MDP/Worker.
enum class command : unsigned char {
  ready = 1,
  request = 2,
  reply = 3,
  heartbeat = 4,
  disconnect = 5
};

// The command as its frame: one byte.
std::string frame_of(command c);
// The command a frame holds, or nothing when it is not exactly one known byte.
std::optional<command> command_of(std::string_view frame);
const char* name_of(command c);
}  // namespace mdp

// One multipart message, frame by frame.
using frames = std::vector<std::string>;

// A short printable sample of a message for error messages and logs:
// ["", "MDPC01", "echo", 0x81a4...] (non-printable frames in hex, long ones cut).
std::string describe(const frames& message);

// Sends every frame (blocking; the peers use small messages only).
void send_frames(zmq::socket_t& socket, const frames& message);
// The next whole message, or nothing when none arrives within timeout.
std::optional<frames> receive_frames(zmq::socket_t& socket, std::chrono::milliseconds timeout);
// The next whole message if one is waiting now.
std::optional<frames> receive_frames_now(zmq::socket_t& socket);

// A message that breaks RFC 7 (or the expectation a test states about it).
struct mdp_violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Strict checks of a whole message as received on a DEALER. Each returns an
// empty string when the message has exactly the shape, else what is wrong.
//
// A client REPLY: ["", "MDPC01", service, body...] with at least one body frame;
// with expected_body, the body must be exactly those frames.
std::string check_client_reply(const frames& reply, std::string_view service,
                               const std::optional<frames>& expected_body = std::nullopt);

// ------------------------------------------------------------------ client

// An MDP/0.1 client on a DEALER: sends ["", "MDPC01", service, body...] and
// nothing else, one request at a time.
class stock_client {
 public:
  stock_client(zmq::context_t& context, const std::string& endpoint);

  // ["", "MDPC01", service, body...]; body must not be empty (RFC 7: frames 3+).
  void send(std::string_view service, const frames& body);
  // Exactly these frames (for malformed-input tests).
  void send_raw(const frames& message);
  // The next whole message, frame 0 included, or nothing within timeout.
  std::optional<frames> receive(std::chrono::milliseconds timeout = std::chrono::seconds(3));

  // send + receive; the reply must have exactly the REPLY shape for service
  // (check_client_reply), and when expected_body is given exactly that body.
  // Returns the body; throws mdp_violation on a bad shape or no reply in time.
  frames call(std::string_view service, const frames& body,
              const std::optional<frames>& expected_body = std::nullopt,
              std::chrono::milliseconds timeout = std::chrono::seconds(3));

  // Throws mdp_violation when any message arrives within timeout.
  void expect_silence(std::chrono::milliseconds timeout);

  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;  // DEALER connected to the broker
};

}  // namespace carico::test
