// Bounds on what a peer may send, and a receive that enforces them.
//
//   carico::message_limits limits;                       // 16 MiB, 16 frames
//   carico::apply_limits(socket, limits);               // ZMQ_MAXMSGSIZE, before bind/connect
//   zmq::multipart_t frames;
//   switch (carico::receive_bounded(socket, frames, limits)) { ... }
//
// ZeroMQ itself drops a connection that sends a frame over ZMQ_MAXMSGSIZE;
// receive_bounded() bounds the number of frames and their total size, which
// ZeroMQ does not.
#pragma once

#include <cstddef>
#include <cstdint>

#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace carico {

inline constexpr std::size_t default_max_message_bytes = 16u << 20;
// Room left for frames other than the payload (routing ids, header map).
inline constexpr std::size_t header_room_bytes = 64u << 10;

struct message_limits {
  std::size_t max_message_bytes = default_max_message_bytes;  // per frame and per message
  std::size_t max_frames = 16;                                 // frames per message, routing id included
};

// The largest payload a client may send under max_message_bytes.
inline std::size_t default_max_payload_bytes(std::size_t max_message_bytes) {
  return max_message_bytes > 2 * header_room_bytes ? max_message_bytes - header_room_bytes
                                                   : max_message_bytes / 2;
}

// Sets ZMQ_MAXMSGSIZE; call before bind() or connect().
void apply_limits(zmq::socket_t& socket, const message_limits& limits);

enum class receive_status {
  none,             // nothing to read (EAGAIN)
  ok,               // a whole message within the limits
  too_many_frames,  // more than max_frames: only the first max_frames are kept
  too_large,        // frames total more than max_message_bytes: the frames up to the limit are kept
};

// Receives one whole message without blocking. Over a limit, the rest of the
// message is read and discarded, and the frames kept still start with the
// routing id and envelope so the caller can answer or log.
// `frames_seen` (optional) is set to the number of frames the message had.
// With `routing_id`, the message's first frame (a ROUTER's routing id) is
// received into it and `frames` starts with the second; the limits still
// count it. A reused `frames` then never has its front popped, so its deque
// keeps one block from message to message instead of allocating another.
receive_status receive_bounded(zmq::socket_t& socket, zmq::multipart_t& frames,
                               const message_limits& limits, std::size_t* frames_seen = nullptr,
                               zmq::message_t* routing_id = nullptr);

}  // namespace carico
