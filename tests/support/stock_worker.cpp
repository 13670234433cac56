#include "tests/support/stock_worker.hpp"

#include <algorithm>
#include <atomic>

namespace carico::test {

namespace {

std::string worker_control_endpoint() {
  static std::atomic<int> counter{0};
  return "inproc://stock-worker-control-" + std::to_string(++counter);
}

}  // namespace

stock_worker::stock_worker(zmq::context_t& context, stock_worker_options options)
    : options_(std::move(options)),
      context_(context),
      control_(context, zmq::socket_type::pair),
      control_sender_(context, zmq::socket_type::pair) {
  if (!options_.handler) options_.handler = [](const frames& body) { return body; };
  const std::string endpoint = worker_control_endpoint();
  control_.bind(endpoint);
  control_sender_.connect(endpoint);
  thread_ = std::thread([this] { run(); });
}

stock_worker::~stock_worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    (void)control_sender_.send(zmq::const_buffer("", 0), zmq::send_flags::dontwait);
  }
  changed_.notify_all();
  thread_.join();
}

template <class Change>
void stock_worker::record(Change change) {
  {
    std::lock_guard lock(mutex_);
    change(events_);
  }
  changed_.notify_all();
}

void stock_worker::violation(const std::string& what, const frames& message) {
  record([&](stock_worker_events& e) { e.violations.push_back(what + ": " + describe(message)); });
}

void stock_worker::open_socket() {
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->connect(options_.endpoint);
  send_frames(*socket_, {"", std::string(mdp::worker_signature), mdp::frame_of(mdp::command::ready),
                         options_.service});
  const clock::time_point now = clock::now();
  broker_expires_ = now + options_.liveness * options_.heartbeat;
  next_heartbeat_ = now + options_.heartbeat;
  record([](stock_worker_events& e) { ++e.readies; });
}

// RFC 7: on DISCONNECT or a dead broker, close the socket and open a new one.
void stock_worker::close_socket(clock::time_point now) {
  socket_.reset();
  held_.clear();  // the broker gives them to other workers
  down_ = !options_.reconnect;
  reconnect_at_ = now + options_.reconnect_delay;
}

void stock_worker::run() {
  open_socket();
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    clock::time_point deadline = clock::now() + std::chrono::hours(1);
    if (socket_) {
      deadline = std::min(next_heartbeat_, broker_expires_);
    } else if (!down_) {
      deadline = reconnect_at_;
    }
    const auto wait =
        std::max(std::chrono::milliseconds(0),
                 std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
    zmq::pollitem_t items[] = {{control_.handle(), 0, ZMQ_POLLIN, 0},
                               {socket_ ? socket_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, socket_ ? 2 : 1, wait);

    if (items[0].revents & ZMQ_POLLIN) {
      while (receive_frames_now(control_)) {
      }
      std::deque<std::function<void()>> jobs;
      {
        std::lock_guard lock(mutex_);
        jobs.swap(jobs_);
      }
      for (auto& job : jobs) {
        job();
        record([this](stock_worker_events&) { ++jobs_done_; });
      }
    }
    if (socket_ && (items[1].revents & ZMQ_POLLIN)) {
      while (socket_) {
        std::optional<frames> message = receive_frames_now(*socket_);
        if (!message) break;
        handle(*message);
      }
    }

    const clock::time_point now = clock::now();
    if (socket_ && now >= broker_expires_) {
      record([](stock_worker_events& e) { ++e.broker_deaths; });
      close_socket(now);
    }
    if (socket_ && now >= next_heartbeat_) {
      send_frames(*socket_,
                  {"", std::string(mdp::worker_signature), mdp::frame_of(mdp::command::heartbeat)});
      next_heartbeat_ = now + options_.heartbeat;
    }
    if (!socket_ && !down_ && now >= reconnect_at_) {
      open_socket();
      record([](stock_worker_events& e) { ++e.reconnects; });
    }
  }
}

void stock_worker::handle(const frames& message) {
  if (message.size() < 3 || !message[0].empty() || message[1] != mdp::worker_signature) {
    violation("not an MDP/Worker message (frame 0 empty, frame 1 MDPW01, frame 2 a command)",
              message);
    return;
  }
  const std::optional<mdp::command> command = mdp::command_of(message[2]);
  if (!command) {
    violation("frame 2 is not a command byte", message);
    return;
  }
  // RFC 7: any command but DISCONNECT counts as a heartbeat.
  if (*command != mdp::command::disconnect) {
    broker_expires_ = clock::now() + options_.liveness * options_.heartbeat;
  }
  switch (*command) {
    case mdp::command::request:
      handle_request(message);
      return;
    case mdp::command::heartbeat:
      if (message.size() != 3) {
        violation("a HEARTBEAT has exactly 3 frames", message);
        return;
      }
      record([](stock_worker_events& e) { ++e.heartbeats; });
      return;
    case mdp::command::disconnect:
      if (message.size() != 3) violation("a DISCONNECT has exactly 3 frames", message);
      record([](stock_worker_events& e) { ++e.disconnects; });
      close_socket(clock::now());
      return;
    case mdp::command::ready:
    case mdp::command::reply:
      violation(std::string("a broker never sends ") + mdp::name_of(*command), message);
      return;
  }
}

void stock_worker::handle_request(const frames& message) {
  if (message.size() < 6) {
    violation("a REQUEST has at least 6 frames", message);
    return;
  }
  if (message[3].empty()) {
    violation("frame 3 of a REQUEST is the client address, never empty", message);
    return;
  }
  if (!message[4].empty()) {
    violation("frame 4 of a REQUEST (the envelope delimiter) must be empty", message);
    return;
  }
  if (!held_.empty()) {
    // RFC 7: a worker handles at most one request at a time.
    violation("a REQUEST while the worker still holds one", message);
  }
  stock_request request{message[3], frames(message.begin() + 5, message.end())};
  record([&](stock_worker_events& e) { e.requests.push_back(request); });
  if (options_.auto_reply) {
    send_reply(request);
  } else {
    held_.push_back(std::move(request));
  }
}

void stock_worker::send_reply(const stock_request& request) {
  if (!socket_) return;
  frames reply{"", std::string(mdp::worker_signature), mdp::frame_of(mdp::command::reply),
               request.address, ""};
  const frames body = options_.handler(request.body);
  reply.insert(reply.end(), body.begin(), body.end());
  send_frames(*socket_, reply);
  record([](stock_worker_events& e) { ++e.replies; });
}

void stock_worker::run_on_thread(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  jobs_.push_back(std::move(job));
  const std::size_t ticket = ++jobs_queued_;
  (void)control_sender_.send(zmq::const_buffer("", 0), zmq::send_flags::dontwait);
  changed_.wait(lock, [&] { return jobs_done_ >= ticket || stopping_; });
}

bool stock_worker::send_raw(const frames& message) {
  bool sent = false;
  run_on_thread([&] {
    if (!socket_) return;
    send_frames(*socket_, message);
    sent = true;
  });
  return sent;
}

bool stock_worker::release() {
  bool released = false;
  run_on_thread([&] {
    if (held_.empty()) return;
    send_reply(held_.front());
    held_.pop_front();
    released = true;
  });
  return released;
}

stock_worker_events stock_worker::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

bool stock_worker::wait_for(const std::function<bool(const stock_worker_events&)>& pred,
                            std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return pred(events_); });
}

}  // namespace carico::test
