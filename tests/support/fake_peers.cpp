#include "tests/support/fake_peers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

#include "shared/logging.hpp"

namespace carico::test {
namespace {

std::shared_ptr<spdlog::logger> test_logger(const std::string& name) {
  const char* level = std::getenv("CARICO_TEST_LOG");
  if (level == nullptr || *level == '\0') return null_logger();
  return make_logger({.name = name, .file = "", .level = level, .console_level = level});
}

}  // namespace

zmq::multipart_t frames_of(const std::vector<std::string>& parts) {
  zmq::multipart_t frames;
  for (const std::string& p : parts) frames.addmem(p.data(), p.size());
  return frames;
}

std::vector<std::string> strings_of(const zmq::multipart_t& frames) {
  std::vector<std::string> out;
  for (const zmq::message_t& f : frames) out.push_back(f.to_string());
  return out;
}

std::string encode_json_header(const nlohmann::json& j) {
  header_result h = header::from_json(j);
  if (!h) throw std::invalid_argument("test header must be a JSON object: " + h.error);
  return h.value->encode_string();
}

std::string command_frame(command c) {
  return std::string(1, static_cast<char>(c));
}

std::string unique_endpoint(std::string_view what) {
  static std::atomic<int> counter{0};
  return "inproc://carico-test-" + std::string(what) + "-" + std::to_string(++counter);
}

inproc_pair::inproc_pair(zmq::context_t& context)
    : sender(context, zmq::socket_type::pair), receiver(context, zmq::socket_type::pair) {
  const std::string endpoint = unique_endpoint("pair");
  receiver.bind(endpoint);
  sender.connect(endpoint);
}

broker_options fast_broker_options() {
  broker_options o;
  o.frontend = unique_endpoint("frontend");
  o.backend = unique_endpoint("backend");
  o.heartbeat_ms = 50;
  o.liveness = 5;
  return o;
}

std::string free_tcp_endpoint() {
  // A context of its own: closing it waits until the listener is really gone
  // (a socket closes in the background), so no client can reach this probe.
  zmq::context_t probe_context;
  zmq::socket_t probe(probe_context, zmq::socket_type::router);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  std::string endpoint = probe.get(zmq::sockopt::last_endpoint);
  probe.close();
  probe_context.close();
  return endpoint;
}

bool eventually(const std::function<bool()>& pred, milliseconds timeout) {
  const time_point deadline = clock::now() + timeout;
  while (!pred()) {
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// ------------------------------------------------------------------ broker

running_broker::running_broker(zmq::context_t& context, broker_options options,
                               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      broker_(std::make_unique<broker>(context, options_,
                                       logger ? std::move(logger) : test_logger("broker"))),
      thread_([this] { broker_->run(); }) {}

running_broker::~running_broker() {
  broker_->stop();
  thread_.join();
}

// ------------------------------------------------------------------ worker

fake_worker::fake_worker(zmq::context_t& context, fake_worker_options options)
    : options_(std::move(options)),
      socket_(context, zmq::socket_type::dealer),
      auto_reply_(options_.auto_reply) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::routing_id, options_.name);
  socket_.connect(options_.endpoint);
  thread_ = std::thread([this] { run(); });
}

fake_worker::~fake_worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  waker_.wake();
  thread_.join();
}

std::string fake_worker::broker_name() const {
  return options_.plain_mdp ? "worker-" + hex_id(options_.name) : options_.name;
}

void fake_worker::run() {
  if (options_.send_ready) {
    if (options_.plain_mdp) {
      send(frames_of({"", std::string(worker_signature), std::string(1, '\x01'),
                      options_.service}));
    } else {
      send(encode_ready(dialect::carico, options_.service,
                        {options_.name, options_.capacity, 4242, "test-host",
                         options_.announce_heartbeat_ms}));
    }
  }
  next_heartbeat_ = clock::now() + options_.heartbeat;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    time_point deadline = clock::now() + 1000ms;
    if (!silent_) {
      deadline = std::min(deadline, next_heartbeat_);
      if (!pending_.empty()) deadline = std::min(deadline, pending_.front().due);
    }
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               waker_.pollitem()};
    zmq::poll(items, 2, milliseconds(poll_timeout(deadline)));
    if (items[1].revents & ZMQ_POLLIN) waker_.drain();
    if (items[0].revents & ZMQ_POLLIN) receive_all();

    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard lock(mutex_);
      jobs.swap(jobs_);
    }
    for (auto& job : jobs) {
      job();
      {
        std::lock_guard lock(mutex_);
        ++jobs_done_;
      }
      changed_.notify_all();
    }

    const time_point now = clock::now();
    if (silent_) continue;
    while (!pending_.empty() && pending_.front().due <= now) {
      const std::uint64_t number = pending_.front().number;
      pending_.pop_front();
      std::optional<received_request> r;
      {
        std::lock_guard lock(mutex_);
        for (const received_request& q : requests_) {
          if (q.number == number) r = q;
        }
      }
      if (r) send_reply(*r, code::ok);
    }
    if (now >= next_heartbeat_) send_heartbeat();
  }
}

void fake_worker::receive_all() {
  for (;;) {
    zmq::multipart_t frames;
    if (!frames.recv(socket_, ZMQ_DONTWAIT)) return;
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    std::unique_lock lock(mutex_);
    if (!m) {
      ++invalid_;
    } else if (m->cmd == command::request) {
      received_request r;
      r.head = m->head ? m->head->to_json() : nlohmann::json::object();
      // A stock worker has no header: the address is the broker's token, its number.
      r.number = m->head ? m->head->get_uint("request").value_or(0)
                         : std::strtoull(m->address.to_string().c_str(), nullptr, 10);
      r.attempt = m->head ? m->head->get_uint("attempt").value_or(0) : 0;
      r.address = m->address.to_string();
      r.payload = m->body.empty() ? std::string() : m->body[0].to_string();
      for (const zmq::message_t& f : m->body) r.body.push_back(f.to_string());
      requests_.push_back(r);
      lock.unlock();
      if (options_.silent_on_request) silent_ = true;
      if (auto_reply_ && !silent_) {
        pending_.push_back({clock::now() + options_.reply_delay, r.number});
      }
    } else if (m->cmd == command::heartbeat) {
      ++heartbeats_;
    } else if (m->cmd == command::disconnect) {
      ++disconnects_;
    } else {
      ++invalid_;
    }
    if (lock.owns_lock()) lock.unlock();
    changed_.notify_all();
  }
}

void fake_worker::send(zmq::multipart_t&& frames) { frames.send(socket_); }

void fake_worker::send_heartbeat() {
  if (options_.plain_mdp) {
    send(encode_heartbeat(dialect::mdp));
  } else {
    header_result load = header::from_json({{"state", state_},
                                            {"in_flight", pending_.size()},
                                            {"rss_bytes", 1 << 20},
                                            {"mem_percent", 1.5},
                                            {"cpu_percent", 2.5}});
    zmq::multipart_t frames = encode_heartbeat(dialect::carico);
    frames.add(load.value->encode());
    send(std::move(frames));
  }
  next_heartbeat_ = clock::now() + options_.heartbeat;
}

void fake_worker::send_reply(const received_request& r, std::uint64_t code) {
  if (options_.plain_mdp) {
    send(frames_of({"", std::string(worker_signature), std::string(1, '\x03'), r.address, "",
                    "plain:" + r.payload, "second"}));
    return;
  }
  nlohmann::json head = {{"request", r.number},
                         {"code", code},
                         {"status", code == code::ok ? "ok" : "error"},
                         {"result", {{"worker", options_.name}, {"payload", r.payload}}}};
  header_result h = header::from_json(head);
  send(encode_reply(dialect::carico, zmq::message_t(r.address.data(), r.address.size()), *h.value,
                    {}));
}

void fake_worker::run_on_thread(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  jobs_.push_back(std::move(job));
  const std::size_t ticket = ++jobs_queued_;
  lock.unlock();
  waker_.wake();
  lock.lock();
  changed_.wait(lock, [&] { return jobs_done_ >= ticket || stopping_; });
}

void fake_worker::set_state(worker_state state) { set_state(state_name(state)); }

void fake_worker::set_state(std::string_view name) {
  run_on_thread([this, name = std::string(name)] {
    state_ = name;
    send_heartbeat();
  });
}

void fake_worker::set_auto_reply(bool on) {
  run_on_thread([this, on] { auto_reply_ = on; });
}

void fake_worker::go_silent() {
  run_on_thread([this] { silent_ = true; });
}

void fake_worker::reply(std::uint64_t number, std::uint64_t code) {
  run_on_thread([this, number, code] {
    std::optional<received_request> r;
    {
      std::lock_guard lock(mutex_);
      for (const received_request& q : requests_) {
        if (q.number == number) r = q;
      }
    }
    if (r) send_reply(*r, code);
  });
}

void fake_worker::send_disconnect() {
  run_on_thread([this] {
    send(encode_disconnect(options_.plain_mdp ? dialect::mdp : dialect::carico));
    silent_ = true;
  });
}

void fake_worker::send_raw(const std::vector<std::string>& frames) {
  run_on_thread([this, frames] { send(frames_of(frames)); });
}

std::vector<received_request> fake_worker::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t fake_worker::disconnects() const {
  std::lock_guard lock(mutex_);
  return disconnects_;
}

std::size_t fake_worker::heartbeats() const {
  std::lock_guard lock(mutex_);
  return heartbeats_;
}

std::size_t fake_worker::invalid() const {
  std::lock_guard lock(mutex_);
  return invalid_;
}

bool fake_worker::wait(const std::function<bool()>& pred, milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, pred);
}

bool fake_worker::wait_requests(std::size_t n, milliseconds timeout) const {
  return wait([&] { return requests_.size() >= n; }, timeout);
}

bool fake_worker::wait_disconnects(std::size_t n, milliseconds timeout) const {
  return wait([&] { return disconnects_ >= n; }, timeout);
}

bool fake_worker::wait_heartbeats(std::size_t n, milliseconds timeout) const {
  return wait([&] { return heartbeats_ >= n; }, timeout);
}

// ------------------------------------------------------------------ client

fake_client::fake_client(zmq::context_t& context, const std::string& endpoint,
                         zmq::socket_type type)
    : type_(type), socket_(context, type) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void fake_client::send(std::string_view service, const nlohmann::json& head,
                       std::string_view payload) {
  send_raw({"", std::string(client_ext_signature), std::string(service), encode_json_header(head),
            std::string(payload)});
}

void fake_client::send_plain(std::string_view service, std::string_view payload) {
  send_raw({"", std::string(client_signature), std::string(service), std::string(payload)});
}

void fake_client::send_raw(const std::vector<std::string>& frames) {
  std::vector<std::string> out = frames;
  // REQ adds the empty delimiter itself.
  if (type_ == zmq::socket_type::req && !out.empty() && out.front().empty()) {
    out.erase(out.begin());
  }
  frames_of(out).send(socket_);
}

std::optional<std::vector<std::string>> fake_client::recv_raw(milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  zmq::multipart_t frames;
  if (!frames.recv(socket_, ZMQ_DONTWAIT)) return std::nullopt;
  std::vector<std::string> out = strings_of(frames);
  if (type_ == zmq::socket_type::req) out.insert(out.begin(), std::string());
  return out;
}

std::optional<client_view> fake_client::recv(milliseconds timeout) {
  std::optional<std::vector<std::string>> raw = recv_raw(timeout);
  if (!raw) return std::nullopt;
  decoded<client_reply> r = decode_client_reply(frames_of(*raw));
  if (!r) return std::nullopt;
  client_view out;
  out.service = r->service;
  out.head = r->head.to_json();
  for (const zmq::message_t& f : r->body) out.body.push_back(f.to_string());
  return out;
}

std::optional<client_view> fake_client::call(std::string_view service, const nlohmann::json& head,
                                             std::string_view payload, milliseconds timeout) {
  send(service, head, payload);
  return recv(timeout);
}

nlohmann::json wait_for_workers(fake_client& client, std::size_t n, milliseconds timeout) {
  nlohmann::json workers = nlohmann::json::array();
  eventually(
      [&] {
        std::optional<client_view> r = client.call("mmi.workers", nlohmann::json::object(), "");
        if (r && r->head.contains("result")) workers = r->head["result"]["workers"];
        return workers.size() == n;
      },
      timeout);
  return workers;
}

nlohmann::json mmi_stats(fake_client& client) {
  std::optional<client_view> r = client.call("mmi.stats", nlohmann::json::object(), "");
  if (!r || !r->head.contains("result")) return nlohmann::json::object();
  return r->head["result"];
}

// ------------------------------------------------------------------ fixtures

// Starts workers one at a time, each registered before the next connects, so
// that ring order is the order of names.
std::vector<std::unique_ptr<fake_worker>> start_workers(zmq::context_t& context,
                                                        const running_broker& broker,
                                                        fake_client& mmi,
                                                        const std::vector<std::string>& names,
                                                        fake_worker_options options) {
  std::vector<std::unique_ptr<fake_worker>> out;
  const std::size_t before = wait_for_workers(mmi, 0, 0ms).size();
  for (const std::string& name : names) {
    options.endpoint = broker.backend();
    options.name = name;
    out.push_back(std::make_unique<fake_worker>(context, options));
    REQUIRE(wait_for_workers(mmi, before + out.size()).size() == before + out.size());
  }
  return out;
}

// Workers that answer only when told (fake_worker::reply), each holding up to
// `capacity` requests; started as start_workers does.
std::vector<std::unique_ptr<fake_worker>> holding_workers(zmq::context_t& context,
                                                          const running_broker& broker,
                                                          fake_client& mmi,
                                                          const std::vector<std::string>& names,
                                                          std::uint64_t capacity) {
  fake_worker_options holds;
  holds.auto_reply = false;
  holds.capacity = capacity;
  return start_workers(context, broker, mmi, names, holds);
}

// The mmi.workers entry of a worker, or null.
nlohmann::json worker_entry(fake_client& mmi, const std::string& name) {
  std::optional<client_view> r = mmi.call("mmi.workers", nlohmann::json::object(), "");
  if (!r) return nullptr;
  for (const nlohmann::json& w : r->head["result"]["workers"]) {
    if (w["name"] == name) return w;
  }
  return nullptr;
}

bool worker_state_is(fake_client& mmi, const std::string& name, const std::string& state) {
  return eventually([&] {
    nlohmann::json w = worker_entry(mmi, name);
    return !w.is_null() && w["state"] == state;
  });
}

std::string worker_of(const client_view& r) { return r.head.value("worker", std::string("?")); }

}  // namespace carico::test
