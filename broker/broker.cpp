#include "broker/broker.hpp"

#include <algorithm>

#include "shared/logging.hpp"

namespace carico {
namespace {

// Messages read from one socket before the loop looks at the other one.
constexpr int io_batch = 256;

bool starts_with_mmi(std::string_view name) { return name.rfind("mmi.", 0) == 0; }

long ms_between(time_point from, time_point to) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(to - from).count());
}

std::string describe(const zmq::multipart_t& frames) {
  std::string out = std::to_string(frames.size()) + " frames";
  for (std::size_t i = 0; i < frames.size() && i < 4; ++i) {
    out += i == 0 ? ": [" : ", [";
    out += sample(frames[i].data(), frames[i].size(), 24) + "]";
  }
  return out;
}

}  // namespace

std::string hex_id(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

broker::broker(zmq::context_t& context, broker_options options,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      frontend_(context, zmq::socket_type::router),
      backend_(context, zmq::socket_type::router),
      waker_(context),
      expiry_(options_.heartbeat_ms * options_.liveness) {
  // A reply must never be dropped because a client reads slowly: the number of
  // replies owed to a client is bounded by the requests it was allowed to queue.
  frontend_.set(zmq::sockopt::sndhwm, 0);
  frontend_.set(zmq::sockopt::linger, 200);
  backend_.set(zmq::sockopt::linger, 200);
  frontend_.bind(options_.frontend);
  backend_.bind(options_.backend);
  started_at_ = clock::now();
  next_heartbeat_ = started_at_ + milliseconds(options_.heartbeat_ms);
  next_tick_ = next_heartbeat_;
  log_->info("broker listening: clients on {}, workers on {}", frontend_endpoint(),
             backend_endpoint());
}

broker::~broker() = default;

std::string broker::frontend_endpoint() const {
  return frontend_.get(zmq::sockopt::last_endpoint);
}

std::string broker::backend_endpoint() const { return backend_.get(zmq::sockopt::last_endpoint); }

void broker::stop() {
  stopping_ = true;
  waker_.wake();
}

void broker::run() {
  while (!stopping_ && !stop_signalled()) {
    zmq::pollitem_t items[] = {
        {backend_.handle(), 0, ZMQ_POLLIN, 0},
        {frontend_.handle(), 0, ZMQ_POLLIN, 0},
        {waker_.socket().handle(), 0, ZMQ_POLLIN, 0},
    };
    try {
      zmq::poll(items, 3, milliseconds(poll_timeout(next_tick_)));
      // Workers first: their replies free capacity for the requests behind.
      if (items[0].revents & ZMQ_POLLIN) handle_backend();
      if (items[1].revents & ZMQ_POLLIN) handle_frontend();
      if (items[2].revents & ZMQ_POLLIN) waker_.drain();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;
    }
    if (clock::now() >= next_tick_) on_tick();
  }
  log_->info("broker stopping: disconnecting {} workers, {} requests unanswered",
             workers_.size(), requests_.size());
  for (auto& [identity, w] : workers_) send_to_worker(identity, encode_disconnect());
  log_->flush();
}

// ------------------------------------------------------------------ clients

void broker::handle_frontend() {
  for (int i = 0; i < io_batch; ++i) {
    zmq::multipart_t frames;
    if (!frames.recv(frontend_, ZMQ_DONTWAIT)) return;
    on_client_message(std::move(frames));
  }
}

void broker::on_client_message(zmq::multipart_t&& frames) {
  std::string client = frames.pop().to_string();
  std::string service_name;
  decoded<client_request> message = decode_client_request(std::move(frames), &service_name);
  if (!message) {
    ++stats_.malformed;
    log_->warn("malformed client message from {}: {} ({})", hex_id(client), message.error,
               describe(frames));
    reply_error(client, service_name, code::bad_request, message.error);
    return;
  }
  if (starts_with_mmi(message->service)) {
    answer_mmi(client, *message);
    return;
  }
  accept_request(std::move(client), std::move(*message));
}

std::string broker::client_label(const std::string& client) const { return hex_id(client); }

void broker::accept_request(std::string&& client, client_request&& message) {
  service& s = require_service(message.service);
  if (s.queue.size() >= options_.max_queue) {
    ++stats_.refused;
    log_->warn("request refused: queue of {} is full ({} waiting) client={}", s.name,
               s.queue.size(), client_label(client));
    reply_error(client, s.name, code::queue_full,
                "queue full: " + std::to_string(s.queue.size()) + " requests waiting for " + s.name,
                &message.head);
    return;
  }
  ++stats_.received;
  const std::uint64_t number = next_request_++;
  request& r = requests_[number];
  r.number = number;
  r.client = std::move(client);
  r.target = &s;
  r.head = std::move(message.head);
  r.payload = std::move(message.payload);
  r.received_at = clock::now();
  if (log_->should_log(spdlog::level::info)) {
    log_->info("request {} received service={} client={} name={} id={} title={} bytes={}", number,
               s.name, client_label(r.client), r.head.get_string("client").value_or("-"),
               r.head.find("id") ? to_json(*r.head.find("id")).dump() : "-",
               r.head.get_string("title").value_or("-"), r.payload.size());
  }
  s.queue.push_back(number);
  dispatch(s);
  if (!s.queue.empty() && s.queue.back() == number && log_->should_log(spdlog::level::info)) {
    log_->info("request {} queued: no {} worker free ({} waiting, {} workers)", number, s.name,
               s.queue.size(), s.ring.size());
  }
}

void broker::reply_error(const std::string& client, std::string_view service, std::uint64_t code,
                         std::string_view reason, const header* request_head) {
  header head;
  if (request_head != nullptr) {
    if (const msgpack::object* id = request_head->find("id")) head.set("id", *id);
  }
  head.set("code", code);
  head.set("status", "error");
  head.set("error", reason);
  send_to_client(client, service, head, {});
}

void broker::send_to_client(const std::string& client, std::string_view service,
                            const header& head, std::vector<zmq::message_t>&& body) {
  zmq::multipart_t frames = encode_client_reply(service, head, std::move(body));
  frames.push(zmq::message_t(client.data(), client.size()));
  frames.send(frontend_);
}

void broker::answer_mmi(const std::string& client, client_request& message) {
  header head;
  if (const msgpack::object* id = message.head.find("id")) head.set("id", *id);
  head.set("code", code::ok);
  head.set("status", "ok");
  std::vector<zmq::message_t> body;
  const std::string& name = message.service;
  if (name == "mmi.service") {
    auto it = services_.find(message.payload.to_string());
    const bool served = it != services_.end() && !it->second->ring.empty();
    body.emplace_back(served ? std::string_view("200") : std::string_view("404"));
  } else if (name == "mmi.workers") {
    head.set_json("result", nlohmann::json{{"workers", workers_json()}});
  } else if (name == "mmi.stats") {
    head.set_json("result", stats_json());
  } else if (name == "mmi.request") {
    const request* found = nullptr;
    if (auto number = message.head.get_uint("of_request")) {
      auto it = requests_.find(*number);
      if (it != requests_.end()) found = &it->second;
    } else if (auto of_client = message.head.get_string("of_client")) {
      const msgpack::object* of_id = message.head.find("of_id");
      for (const auto& [number, r] : requests_) {
        const msgpack::object* id = r.head.find("id");
        if (r.head.get_string("client") == of_client && id && of_id && *id == *of_id) {
          found = &r;
          break;
        }
      }
    } else {
      reply_error(client, name, code::bad_request, "mmi.request needs of_request, or of_client and of_id",
                  &message.head);
      return;
    }
    if (found == nullptr) {
      reply_error(client, name, code::not_found, "no such request", &message.head);
      return;
    }
    head.set_json("result", request_json(*found));
  } else {
    reply_error(client, name, code::not_implemented, "unknown mmi service " + name, &message.head);
    return;
  }
  send_to_client(client, name, head, std::move(body));
}

nlohmann::json broker::workers_json() const {
  const time_point now = clock::now();
  nlohmann::json list = nlohmann::json::array();
  std::vector<const known_worker*> sorted;
  for (const auto& [id, w] : workers_) sorted.push_back(w.get());
  std::sort(sorted.begin(), sorted.end(), [](const known_worker* a, const known_worker* b) {
    return a->joined_at < b->joined_at;
  });
  for (const known_worker* w : sorted) {
    list.push_back({{"name", w->name},
                    {"service", w->served->name},
                    {"state", state_name(w->load.state)},
                    {"in_flight", w->in_flight.size()},
                    {"capacity", w->info.capacity},
                    {"pid", w->info.pid},
                    {"host", w->info.host},
                    {"rss_bytes", w->load.rss_bytes},
                    {"mem_percent", w->load.mem_percent},
                    {"cpu_percent", w->load.cpu_percent},
                    {"last_seen_ms", ms_between(w->last_seen, now)},
                    {"uptime_ms", ms_between(w->joined_at, now)}});
  }
  return list;
}

nlohmann::json broker::stats_json() const {
  std::size_t queued = 0;
  nlohmann::json services = nlohmann::json::object();
  for (const auto& [name, s] : services_) {
    queued += s->queue.size();
    services[name] = {{"workers", s->ring.size()}, {"queued", s->queue.size()}};
  }
  return {{"received", stats_.received},
          {"done", stats_.done},
          {"failed", stats_.failed},
          {"expired", stats_.expired},
          {"redispatched", stats_.redispatched},
          {"refused", stats_.refused},
          {"malformed", stats_.malformed},
          {"late_replies", stats_.late_replies},
          {"queued", queued},
          {"in_flight", requests_.size() - queued},
          {"workers", workers_.size()},
          {"workers_joined", stats_.workers_joined},
          {"workers_lost", stats_.workers_lost},
          {"services", services},
          {"uptime_ms", ms_between(started_at_, clock::now())}};
}

nlohmann::json broker::request_json(const request& r) const {
  nlohmann::json out = {{"request", r.number},
                        {"service", r.target->name},
                        {"state", r.holder ? "dispatched" : "queued"},
                        {"worker", r.holder ? r.holder->name : ""},
                        {"attempts", r.attempts},
                        {"bytes", r.payload.size()},
                        {"age_ms", ms_between(r.received_at, clock::now())}};
  if (auto client = r.head.get_string("client")) out["client"] = *client;
  if (const msgpack::object* id = r.head.find("id")) out["id"] = to_json(*id);
  if (auto title = r.head.get_string("title")) out["title"] = *title;
  return out;
}

// ------------------------------------------------------------------ workers

void broker::handle_backend() {
  for (int i = 0; i < io_batch; ++i) {
    zmq::multipart_t frames;
    if (!frames.recv(backend_, ZMQ_DONTWAIT)) return;
    on_worker_message(std::move(frames));
  }
}

void broker::send_to_worker(const std::string& identity, zmq::multipart_t&& frames) {
  frames.push(zmq::message_t(identity.data(), identity.size()));
  frames.send(backend_);
}

void broker::on_worker_message(zmq::multipart_t&& frames) {
  const std::string identity = frames.pop().to_string();
  auto found = workers_.find(identity);
  known_worker* w = found == workers_.end() ? nullptr : found->second.get();
  decoded<worker_message> message = decode_worker_message(std::move(frames));
  if (!message) {
    log_->warn("invalid message from worker {}: {} ({}); sending DISCONNECT",
               w ? w->name : hex_id(identity), message.error, describe(frames));
    if (w) {
      delete_worker(*w, "protocol error: " + message.error, true);
    } else {
      send_to_worker(identity, encode_disconnect());
    }
    return;
  }
  const command cmd = message->cmd;
  if (w == nullptr) {
    if (cmd == command::ready) {
      register_worker(identity, *message);
    } else {
      // The contract: anything but READY from an unknown worker is invalid,
      // DISCONNECT included, and is answered with DISCONNECT.
      log_->warn("{} from unknown worker {}; sending DISCONNECT", command_name(cmd), hex_id(identity));
      send_to_worker(identity, encode_disconnect());
    }
    return;
  }
  w->last_seen = clock::now();
  w->expires_at = w->last_seen + expiry_;
  switch (cmd) {
    case command::heartbeat: on_heartbeat(*w, *message); break;
    case command::reply: on_reply(*w, *message); break;
    case command::disconnect: delete_worker(*w, "disconnected", false); break;
    case command::ready:
      delete_worker(*w, "protocol error: READY from a worker already registered", true);
      break;
    case command::request:
      delete_worker(*w, "protocol error: REQUEST sent by a worker", true);
      break;
  }
}

void broker::register_worker(const std::string& identity, worker_message& message) {
  auto w = std::make_unique<known_worker>();
  w->identity = identity;
  if (message.info) w->info = std::move(*message.info);
  w->name = w->info.name.empty() ? "worker-" + hex_id(identity) : w->info.name;
  w->joined_at = w->last_seen = clock::now();
  w->expires_at = w->last_seen + expiry_;
  service& s = require_service(message.service);
  w->served = &s;
  known_worker* raw = w.get();
  workers_.emplace(identity, std::move(w));
  s.ring.add(raw);
  ++stats_.workers_joined;
  log_->info("worker {} joined service={} capacity={} pid={} host={} ({} workers in ring)",
             raw->name, s.name, raw->info.capacity, raw->info.pid, raw->info.host, s.ring.size());
  dispatch(s);
}

void broker::on_heartbeat(known_worker& w, worker_message& message) {
  if (!message.load) return;
  const worker_state before = w.load.state;
  w.load = *message.load;
  if (w.load.state != before) {
    switch (w.load.state) {
      case worker_state::ready:
        log_->info("worker {} recovered: ready again (mem {:.1f}%, {} in flight)", w.name,
                   w.load.mem_percent, w.in_flight.size());
        break;
      case worker_state::overload:
        log_->warn("worker {} overloaded: skipped until ready (mem {:.1f}%, {} in flight)", w.name,
                   w.load.mem_percent, w.in_flight.size());
        break;
      case worker_state::drain:
        log_->info("worker {} draining: no new work, {} in flight", w.name, w.in_flight.size());
        break;
    }
  }
  if (w.eligible()) dispatch(*w.served);
}

void broker::on_reply(known_worker& w, worker_message& message) {
  // A carico reply names its request; a plain MDP reply is matched by the
  // client address among the requests this worker holds.
  std::optional<std::uint64_t> number;
  if (message.head) number = message.head->get_uint("request");
  if (!number) {
    const std::string address = message.address.to_string();
    for (std::uint64_t n : w.in_flight) {
      auto it = requests_.find(n);
      if (it != requests_.end() && it->second.client == address) {
        number = n;
        break;
      }
    }
  }
  auto it = number ? requests_.find(*number) : requests_.end();
  if (it == requests_.end() || it->second.holder != &w) {
    ++stats_.late_replies;
    log_->info("reply from {} for request {} dropped: not held by it (late or duplicate)", w.name,
               number ? std::to_string(*number) : "?");
    return;
  }
  request& r = it->second;
  std::erase(w.in_flight, r.number);

  header head = message.head ? std::move(*message.head) : header();
  std::uint64_t result_code = code::ok;
  if (const msgpack::object* c = head.find("code")) {
    result_code = c->type == msgpack::type::POSITIVE_INTEGER && c->via.u64 >= 100 && c->via.u64 < 1000
                      ? c->via.u64
                      : code::worker_failed;
  }
  head.erase("attempt");
  head.erase("id");
  if (const msgpack::object* id = r.head.find("id")) head.set("id", *id);
  head.set("request", r.number);
  head.set("code", result_code);
  head.set("status", result_code == code::ok ? "ok" : "error");
  if (result_code != code::ok && !head.contains("error")) head.set("error", "worker failed");
  head.set("worker", w.name);
  head.set("attempts", r.attempts);
  send_to_client(r.client, r.target->name, head, std::move(message.body));

  if (result_code == code::ok) {
    ++stats_.done;
  } else {
    ++stats_.failed;
  }
  if (log_->should_log(spdlog::level::info)) {
    log_->info("request {} done code={} worker={} attempts={} ms={}", r.number, result_code, w.name,
               r.attempts, ms_between(r.received_at, clock::now()));
  }
  requests_.erase(it);
  dispatch(*w.served);
}

void broker::delete_worker(known_worker& w, std::string_view reason, bool send_disconnect) {
  if (send_disconnect) send_to_worker(w.identity, encode_disconnect());
  ++stats_.workers_lost;
  service& s = *w.served;
  s.ring.remove(&w);
  const std::string identity = w.identity;
  if (w.in_flight.empty()) {
    log_->info("worker {} left service={}: {} ({} workers in ring)", w.name, s.name, reason,
               s.ring.size());
  } else {
    log_->warn("worker {} lost service={}: {}; re-dispatching {} requests ({} workers in ring)",
               w.name, s.name, reason, w.in_flight.size(), s.ring.size());
  }
  // Oldest first at the front of the queue: requeue newest first.
  for (auto n = w.in_flight.rbegin(); n != w.in_flight.rend(); ++n) requeue(*n, w);
  workers_.erase(identity);  // w is gone from here on
  dispatch(s);
}

void broker::requeue(std::uint64_t number, const known_worker& lost_by) {
  auto it = requests_.find(number);
  if (it == requests_.end()) return;
  request& r = it->second;
  r.holder = nullptr;
  if (r.attempts >= options_.max_attempts) {
    ++stats_.expired;
    log_->warn("request {} failed: lost by {} workers (last {}), giving up", number, r.attempts,
               lost_by.name);
    reply_error(r.client, r.target->name, code::expired,
                "out of attempts: " + std::to_string(r.attempts) + " workers were lost holding it",
                &r.head);
    requests_.erase(it);
    return;
  }
  ++stats_.redispatched;
  log_->warn("request {} re-dispatched: worker {} lost it on attempt {}", number, lost_by.name,
             r.attempts);
  r.target->queue.push_front(number);
}

void broker::purge_expired(time_point now) {
  std::vector<known_worker*> dead;
  for (auto& [id, w] : workers_) {
    if (w->expires_at <= now) dead.push_back(w.get());
  }
  // Unlink them all first, so one dead worker's requests never go to another.
  for (known_worker* w : dead) w->served->ring.remove(w);
  for (known_worker* w : dead) {
    delete_worker(*w, "silent for " + std::to_string(ms_between(w->last_seen, now)) + " ms (dead)",
                  true);
  }
}

void broker::on_tick() {
  const time_point now = clock::now();
  if (now >= next_heartbeat_) {
    for (auto& [identity, w] : workers_) send_to_worker(identity, encode_heartbeat());
    next_heartbeat_ = now + milliseconds(options_.heartbeat_ms);
  }
  purge_expired(now);
  next_tick_ = next_heartbeat_;
  for (auto& [id, w] : workers_) next_tick_ = std::min(next_tick_, w->expires_at);
}

// ------------------------------------------------------------------ routing

service& broker::require_service(const std::string& name) {
  auto it = services_.find(name);
  if (it != services_.end()) return *it->second;
  auto s = std::make_unique<service>();
  s->name = name;
  service& ref = *s;
  services_.emplace(name, std::move(s));
  return ref;
}

void broker::dispatch(service& s) {
  while (!s.queue.empty()) {
    known_worker* w = s.ring.next_eligible();
    if (w == nullptr) return;
    const std::uint64_t number = s.queue.front();
    s.queue.pop_front();
    auto it = requests_.find(number);
    if (it != requests_.end()) send_request(*w, it->second);
  }
}

void broker::send_request(known_worker& w, request& r) {
  ++r.attempts;
  r.holder = &w;
  r.dispatched_at = clock::now();
  w.in_flight.push_back(r.number);
  r.head.set("request", r.number);
  r.head.set("attempt", r.attempts);
  zmq::message_t payload;
  payload.copy(r.payload);  // shares the buffer; kept for a re-dispatch
  send_to_worker(w.identity, encode_request(zmq::message_t(r.client.data(), r.client.size()),
                                            r.head, std::move(payload)));
  if (log_->should_log(spdlog::level::info)) {
    log_->info("request {} dispatched to {} attempt={} ({}/{} in flight)", r.number, w.name,
               r.attempts, w.in_flight.size(), w.info.capacity);
  }
}

}  // namespace carico
