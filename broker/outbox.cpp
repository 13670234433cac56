#include "broker/outbox.hpp"

#include <cerrno>
#include <utility>

namespace carico {

outbox::outbox(zmq::socket_t& socket, refused_fn on_refused)
    : socket_(socket), on_refused_(std::move(on_refused)) {}

zmq::send_result_t outbox::send(zmq::const_buffer data, zmq::send_flags flags) {
  frames_.emplace_back(data.data(), data.size());
  flags_.push_back(flags);
  return data.size();
}

zmq::send_result_t outbox::send(zmq::message_t& frame, zmq::send_flags flags) {
  return send(std::move(frame), flags);
}

zmq::send_result_t outbox::send(zmq::message_t&& frame, zmq::send_flags flags) {
  const std::size_t size = frame.size();
  frames_.push_back(std::move(frame));
  flags_.push_back(flags);
  return size;
}

std::size_t outbox::flush() {
  const std::size_t count = frames_.size();
  bool first = true;     // the next frame starts a message
  bool skipping = false; // the current message was refused: drop its frames
  for (std::size_t i = 0; i < count; ++i) {
    const bool more = (flags_[i] & zmq::send_flags::sndmore) == zmq::send_flags::sndmore;
    if (!skipping) {
      int error = 0;
      try {
        if (!socket_.send(frames_[i], flags_[i])) error = EAGAIN;
      } catch (const zmq::error_t& e) {
        // Only a first frame can be refused; anything else is a real fault.
        if (!first || e.num() != EHOSTUNREACH) {
          frames_.clear();
          flags_.clear();
          throw;
        }
        error = e.num();
      }
      if (error != 0) {
        skipping = more;
        if (on_refused_) {
          on_refused_(std::string_view(frames_[i].data<char>(), frames_[i].size()), error);
        }
      }
    } else if (!more) {
      skipping = false;
    }
    first = !more;
  }
  frames_.clear();
  flags_.clear();
  return count;
}

}  // namespace carico
