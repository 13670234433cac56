#include "tests/support/stock_mdp.hpp"

#include <algorithm>
#include <cstdio>

namespace carico::test {

namespace mdp {

std::string frame_of(command c) {
  return std::string(1, static_cast<char>(c));
}

std::optional<command> command_of(std::string_view frame) {
  if (frame.size() != 1) return std::nullopt;
  const auto byte = static_cast<unsigned char>(frame[0]);
  if (byte < 1 || byte > 5) return std::nullopt;
  return static_cast<command>(byte);
}

const char* name_of(command c) {
  switch (c) {
    case command::ready:
      return "READY";
    case command::request:
      return "REQUEST";
    case command::reply:
      return "REPLY";
    case command::heartbeat:
      return "HEARTBEAT";
    case command::disconnect:
      return "DISCONNECT";
  }
  return "?";
}

}  // namespace mdp

namespace {

bool printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string describe_frame(std::string_view f) {
  constexpr std::size_t max_bytes = 24;
  const std::size_t shown = std::min(f.size(), max_bytes);
  std::string out;
  if (printable(f)) {
    out = "\"" + std::string(f.substr(0, shown)) + "\"";
  } else {
    out = "0x";
    char hex[3];
    for (std::size_t i = 0; i < shown; ++i) {
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(f[i]));
      out += hex;
    }
  }
  if (shown < f.size()) out += "...(" + std::to_string(f.size()) + " bytes)";
  return out;
}

}  // namespace

std::string describe(const frames& message) {
  constexpr std::size_t max_frames = 10;
  std::string out = "[";
  for (std::size_t i = 0; i < message.size() && i < max_frames; ++i) {
    if (i > 0) out += ", ";
    out += describe_frame(message[i]);
  }
  if (message.size() > max_frames) out += ", ... " + std::to_string(message.size()) + " frames";
  return out + "]";
}

void send_frames(zmq::socket_t& socket, const frames& message) {
  for (std::size_t i = 0; i < message.size(); ++i) {
    const auto flags = i + 1 < message.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    (void)socket.send(zmq::const_buffer(message[i].data(), message[i].size()), flags);
  }
}

std::optional<frames> receive_frames_now(zmq::socket_t& socket) {
  frames message;
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
  message.push_back(part.to_string());
  while (part.more()) {
    (void)socket.recv(part);  // the rest of a multipart message is already here
    message.push_back(part.to_string());
  }
  return message;
}

std::optional<frames> receive_frames(zmq::socket_t& socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  return receive_frames_now(socket);
}

std::string check_client_reply(const frames& reply, std::string_view service,
                               const std::optional<frames>& expected_body) {
  const std::string sample = ": " + describe(reply);
  if (reply.size() < 4)
    return "a REPLY has at least 4 frames, got " + std::to_string(reply.size()) + sample;
  if (!reply[0].empty()) return "frame 0 of a REPLY must be empty" + sample;
  if (reply[1] != mdp::client_signature) return "frame 1 of a REPLY must be MDPC01" + sample;
  if (reply[2] != service)
    return "frame 2 must be the service \"" + std::string(service) + "\"" + sample;
  if (expected_body) {
    const frames body(reply.begin() + 3, reply.end());
    if (body != *expected_body) {
      return "the REPLY body must be exactly " + describe(*expected_body) + sample;
    }
  }
  return {};
}

// ------------------------------------------------------------------ client

stock_client::stock_client(zmq::context_t& context, const std::string& endpoint)
    : socket_(context, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void stock_client::send(std::string_view service, const frames& body) {
  if (body.empty()) throw std::invalid_argument("an MDP/0.1 request has at least one body frame");
  frames message{"", std::string(mdp::client_signature), std::string(service)};
  message.insert(message.end(), body.begin(), body.end());
  send_frames(socket_, message);
}

void stock_client::send_raw(const frames& message) {
  send_frames(socket_, message);
}

std::optional<frames> stock_client::receive(std::chrono::milliseconds timeout) {
  return receive_frames(socket_, timeout);
}

frames stock_client::call(std::string_view service, const frames& body,
                          const std::optional<frames>& expected_body,
                          std::chrono::milliseconds timeout) {
  send(service, body);
  std::optional<frames> reply = receive(timeout);
  if (!reply) {
    throw mdp_violation("no REPLY from service \"" + std::string(service) + "\" within " +
                        std::to_string(timeout.count()) + " ms");
  }
  if (std::string error = check_client_reply(*reply, service, expected_body); !error.empty()) {
    throw mdp_violation(error);
  }
  return frames(reply->begin() + 3, reply->end());
}

void stock_client::expect_silence(std::chrono::milliseconds timeout) {
  if (std::optional<frames> message = receive(timeout)) {
    throw mdp_violation("expected no message, got " + describe(*message));
  }
}

}  // namespace carico::test
