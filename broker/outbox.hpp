// Frames for one socket, held until flush(). The broker queues what it sends
// while it handles a batch of received messages and sends it all at the
// batch's end: ZeroMQ's I/O thread is then woken once and finds every message
// waiting, instead of waking for each one as the loop produces it.
//
//   outbox out(frontend, [](std::string_view id, int error) { ... });
//   out.send(zmq::const_buffer(id.data(), id.size()), more | dontwait);
//   out.send(frame, zmq::send_flags::none);  // the frame is moved in
//   out.flush();
//
// send() has zmq::socket_t's signature, so the codec's send_addressed works on
// an outbox. A message's first frame sent with dontwait may be refused at
// flush() (ROUTER_MANDATORY: the peer is gone, or its send HWM is full); the
// rest of that message is then dropped and the refusal reported.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include <zmq.hpp>

namespace carico {

class outbox {
 public:
  // Called at flush() for each message refused: its first frame and the
  // reason (EAGAIN: the peer's queue is full; EHOSTUNREACH: no such peer).
  using refused_fn = std::function<void(std::string_view first_frame, int error)>;

  explicit outbox(zmq::socket_t& socket, refused_fn on_refused = {});
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  // Queue a frame: the bytes are copied (ZeroMQ keeps up to 33 in the frame
  // itself), a message_t is moved in. Always "succeeds": see flush().
  zmq::send_result_t send(zmq::const_buffer data, zmq::send_flags flags);
  zmq::send_result_t send(zmq::message_t& frame, zmq::send_flags flags);
  zmq::send_result_t send(zmq::message_t&& frame, zmq::send_flags flags);

  bool empty() const { return frames_.empty(); }
  // Sends every queued frame in order; returns how many frames were queued.
  std::size_t flush();

 private:
  zmq::socket_t& socket_;                // where flush() sends
  refused_fn on_refused_;                // told of messages the socket refused
  std::vector<zmq::message_t> frames_;   // queued frames, in order
  std::vector<zmq::send_flags> flags_;   // each frame's send flags
};

}  // namespace carico
