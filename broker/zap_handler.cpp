#include "broker/zap_handler.hpp"

#include <cstring>

#include "shared/codec.hpp"
#include "shared/logging.hpp"

namespace carico {
namespace {

// Frames of a ZAP request (RFC 27) before the mechanism's credentials.
enum zap_frame { version, request_id, domain, address, identity, mechanism, credentials };

zmq::multipart_t zap_reply(const zmq::message_t& id, std::string_view status,
                           std::string_view text, std::string_view user) {
  zmq::multipart_t reply;
  reply.addstr("1.0");
  reply.addmem(id.data(), id.size());
  reply.addstr(std::string(status));
  reply.addstr(std::string(text));
  reply.addstr(std::string(user));
  reply.add(zmq::message_t());  // no metadata
  return reply;
}

}  // namespace

zap_handler::zap_handler(zmq::context_t& context, std::shared_ptr<spdlog::logger> logger)
    : context_(context),
      log_(logger ? std::move(logger) : null_logger()),
      socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(std::string(zap_endpoint));
}

zap_handler::~zap_handler() {
  stopping_ = true;
  waker_.wake();
  if (thread_.joinable()) thread_.join();
}

void zap_handler::allow(std::string_view domain, allow_list keys) {
  domains_.insert_or_assign(std::string(domain), std::move(keys));
}

void zap_handler::monitor(zmq::socket_t& socket, std::string_view label) {
  const std::string endpoint = "inproc://carico-zap-monitor-" + std::string(label) + "-" +
                               std::to_string(reinterpret_cast<std::uintptr_t>(this));
  const int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  zmq::socket_t pair(context_, zmq::socket_type::pair);
  pair.set(zmq::sockopt::linger, 0);
  pair.connect(endpoint);
  monitors_.push_back({std::string(label), std::move(pair)});
}

// One handshake event: frame 1 is the event (uint16) and its value (uint32),
// frame 2 the endpoint. A refusal by ZAP was logged with its key already.
void zap_handler::on_event(std::size_t index) {
  zmq::multipart_t event;
  if (!event.recv(monitors_[index].pair, ZMQ_DONTWAIT) || event.size() < 2 || event[0].size() != 6) {
    return;
  }
  std::uint16_t what = 0;
  std::uint32_t value = 0;
  std::memcpy(&what, event[0].data(), sizeof what);
  std::memcpy(&value, static_cast<const char*>(event[0].data()) + sizeof what, sizeof value);
  const std::string& label = monitors_[index].label;
  if (what == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    log_->info("curve: handshake on {} refused by ZAP (status {})", label, value);
  } else if (what == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    log_->warn("curve: refused a peer on {} ({}): it does not speak CURVE", label,
               event[1].to_string());
  } else {
    log_->warn("curve: refused a peer on {} ({}): handshake failed (event {:#x}, error {:#x})",
               label, event[1].to_string(), what, value);
  }
}

void zap_handler::start() {
  thread_ = std::thread([this] { run(); });
}

void zap_handler::run() {
  while (!stopping_) {
    std::vector<zmq::pollitem_t> items = {
        {socket_.handle(), 0, ZMQ_POLLIN, 0},
        waker_.pollitem(),
    };
    for (watched& m : monitors_) items.push_back({m.pair.handle(), 0, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) waker_.drain();
      for (std::size_t i = 0; i < monitors_.size(); ++i) {
        if (items[2 + i].revents & ZMQ_POLLIN) on_event(i);
      }
      if (items[0].revents & ZMQ_POLLIN) {
        zmq::multipart_t request;
        if (request.recv(socket_, ZMQ_DONTWAIT)) answer(request);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) return;
      log_->error("zap handler: {}", e.what());
    }
  }
}

// Answers one ZAP request: 200 for a CURVE key on its domain's allow list,
// 400 for anything else. A REP socket must answer every request it reads.
void zap_handler::answer(zmq::multipart_t& request) {
  if (request.size() < credentials || !frame_equals(request[version], "1.0")) {
    // Not a request we can even echo properly; answer what we can.
    ++refused_;
    log_->warn("curve: malformed ZAP request ({} frames); refused", request.size());
    static const zmq::message_t none;
    zap_reply(request.size() > request_id ? request[request_id] : none, "500",
              "malformed ZAP request", "")
        .send(socket_);
    return;
  }
  const std::string domain_name = request[domain].to_string();
  const std::string peer = request[address].to_string();
  const std::string mech = request[mechanism].to_string();
  auto refuse = [&](std::string_view why) {
    ++refused_;
    log_->warn("curve: refused {} peer {} on {}: {}", mech, peer,
               domain_name.empty() ? "(no domain)" : domain_name, why);
    zap_reply(request[request_id], "400", why, "").send(socket_);
  };
  if (mech != "CURVE") return refuse("mechanism " + mech + " is not CURVE");
  if (request.size() <= credentials || request[credentials].size() != 32) {
    return refuse("no CURVE public key");
  }
  const std::string_view key(static_cast<const char*>(request[credentials].data()), 32);
  auto list = domains_.find(domain_name);
  if (list == domains_.end()) return refuse("key " + z85_of(key) + ": unknown ZAP domain");
  const std::string* name = list->second.find_binary(key);
  if (name == nullptr) return refuse("key " + z85_of(key) + " is not on the allow list");
  ++admitted_;
  log_->info("curve: admitted {} ({}) from {} on {}", *name, z85_of(key), peer, domain_name);
  zap_reply(request[request_id], "200", "OK", *name).send(socket_);
}

}  // namespace carico
