#include "shared/limits.hpp"

namespace carico {

void apply_limits(zmq::socket_t& socket, const message_limits& limits) {
  socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(limits.max_message_bytes));
}

receive_status receive_bounded(zmq::socket_t& socket, zmq::multipart_t& frames,
                               const message_limits& limits, std::size_t* frames_seen,
                               zmq::message_t* routing_id) {
  frames.clear();
  receive_status status = receive_status::ok;
  std::size_t seen = 0;
  std::size_t bytes = 0;
  zmq::message_t frame;  // received into, then moved out (which leaves it empty again)
  for (bool more = true; more;) {
    // The first frame may be absent; the rest of a message arrives with it.
    const auto flags = seen == 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none;
    if (!socket.recv(frame, flags)) return receive_status::none;
    ++seen;
    more = frame.more();
    bytes += frame.size();
    if (status == receive_status::ok && seen > limits.max_frames) status = receive_status::too_many_frames;
    if (status == receive_status::ok && bytes > limits.max_message_bytes) status = receive_status::too_large;
    if (status != receive_status::ok) continue;
    if (seen == 1 && routing_id != nullptr) {
      *routing_id = std::move(frame);
    } else {
      frames.add(std::move(frame));
    }
  }
  if (frames_seen != nullptr) *frames_seen = seen;
  return status;
}

}  // namespace carico
