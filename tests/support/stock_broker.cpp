#include "tests/support/stock_broker.hpp"

#include <algorithm>
#include <cerrno>

namespace carico::test {

namespace {

std::string broker_control_endpoint() {
  static std::atomic<int> counter{0};
  return "inproc://stock-broker-control-" + std::to_string(++counter);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

stock_broker::stock_broker(zmq::context_t& context, stock_broker_options options)
    : options_(std::move(options)),
      router_(context, zmq::socket_type::router),
      control_(context, zmq::socket_type::pair),
      control_sender_(context, zmq::socket_type::pair) {
  router_.set(zmq::sockopt::linger, 0);
  router_.set(zmq::sockopt::router_mandatory,
              1);  // a reply to a client gone is an error, not lost silently
  router_.bind(options_.endpoint);
  endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  const std::string control = broker_control_endpoint();
  control_.bind(control);
  control_sender_.connect(control);
  next_heartbeat_ = clock::now() + options_.heartbeat;
}

stock_broker::~stock_broker() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void stock_broker::start() {
  thread_ = std::thread([this] { run(); });
}

void stock_broker::stop() {
  stopping_ = true;
  std::lock_guard lock(mutex_);
  (void)control_sender_.send(zmq::const_buffer("", 0), zmq::send_flags::dontwait);
}

std::vector<std::string> stock_broker::violations() const {
  std::lock_guard lock(mutex_);
  return violations_;
}

void stock_broker::log(const std::string& line) {
  if (options_.log != nullptr) *options_.log << "stock-broker: " << line << std::endl;
}

void stock_broker::violation(const std::string& what, const frames& message) {
  std::string line = "violation: " + what + ": " + describe(message);
  log(line);
  std::lock_guard lock(mutex_);
  violations_.push_back(std::move(line));
}

// ------------------------------------------------------------------ broker

// One poll loop: its timeout is the next deadline; I/O first, housekeeping after.
void stock_broker::run() {
  log("serving MDP/0.1 on " + endpoint_);
  while (!stopping_) {
    const auto wait =
        std::max(std::chrono::milliseconds(0),
                 std::chrono::ceil<std::chrono::milliseconds>(next_deadline() - clock::now()));
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {control_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: request_stop() may have set stopping_
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      while (receive_frames_now(control_)) {
      }
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (std::optional<frames> message = receive_frames_now(router_)) {
        handle_message(std::move(*message));
      }
    }
    on_tick(clock::now());
  }
  log("stopped");
}

stock_broker::clock::time_point stock_broker::next_deadline() const {
  clock::time_point deadline = next_heartbeat_;
  for (const auto& [identity, w] : workers_) deadline = std::min(deadline, w.expires);
  return deadline;
}

// [identity, "", "MDPC01" or "MDPW01", ...]
void stock_broker::handle_message(frames&& message) {
  if (message.size() >= 3 && message[1].empty() && message[2] == mdp::client_signature) {
    handle_client(std::move(message));
  } else if (message.size() >= 3 && message[1].empty() && message[2] == mdp::worker_signature) {
    handle_worker(std::move(message));
  } else {
    violation("neither an MDP/Client nor an MDP/Worker message", message);
  }
}

// Expires silent workers (their requests go back to the front of the queue)
// and heartbeats the others.
void stock_broker::on_tick(clock::time_point now) {
  std::vector<std::string> expired;
  for (const auto& [identity, w] : workers_) {
    if (w.expires <= now) expired.push_back(identity);
  }
  for (const std::string& identity : expired) {
    log("worker " + describe({identity}) + " silent too long: deleted");
    delete_worker(identity, false);
  }
  if (now >= next_heartbeat_) {
    for (const auto& [identity, w] : workers_) send_to_worker(identity, mdp::command::heartbeat);
    next_heartbeat_ = now + options_.heartbeat;
  }
}

// ------------------------------------------------------------------ clients

// [client, "", "MDPC01", service, body...]: at least one body frame.
void stock_broker::handle_client(frames&& message) {
  if (message.size() < 5) {
    violation("a client REQUEST has a service and at least one body frame", message);
    return;
  }
  const std::string name = message[3];
  request r{message[0], frames(std::make_move_iterator(message.begin() + 4),
                               std::make_move_iterator(message.end()))};
  services_[name].requests.push_back(std::move(r));
  dispatch(name);
}

// ------------------------------------------------------------------ workers

// [worker, "", "MDPW01", command, ...]
void stock_broker::handle_worker(frames&& message) {
  const std::string identity = message[0];
  const std::optional<mdp::command> command =
      message.size() >= 4 ? mdp::command_of(message[3]) : std::nullopt;
  const bool known = workers_.count(identity) > 0;
  if (!command) {
    violation("frame 2 of an MDP/Worker message is not a command byte", message);
    if (known) delete_worker(identity, true);
    return;
  }
  // RFC 7: any command but DISCONNECT is a sign of life.
  if (known && *command != mdp::command::disconnect) {
    workers_[identity].expires = clock::now() + options_.liveness * options_.heartbeat;
  }
  switch (*command) {
    case mdp::command::ready:
      require_ready(identity, message);
      return;
    case mdp::command::reply:
      handle_reply(identity, std::move(message));
      return;
    case mdp::command::heartbeat:
      if (message.size() != 4) {
        violation("a HEARTBEAT has exactly 3 frames", message);
        if (known) delete_worker(identity, true);
      } else if (!known) {
        log("HEARTBEAT from a worker that never said READY: DISCONNECT");
        send_to_worker(identity, mdp::command::disconnect);
      }
      return;
    case mdp::command::disconnect:
      if (message.size() != 4) violation("a DISCONNECT has exactly 3 frames", message);
      if (known) delete_worker(identity, false);
      return;
    case mdp::command::request:
      violation("a worker never sends REQUEST", message);
      if (known) delete_worker(identity, true);
      return;
  }
}

// READY ["", "MDPW01", 0x01, service]: exactly 4 frames, once per worker, never for mmi.*.
void stock_broker::require_ready(const std::string& identity, const frames& message) {
  if (message.size() != 5 || message[4].empty()) {
    violation("a READY has exactly 4 frames, the last a service name", message);
    if (workers_.count(identity) > 0) delete_worker(identity, true);
    return;
  }
  const std::string& name = message[4];
  if (workers_.count(identity) > 0) {
    log("a second READY from worker " + describe({identity}) + ": DISCONNECT");
    delete_worker(identity, true);
    return;
  }
  if (starts_with(name, mdp::mmi_prefix)) {
    log("READY for " + name + " (RFC 8 reserves mmi.): DISCONNECT");
    send_to_worker(identity, mdp::command::disconnect);
    return;
  }
  workers_[identity] = worker{name, clock::now() + options_.liveness * options_.heartbeat, {}};
  worker_count_ = workers_.size();
  services_[name].idle.push_back(identity);
  log("worker " + describe({identity}) + " READY for " + name);
  dispatch(name);
}

// REPLY ["", "MDPW01", 0x03, client, "", body...] for the request the worker holds.
void stock_broker::handle_reply(const std::string& identity, frames&& message) {
  if (message.size() < 7 || !message[5].empty()) {
    violation("a REPLY has a client address, an empty frame and at least one body frame", message);
    if (workers_.count(identity) > 0) delete_worker(identity, true);
    return;
  }
  auto it = workers_.find(identity);
  if (it == workers_.end() || !it->second.holding || it->second.holding->client != message[4]) {
    log("REPLY for a request worker " + describe({identity}) + " does not hold: DISCONNECT");
    if (it == workers_.end()) {
      send_to_worker(identity, mdp::command::disconnect);
    } else {
      delete_worker(identity, true);
    }
    return;
  }
  worker& w = it->second;
  frames reply{message[4], "", std::string(mdp::client_signature), w.service};
  reply.insert(reply.end(), std::make_move_iterator(message.begin() + 6),
               std::make_move_iterator(message.end()));
  w.holding.reset();
  try {
    send_frames(router_, reply);
  } catch (const zmq::error_t& e) {
    log(std::string("reply to a client gone: dropped (") + e.what() + ")");
  }
  services_[w.service].idle.push_back(identity);
  dispatch(w.service);
}

// Unlinks the worker everywhere; its request goes back to the front of its queue.
void stock_broker::delete_worker(const std::string& identity, bool disconnect) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  const std::string name = it->second.service;
  service& s = services_[name];
  s.idle.erase(std::remove(s.idle.begin(), s.idle.end(), identity), s.idle.end());
  if (it->second.holding) s.requests.push_front(std::move(*it->second.holding));
  workers_.erase(it);
  worker_count_ = workers_.size();  // before the DISCONNECT: whoever sees it sees the count
  if (disconnect) send_to_worker(identity, mdp::command::disconnect);
  dispatch(name);
}

void stock_broker::send_to_worker(const std::string& identity, mdp::command command, frames extra) {
  frames message{identity, "", std::string(mdp::worker_signature), mdp::frame_of(command)};
  message.insert(message.end(), std::make_move_iterator(extra.begin()),
                 std::make_move_iterator(extra.end()));
  try {
    send_frames(router_, message);
  } catch (const zmq::error_t& e) {
    log(std::string(mdp::name_of(command)) + " to a worker gone: dropped (" + e.what() + ")");
  }
}

// ------------------------------------------------------------------ services

// Gives waiting requests to idle workers, oldest request to the longest idle worker.
void stock_broker::dispatch(const std::string& name) {
  service& s = services_[name];
  while (!s.requests.empty() && !s.idle.empty()) {
    const std::string identity = s.idle.front();
    s.idle.pop_front();
    request r = std::move(s.requests.front());
    s.requests.pop_front();
    frames extra{r.client, ""};
    extra.insert(extra.end(), r.body.begin(), r.body.end());
    send_to_worker(identity, mdp::command::request, std::move(extra));
    workers_[identity].holding = std::move(r);
  }
}

}  // namespace carico::test
