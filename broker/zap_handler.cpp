#include "broker/zap_handler.hpp"

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
    : log_(logger ? std::move(logger) : null_logger()),
      socket_(context, zmq::socket_type::rep),
      waker_(context) {
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

void zap_handler::start() {
  thread_ = std::thread([this] { run(); });
}

void zap_handler::run() {
  while (!stopping_) {
    zmq::pollitem_t items[] = {
        {socket_.handle(), 0, ZMQ_POLLIN, 0},
        {waker_.socket().handle(), 0, ZMQ_POLLIN, 0},
    };
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) waker_.drain();
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
