#include "client/client.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>

#include <unistd.h>

#include <zmq_addon.hpp>

#include "shared/codec.hpp"
#include "shared/header.hpp"
#include "shared/logging.hpp"
#include "shared/runtime.hpp"

namespace carico {
namespace {

using std::chrono::microseconds;

// Replies read per wake-up before the loop looks at its other duties.
constexpr int io_batch = 256;

// A reply made by the client itself.
reply local_reply(std::uint64_t code, const nlohmann::json& id, std::string error,
                  time_point submitted_at) {
  reply r;
  r.code = code;
  r.local = true;
  if (!id.is_null()) r.head["id"] = id;
  r.head["code"] = code;
  r.head["status"] = "error";
  r.head["error"] = std::move(error);
  r.latency = std::chrono::duration_cast<microseconds>(clock::now() - submitted_at);
  return r;
}

void release_payload(void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<const std::string>*>(hint);
}

// A frame that shares the payload instead of copying it, so that a resend
// costs nothing and a 1 MiB document is never duplicated.
zmq::message_t share_payload(const std::shared_ptr<const std::string>& payload) {
  if (payload->empty()) return zmq::message_t();
  auto* hint = new std::shared_ptr<const std::string>(payload);
  return zmq::message_t(const_cast<char*>(payload->data()), payload->size(), release_payload,
                        hint);
}

}  // namespace

std::string reply::error() const {
  auto it = head.find("error");
  if (it == head.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::string default_client_name() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> digits(0, 0xffff);
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", digits(device));
  return host_name() + "-" + std::to_string(::getpid()) + "-" + suffix;
}

// A request from submit() until it completes.
struct client::submission {
  std::string service;                           // frame 2
  header head;                                   // frame 3, with id and client set
  nlohmann::json id;                             // head's id, for local replies
  std::string key;                               // id rendered as JSON: the match key
  std::shared_ptr<const std::string> payload;    // frame 4, shared by every send
  milliseconds timeout{0};                       // per attempt
  int resends_left{0};                           // attempts left after this one
  reply_callback done;                           // completion, called once
  time_point submitted_at;                       // for latency
  time_point deadline;                           // end of the current attempt
  bool in_backlog{false};                        // waiting for the DEALER to take it
};

// The I/O thread's state: the DEALER, the requests in flight, their deadlines.
class client::io_loop {
 public:
  io_loop(client& owner, zmq::socket_t&& pipe_pull)
      : owner_(owner),
        log_(*owner.log_),
        pipe_pull_(std::move(pipe_pull)),
        mdp_(owner.options_.protocol == dialect::mdp) {
    const int count = mdp_ ? std::max(1, owner.options_.connections) : 1;
    for (int i = 0; i < count; ++i) links_.push_back({open_dealer(), {}});
  }

  // Serves until the client is closed, then completes everything left with 503.
  void run() {
    std::vector<zmq::pollitem_t> items;
    while (!stopping_) {
      items.clear();
      items.push_back({pipe_pull_.handle(), 0, ZMQ_POLLIN, 0});
      for (link& l : links_) {
        // A carico link with a backlog waits for room to send too.
        const bool want_out = !mdp_ && !backlog_.empty();
        items.push_back({l.dealer.handle(), 0,
                         static_cast<short>(ZMQ_POLLIN | (want_out ? ZMQ_POLLOUT : 0)), 0});
      }
      const long timeout = deadlines_.empty() ? -1 : poll_timeout(deadlines_.begin()->first, 60000);
      try {
        zmq::poll(items.data(), items.size(), milliseconds(timeout));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log_.error("client {}: poll failed: {}", owner_.name_, e.what());
        break;
      }
      if (items[0].revents & ZMQ_POLLIN) take_submissions();
      for (std::size_t i = 0; i < links_.size(); ++i) {
        if (items[i + 1].revents & ZMQ_POLLIN) receive_replies(links_[i]);
      }
      if (!backlog_.empty()) flush_backlog();
      purge_expired(clock::now());
    }
    fail_all("client closed");
    links_.clear();
    pipe_pull_.close();
  }

 private:
  // Drains the wake-ups and moves every queued submission in flight.
  void take_submissions() {
    zmq::message_t m;
    while (pipe_pull_.recv(m, zmq::recv_flags::dontwait)) {
    }
    std::deque<std::unique_ptr<submission>> taken;
    {
      std::lock_guard lock(owner_.mutex_);
      taken.swap(owner_.queue_);
      if (owner_.closed_) stopping_ = true;
    }
    for (auto& s : taken) start(std::move(s));
  }

  void start(std::unique_ptr<submission> s) {
    if (pending_.count(s->key) != 0) {
      log_.warn("client {}: id {} is already outstanding; request refused", owner_.name_, s->key);
      reply r = local_reply(code::bad_request, s->id, "id " + s->key + " is already outstanding",
                            s->submitted_at);
      complete(std::move(s), std::move(r));
      return;
    }
    submission& ref = *s;
    pending_.emplace(ref.key, std::move(s));
    arm(ref);
    send_or_backlog(ref);
  }

  // Sets the deadline of the current attempt.
  void arm(submission& s) {
    s.deadline = clock::now() + s.timeout;
    deadlines_.emplace(s.deadline, s.key);
  }

  void send_or_backlog(submission& s) {
    if (!backlog_.empty() || !try_send(s)) {
      if (!s.in_backlog) {
        s.in_backlog = true;
        backlog_.push_back(s.key);
      }
    }
  }

  // One connection to the broker.
  struct link {
    zmq::socket_t dealer;  // to the broker
    std::string busy;      // mdp: the key of the request in flight on it; empty when idle
  };

  zmq::socket_t open_dealer() {
    zmq::socket_t dealer(owner_.context_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::sndhwm, owner_.options_.send_hwm);
    apply_limits(dealer, owner_.options_.limits);
    apply_curve_client(dealer, owner_.options_.curve);
    dealer.connect(owner_.options_.endpoint);
    return dealer;
  }

  // Sends without blocking; false when the DEALER is at its high-water mark
  // (mdp: when every connection has its one request in flight).
  bool try_send(submission& s) {
    link* to = &links_.front();
    if (mdp_) {
      auto idle = std::find_if(links_.begin(), links_.end(), [](const link& l) { return l.busy.empty(); });
      if (idle == links_.end()) return false;
      to = &*idle;
    }
    // A DEALER adds no delimiter: the contract's empty frame 0 comes from the codec.
    zmq::multipart_t frames;
    if (mdp_) {
      std::vector<zmq::message_t> body;
      body.push_back(share_payload(s.payload));
      frames = encode_mdp_request(s.service, std::move(body));
    } else {
      frames = encode_client_request(s.service, s.head, share_payload(s.payload));
    }
    try {
      if (!frames.send(to->dealer, ZMQ_DONTWAIT)) return false;
    } catch (const zmq::error_t& e) {
      log_.error("client {}: send failed: {}", owner_.name_, e.what());
      return false;
    }
    if (mdp_) to->busy = s.key;
    owner_.counters_.sent.fetch_add(1);
    return true;
  }

  void flush_backlog() {
    while (!backlog_.empty()) {
      auto it = pending_.find(backlog_.front());
      if (it == pending_.end() || !it->second->in_backlog) {
        backlog_.pop_front();  // completed (timed out) while waiting
        continue;
      }
      if (!try_send(*it->second)) return;
      it->second->in_backlog = false;
      backlog_.pop_front();
    }
  }

  void receive_replies(link& from) {
    for (int i = 0; i < io_batch; ++i) {
      zmq::multipart_t frames;
      try {
        if (!frames.recv(from.dealer, ZMQ_DONTWAIT)) return;
      } catch (const zmq::error_t& e) {
        log_.error("client {}: receive failed: {}", owner_.name_, e.what());
        return;
      }
      if (mdp_) {
        on_mdp_reply(from, std::move(frames));
      } else {
        on_reply(std::move(frames));
      }
    }
  }

  // A stock broker's reply answers the one request in flight on its
  // connection (RFC 7). It has no code: a reply is a success, 200, with the
  // worker's body as the result (parsed when it is JSON).
  void on_mdp_reply(link& from, zmq::multipart_t&& frames) {
    const std::size_t count = frames.size();
    auto message = decode_client_reply(std::move(frames));
    if (!message || message->from != dialect::mdp) {
      owner_.counters_.malformed.fetch_add(1);
      log_.warn("client {}: malformed reply from broker dropped ({}; {} frames)", owner_.name_,
                message ? "not MDPC01" : message.error, count);
      return;
    }
    auto it = from.busy.empty() ? pending_.end() : pending_.find(from.busy);
    from.busy.clear();
    if (it == pending_.end()) {
      owner_.counters_.late.fetch_add(1);
      log_.debug("client {}: reply on an idle connection dropped", owner_.name_);
      return;
    }
    std::unique_ptr<submission> s = std::move(it->second);
    pending_.erase(it);
    reply r;
    r.code = code::ok;
    r.head = {{"id", s->id}, {"code", code::ok}, {"status", "ok"}};
    std::string text;
    for (zmq::message_t& f : message->body) {
      r.body.push_back(f.to_string());
      text += r.body.back();
    }
    nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    r.head["result"] = parsed.is_discarded() ? nlohmann::json(text) : std::move(parsed);
    r.latency = std::chrono::duration_cast<microseconds>(clock::now() - s->submitted_at);
    owner_.counters_.replies.fetch_add(1);
    complete(std::move(s), std::move(r));
  }

  void on_reply(zmq::multipart_t&& frames) {
    const std::string first =
        frames.empty() ? std::string() : sample(frames[0].data(), frames[0].size());
    const std::size_t count = frames.size();
    auto message = decode_client_reply(std::move(frames));
    if (!message || message->from != dialect::carico) {
      owner_.counters_.malformed.fetch_add(1);
      log_.warn("client {}: malformed reply from broker dropped ({}; {} frames, frame 0 {})",
                owner_.name_, message ? "MDPC01, not MDPCX1" : message.error, count, first);
      return;
    }
    const msgpack::object* id = message->head.find("id");
    if (id == nullptr) {
      owner_.counters_.malformed.fetch_add(1);
      log_.warn("client {}: reply without id dropped (service {}, header {})", owner_.name_,
                message->service, message->head.to_json().dump());
      return;
    }
    const std::string key = to_json(*id).dump();
    auto it = pending_.find(key);
    if (it == pending_.end()) {
      owner_.counters_.late.fetch_add(1);
      log_.debug("client {}: reply for id {} dropped: not outstanding (late or duplicate)",
                 owner_.name_, key);
      return;
    }
    std::unique_ptr<submission> s = std::move(it->second);
    pending_.erase(it);
    reply r;
    r.head = message->head.to_json();
    if (auto c = message->head.get_uint("code")) {
      r.code = *c;
    } else {
      log_.warn("client {}: reply for id {} has no code; taken as 500", owner_.name_, key);
      r.code = code::worker_failed;
    }
    r.body.reserve(message->body.size());
    for (zmq::message_t& f : message->body) r.body.push_back(f.to_string());
    r.latency = std::chrono::duration_cast<microseconds>(clock::now() - s->submitted_at);
    owner_.counters_.replies.fetch_add(1);
    complete(std::move(s), std::move(r));
  }

  // Times out, or resends, every request whose attempt is over.
  void purge_expired(time_point now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      auto [deadline, key] = *deadlines_.begin();
      deadlines_.erase(deadlines_.begin());
      auto it = pending_.find(key);
      if (it == pending_.end() || it->second->deadline != deadline) continue;  // stale entry
      submission& s = *it->second;
      if (s.resends_left > 0) {
        --s.resends_left;
        owner_.counters_.resends.fetch_add(1);
        log_.info("client {}: no reply for id {} in {} ms; sending it again", owner_.name_, key,
                  s.timeout.count());
        arm(s);
        if (!s.in_backlog) send_or_backlog(s);
        continue;
      }
      std::unique_ptr<submission> done = std::move(it->second);
      pending_.erase(it);
      owner_.counters_.timeouts.fetch_add(1);
      for (link& l : links_) {
        // Its late reply must not answer the next request sent there: a new socket.
        if (l.busy == key) l = link{open_dealer(), {}};
      }
      reply r = local_reply(
          code::expired, done->id,
          "timeout: no reply from broker in " + std::to_string(done->timeout.count()) + " ms",
          done->submitted_at);
      complete(std::move(done), std::move(r));
    }
  }

  void fail_all(const std::string& reason) {
    for (auto& [key, s] : pending_) {
      reply r = local_reply(code::queue_full, s->id, reason, s->submitted_at);
      complete(std::move(s), std::move(r));
    }
    pending_.clear();
    deadlines_.clear();
    backlog_.clear();
  }

  void complete(std::unique_ptr<submission> s, reply r) {
    owner_.outstanding_.fetch_sub(1);
    try {
      s->done(std::move(r));
    } catch (const std::exception& e) {
      log_.error("client {}: reply callback threw: {}", owner_.name_, e.what());
    } catch (...) {
      log_.error("client {}: reply callback threw", owner_.name_);
    }
  }

  client& owner_;                 // counters, queue, name
  spdlog::logger& log_;           // the owner's logger
  zmq::socket_t pipe_pull_;       // wake-ups from submit() and close()
  bool mdp_;                      // a stock broker (client_options::protocol)
  std::vector<link> links_;       // carico: one; mdp: client_options::connections
  bool stopping_{false};          // close() was seen
  std::unordered_map<std::string, std::unique_ptr<submission>> pending_;  // in flight, by key
  std::multimap<time_point, std::string> deadlines_;  // attempt deadlines; stale ones skipped
  std::deque<std::string> backlog_;                   // keys waiting for the DEALER, in order
};

client::client(zmq::context_t& context, client_options options,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      context_(context),
      pipe_push_(context, zmq::socket_type::push) {
  if (options_.name.empty()) options_.name = default_client_name();
  name_ = options_.name;
  if (options_.timeout_ms <= 0) options_.timeout_ms = 10000;
  if (options_.retries < 0) options_.retries = 0;
  pipe_endpoint_ = "inproc://carico-client-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
  zmq::socket_t pipe_pull(context, zmq::socket_type::pull);
  pipe_pull.bind(pipe_endpoint_);
  pipe_push_.set(zmq::sockopt::linger, 0);
  pipe_push_.connect(pipe_endpoint_);
  loop_ = std::make_unique<io_loop>(*this, std::move(pipe_pull));
  thread_ = std::thread([this] { loop_->run(); });
}

client::~client() { close(); }

std::future<reply> client::submit(std::string service, nlohmann::json head, std::string payload,
                                  std::optional<milliseconds> timeout) {
  auto promise = std::make_shared<std::promise<reply>>();
  std::future<reply> future = promise->get_future();
  submit(std::move(service), std::move(head), std::move(payload),
         [promise](reply r) { promise->set_value(std::move(r)); }, timeout);
  return future;
}

void client::submit(std::string service, nlohmann::json head, std::string payload,
                    reply_callback on_reply, std::optional<milliseconds> timeout) {
  auto s = std::make_unique<submission>();
  s->submitted_at = clock::now();
  s->done = std::move(on_reply);
  s->service = std::move(service);
  s->timeout = timeout && timeout->count() > 0 ? *timeout : milliseconds(options_.timeout_ms);
  // Through a stock broker a request has no key: a resend could run twice.
  s->resends_left = options_.protocol == dialect::mdp ? 0 : options_.retries;
  s->payload = std::make_shared<const std::string>(std::move(payload));
  counters_.submitted.fetch_add(1);

  if (!head.is_object() && !head.is_null()) {
    s->done(local_reply(code::bad_request, nullptr, "header must be a JSON object",
                        s->submitted_at));
    return;
  }
  if (head.is_null()) head = nlohmann::json::object();
  if (!head.contains("id")) head["id"] = next_id_.fetch_add(1);
  if (!head.contains("client")) head["client"] = name_;
  // The broker drops what the client gave up on (contract v2: timeout_ms).
  if (!head.contains("timeout_ms")) head["timeout_ms"] = s->timeout.count();
  s->id = head["id"];
  s->key = s->id.dump();
  header_result encoded = header::from_json(head);
  if (!encoded) {
    s->done(local_reply(code::bad_request, s->id, "bad header: " + encoded.error,
                        s->submitted_at));
    return;
  }
  s->head = std::move(*encoded.value);
  enqueue(std::move(s));
}

void client::enqueue(std::unique_ptr<submission> s) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    lock.unlock();
    s->done(local_reply(code::queue_full, s->id, "client closed", s->submitted_at));
    return;
  }
  outstanding_.fetch_add(1);
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(s));
  // One wake-up per batch: the I/O thread takes the whole queue when it wakes.
  if (was_empty) pipe_push_.send(zmq::message_t(), zmq::send_flags::dontwait);
}

reply client::call(std::string service, nlohmann::json head, std::string payload,
                   std::optional<milliseconds> timeout) {
  return submit(std::move(service), std::move(head), std::move(payload), timeout).get();
}

void client::close() {
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      closed_ = true;
      pipe_push_.send(zmq::message_t(), zmq::send_flags::dontwait);
    }
  }
  if (!thread_.joinable()) return;
  // From a reply callback: the loop stops once the callback returns; the
  // destructor, on another thread, joins it.
  if (thread_.get_id() == std::this_thread::get_id()) return;
  thread_.join();
  std::deque<std::unique_ptr<submission>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(queue_);
    pipe_push_.close();
  }
  for (auto& s : left) {
    outstanding_.fetch_sub(1);
    s->done(local_reply(code::queue_full, s->id, "client closed", s->submitted_at));
  }
  loop_.reset();
}

}  // namespace carico
