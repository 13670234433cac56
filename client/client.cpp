#include "client/client.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <unordered_map>

#include <unistd.h>

#include <zmq_addon.hpp>

#include "shared/codec.hpp"
#include "shared/endpoint_list.hpp"
#include "shared/header.hpp"
#include "shared/logging.hpp"
#include "shared/runtime.hpp"

namespace carico {
namespace {

using std::chrono::microseconds;

// Replies read per wake-up before the loop looks at its other duties.
constexpr int io_batch = 256;

// Several brokers: ZMTP PING interval, and silence that drops a connection.
constexpr int heartbeat_ivl_ms = 1000;
constexpr int heartbeat_timeout_ms = 3000;
// A connection lost while another holds: the wait before resending over it.
constexpr milliseconds pipe_settle{100};

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
        mdp_(owner.options_.protocol == dialect::mdp),
        // The monitor reports tcp and ipc connections, never inproc ones.
        watched_(std::none_of(owner.endpoints_.begin(), owner.endpoints_.end(),
                              [](const std::string& e) { return e.rfind("inproc://", 0) == 0; })),
        no_broker_after_(std::max(1L, owner.options_.no_broker_ms)) {
    const int count = mdp_ ? std::max(1, owner.options_.connections) : 1;
    for (int i = 0; i < count; ++i) links_.push_back(open_link());
  }

  // Serves until the client is closed, then completes everything left with 503.
  void run() {
    std::vector<zmq::pollitem_t> items;
    while (!stopping_) {
      items.clear();
      items.push_back({pipe_pull_.handle(), 0, ZMQ_POLLIN, 0});
      for (auto& l : links_) {
        // A carico link with a backlog waits for room to send too.
        const bool want_out = !mdp_ && !backlog_.empty();
        items.push_back({l->dealer.handle(), 0,
                         static_cast<short>(ZMQ_POLLIN | (want_out ? ZMQ_POLLOUT : 0)), 0});
        items.push_back({l->monitor.handle(), 0, ZMQ_POLLIN, 0});
      }
      try {
        zmq::poll(items.data(), items.size(), milliseconds(poll_timeout_ms()));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log_.error("client {}: poll failed: {}", owner_.name_, e.what());
        break;
      }
      if (items[0].revents & ZMQ_POLLIN) take_submissions();
      // Connection events first: a reconnect resends before replies are read.
      for (std::size_t i = 0; i < links_.size(); ++i) {
        if (items[2 * i + 2].revents & ZMQ_POLLIN) watch_connection(*links_[i]);
      }
      for (std::size_t i = 0; i < links_.size(); ++i) {
        if (items[2 * i + 1].revents & ZMQ_POLLIN) receive_replies(*links_[i]);
      }
      if (!backlog_.empty()) flush_backlog();
      const time_point now = clock::now();
      if (resend_at_ && *resend_at_ <= now) {
        resend_at_.reset();
        // Reading ZMQ_EVENTS makes the DEALER take its pending commands: the
        // lost connection's pipe is gone before anything is sent.
        (void)links_.front()->dealer.get(zmq::sockopt::events);
        resend_unanswered("the broker at " + gone_ + " is gone");
      }
      purge_unreached(now);
      purge_expired(now);
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
    if (unreachable_) {
      // No broker answered before: say so at once rather than after 2 s more.
      fail_unreached(std::move(s));
      return;
    }
    submission& ref = *s;
    pending_.emplace(ref.key, std::move(s));
    arm(ref);
    if (watched_ && !ever_connected_) {
      unreached_.emplace_back(ref.submitted_at + no_broker_after_, ref.key);
    }
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

  // One connection to the broker and the monitor that watches it.
  struct link {
    zmq::socket_t dealer;   // to the broker
    zmq::socket_t monitor;  // PAIR: the dealer's connection events
    std::string busy;       // mdp: the key of the request in flight on it; empty when idle
    std::vector<std::string> up;  // endpoints whose handshake succeeded, no disconnect since;
                            // the last is the newest
    bool lost{false};       // it was connected once and then no endpoint was

    link() = default;
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    // Stops the monitor before either socket closes: libzmq's end of the
    // monitor pipe would otherwise block on an event nobody reads.
    ~link() {
      if (dealer && monitor) zmq_socket_monitor(dealer.handle(), nullptr, 0);
    }
  };

  std::unique_ptr<link> open_link() {
    auto l = std::make_unique<link>();
    l->dealer = zmq::socket_t(owner_.context_, zmq::socket_type::dealer);
    l->dealer.set(zmq::sockopt::linger, 0);
    l->dealer.set(zmq::sockopt::sndhwm, owner_.options_.send_hwm);
    // carico: nothing waits inside ZeroMQ for a connection. A request sent
    // while there is none stays in the backlog, where its timeout can still
    // withdraw it; and what a lost connection held is not delivered later
    // behind the resends (on_reconnect sends it again itself).
    // A stock broker's client queues as before, unless it lists several
    // brokers: then a request must not wait in the pipe of one that is down.
    if (!mdp_ || owner_.endpoints_.size() > 1) l->dealer.set(zmq::sockopt::immediate, true);
    if (owner_.endpoints_.size() > 1) {
      // A broker that hangs (stopped, partitioned) keeps its TCP connection
      // up and answers nothing: ZMTP heartbeats (the broker's ZeroMQ answers
      // PING by itself) drop such a connection, and what was sent over it
      // goes to the broker that took over, as after a crash.
      l->dealer.set(zmq::sockopt::heartbeat_ivl, heartbeat_ivl_ms);
      l->dealer.set(zmq::sockopt::heartbeat_timeout, heartbeat_timeout_ms);
    }
    apply_limits(l->dealer, owner_.options_.limits);
    apply_curve_client(l->dealer, owner_.options_.curve);
    // Watched before it connects, so that no event is missed.
    const std::string monitor_endpoint =
        "inproc://carico-client-monitor-" +
        std::to_string(reinterpret_cast<std::uintptr_t>(&owner_)) + "-" +
        std::to_string(++monitors_);
    constexpr int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(l->dealer.handle(), monitor_endpoint.c_str(), events) != 0) {
      throw zmq::error_t();
    }
    l->monitor = zmq::socket_t(owner_.context_, zmq::socket_type::pair);
    l->monitor.set(zmq::sockopt::linger, 0);
    l->monitor.connect(monitor_endpoint);
    // Every broker listed: standbys bind nothing, so only the active one's
    // connection completes (ZeroMQ retries the others every 100 ms).
    for (const std::string& e : owner_.endpoints_) l->dealer.connect(e);
    return l;
  }

  // The endpoint a monitor event names, as the user listed it when it is one
  // of the list (ZeroMQ may name it resolved: localhost as 127.0.0.1).
  std::string listed(const zmq::message_t& address) const {
    std::string named = address.to_string();
    for (const std::string& e : owner_.endpoints_) {
      if (e == named) return e;
    }
    if (owner_.endpoints_.size() == 1) return owner_.endpoints_.front();
    return named;
  }

  // Reads the link's connection events (frame 0: event and value; frame 1:
  // the endpoint). A handshake that succeeds when no broker was connected
  // after one had been (a broker restarted, or another took over) sends every
  // unanswered request again.
  void watch_connection(link& l) {
    for (;;) {
      zmq::multipart_t event;
      if (!event.recv(l.monitor, ZMQ_DONTWAIT)) return;
      if (event.empty() || event[0].size() < 6) continue;
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      std::memcpy(&id, event[0].data(), sizeof id);
      std::memcpy(&value, static_cast<const char*>(event[0].data()) + 2, sizeof value);
      const std::string endpoint = event.size() > 1 ? listed(event[1]) : std::string();
      switch (id) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: {
          const bool again = l.lost;
          std::erase(l.up, endpoint);
          l.up.push_back(endpoint);
          l.lost = false;
          ever_connected_ = true;
          unreachable_ = false;
          unreached_.clear();
          owner_.set_broker(endpoint);
          if (again) {
            on_reconnect(endpoint);
          } else if (endpoint != last_broker_) {
            log_.info("client {}: connected to the broker at {}", owner_.name_, endpoint);
          }
          last_broker_ = endpoint;
          break;
        }
        case ZMQ_EVENT_DISCONNECTED:
          if (std::erase(l.up, endpoint) == 0) break;  // its handshake never completed
          if (l.up.empty()) {
            l.lost = true;
            owner_.set_broker({});
            log_.warn("client {}: lost the connection to the broker at {}; resending when {} is "
                      "back",
                      owner_.name_, endpoint,
                      owner_.endpoints_.size() == 1 ? "it" : "a broker at one of " + all_brokers());
          } else {
            // Another broker's connection holds (the new active one connected
            // before the old one's was dropped: a hung broker, cut by the
            // heartbeats). What went over the lost connection is lost with it,
            // and the DEALER does not say which requests those were: all go
            // again, over the connection that holds (keys: each answered once).
            owner_.set_broker(l.up.back());
            log_.warn("client {}: lost the connection to the broker at {}; on the broker at {} "
                      "now",
                      owner_.name_, endpoint, l.up.back());
            last_broker_ = l.up.back();
            // Not at once: the monitor may tell before the DEALER has dropped
            // the lost connection's pipe, and a resend now could go into it.
            if (!mdp_) {
              gone_ = endpoint;
              resend_at_ = clock::now() + pipe_settle;
            }
          }
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          handshake_failure_ = "the broker refused this client (ZAP status " +
                               std::to_string(value) + ": check its CURVE keys)";
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
          handshake_failure_ = "the handshake failed (not a carico broker, or CURVE keys that "
                               "do not match)";
          break;
        default: break;
      }
    }
  }

  // The broker is back: what it did not answer may have died with it (kill -9
  // before its journal had the request), so every unanswered request goes
  // again now rather than at its timeout. The (client, id) key makes each
  // resend exactly once at the broker. Stock MDP has no key: nothing is resent.
  void on_reconnect(const std::string& endpoint) {
    owner_.counters_.reconnects.fetch_add(1);
    const std::string where = endpoint == last_broker_
                                  ? endpoint + " again"
                                  : endpoint + " (was at " + last_broker_ + ")";
    resend_unanswered("connected to the broker at " + where);
  }

  // Every unanswered request that went out goes again, each taking one of its
  // retries; why says what happened, for the log.
  void resend_unanswered(const std::string& why) {
    std::size_t resent = 0;
    std::size_t out_of_retries = 0;
    if (!mdp_) {
      for (auto& [key, s] : pending_) {
        if (s->in_backlog) continue;  // not sent yet: it goes anyway
        if (s->resends_left <= 0) {
          ++out_of_retries;
          continue;
        }
        --s->resends_left;
        owner_.counters_.resends.fetch_add(1);
        ++resent;
        arm(*s);
        send_or_backlog(*s);
      }
    }
    log_.info("client {}: {}; {} unanswered requests sent again{}", owner_.name_, why, resent,
              out_of_retries == 0 ? std::string()
                                  : ", " + std::to_string(out_of_retries) +
                                        " not (no retries left: they wait for their timeout)");
  }

  // carico: the DEALER was connected and is not now (mdp resends nothing).
  bool connection_lost() const { return !mdp_ && links_.front()->lost; }

  // The poll's timeout: the next attempt deadline or no-broker verdict.
  long poll_timeout_ms() const {
    std::optional<time_point> next = resend_at_;
    if (!deadlines_.empty() && (!next || deadlines_.begin()->first < *next)) {
      next = deadlines_.begin()->first;
    }
    if (!unreached_.empty() && (!next || unreached_.front().first < *next)) {
      next = unreached_.front().first;
    }
    return next ? poll_timeout(*next, 60000) : -1;
  }

  // Requests submitted no_broker_ms ago on a socket that never connected: no
  // broker is there. They fail with 503, and so do later ones until it connects.
  void purge_unreached(time_point now) {
    while (!unreached_.empty() && unreached_.front().first <= now) {
      const std::string key = std::move(unreached_.front().second);
      const time_point verdict_at = unreached_.front().first;
      unreached_.pop_front();
      auto it = pending_.find(key);
      if (it == pending_.end() || it->second->submitted_at + no_broker_after_ != verdict_at) {
        continue;  // completed meanwhile
      }
      if (!unreachable_) {
        unreachable_ = true;
        log_.warn("client {}: {}", owner_.name_, no_broker_text());
      }
      std::unique_ptr<submission> s = std::move(it->second);
      pending_.erase(it);
      forget_on_links(key);
      fail_unreached(std::move(s));
    }
  }

  void fail_unreached(std::unique_ptr<submission> s) {
    owner_.counters_.no_broker.fetch_add(1);
    reply r = local_reply(code::queue_full, s->id, no_broker_text(), s->submitted_at);
    complete(std::move(s), std::move(r));
  }

  // "tcp://a:5555" or "tcp://a:5555, tcp://b:5555".
  std::string all_brokers() const { return describe_endpoints(owner_.endpoints_); }

  // "no broker at tcp://127.0.0.1:5555: nothing answered in 2 s"; with a list,
  // every endpoint is named.
  std::string no_broker_text() const {
    const long ms = no_broker_after_.count();
    const std::string after = ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                                             : std::to_string(ms) + " ms";
    std::string text = "no broker at " + all_brokers() + ": ";
    if (handshake_failure_.empty()) return text + "nothing answered in " + after;
    return text + "connected, but " + handshake_failure_ + " (for " + after + ")";
  }

  // mdp: a request that completed locally must not be answered by a late reply
  // on its connection, which would then answer the next request sent there.
  void forget_on_links(const std::string& key) {
    for (auto& l : links_) {
      if (l->busy == key) l = open_link();
    }
  }

  // Sends without blocking; false when the DEALER is at its high-water mark
  // (mdp: when every connection has its one request in flight).
  bool try_send(submission& s) {
    link* to = links_.front().get();
    if (mdp_) {
      auto idle = std::find_if(links_.begin(), links_.end(),
                               [](const std::unique_ptr<link>& l) { return l->busy.empty(); });
      if (idle == links_.end()) return false;
      to = idle->get();
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
      if (!ever_connected_) {
        // A message proves a broker is there, whatever the monitor said so far.
        ever_connected_ = true;
        unreachable_ = false;
        unreached_.clear();
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
      // With the connection lost, or never made, a resend would only wait in
      // the backlog behind this one: the request ends here, and a restart
      // shorter than the timeout is ridden through by on_reconnect instead.
      const bool lost = connection_lost();
      const bool never = !mdp_ && watched_ && !ever_connected_;
      if (s.resends_left > 0 && !lost && !never) {
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
      forget_on_links(key);
      reply r = local_reply(
          code::expired, done->id,
          "timeout: no reply from broker in " + std::to_string(done->timeout.count()) + " ms" +
              (lost ? " (the connection to it is lost)" : never ? " (no connection to it)" : ""),
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
    unreached_.clear();
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
  bool watched_;                  // the endpoint's connections are seen by a monitor
  milliseconds no_broker_after_;  // client_options::no_broker_ms
  std::vector<std::unique_ptr<link>> links_;  // carico: one; mdp: client_options::connections
  std::uint64_t monitors_{0};     // monitor endpoints made, for unique names
  bool ever_connected_{false};    // some link's handshake succeeded once
  bool unreachable_{false};       // never connected, and a request waited no_broker_ms for it
  std::string handshake_failure_; // why the last handshake failed; empty when none did
  std::string last_broker_;       // the endpoint of the last completed handshake
  std::optional<time_point> resend_at_;  // resend everything then: a connection was lost
                                  // while another holds
  std::string gone_;              // the endpoint of that lost connection, for the log
  std::deque<std::pair<time_point, std::string>> unreached_;  // requests sent before any
                                  // connection: (submitted + no_broker_ms, key), in order
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
  endpoint_list listed = parse_endpoint_list(options_.endpoint);
  if (!listed) throw std::invalid_argument(listed.error);
  endpoints_ = std::move(listed.endpoints);
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

std::string client::broker() const {
  std::lock_guard lock(broker_mutex_);
  return broker_;
}

void client::set_broker(std::string endpoint) {
  std::lock_guard lock(broker_mutex_);
  broker_ = std::move(endpoint);
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
