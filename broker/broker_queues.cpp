// The service queues and dispatch: waiting requests, the ring, re-dispatch
// and expiry.
#include "broker/broker.hpp"

#include <algorithm>
#include <charconv>

#include "broker/broker_util.hpp"

namespace carico {

void broker::requeue(std::uint64_t number, const known_worker& by, std::string_view why) {
  auto it = requests_.find(number);
  if (it == requests_.end()) return;
  request& r = it->second;
  r.holder = nullptr;
  if (r.fetch) {  // only its holder has the document
    fail_get(r, by, why);
    requests_.erase(it);
    return;
  }
  if (r.attempts >= options_.max_attempts) {
    ++stats_.expired;
    monitor_.on_expiry(number, r.target->name, "out of attempts, the last worker " + by.name);
    log_->warn("request {} failed: {} workers tried it (last {}, which {}), giving up", number,
               r.attempts, by.name, why);
    header head;
    head.set_encoded("id", r.id);
    head.set("request", r.number);
    head.set("code", code::expired);
    head.set("status", "error");
    head.set("error", "out of attempts: " + std::to_string(r.attempts) +
                          " workers were given it and none answered it (last " + by.name + ", which " +
                          std::string(why) + ")");
    head.set("attempts", r.attempts);
    finish_request(r, head, {}, request_state::expired, by.name);
    requests_.erase(it);
    return;
  }
  ++stats_.redispatched;
  monitor_.on_redispatch(number, by.name, r.target->name);
  log_->warn("request {} re-dispatched: worker {} {} on attempt {}", number, by.name, why,
             r.attempts);
  // It keeps its first deadline; past it, it waits no more.
  if (r.deadline <= batch_now_) {
    expire(r);
    requests_.erase(it);
    return;
  }
  note_deadline(r);
  r.target->queue.push_front(number);
}

void broker::expire(request& r) {
  ++stats_.expired;
  monitor_.on_expiry(r.number, r.target->name, "its deadline passed while it waited");
  log_->warn("request {} expired: no {} worker took it within {} ms", r.number, r.target->name,
             r.timeout_ms);
  // Refused before any worker got it: not remembered, a resend is a new request.
  if (!r.key.empty() && r.attempts == 0) {
    keyed_.erase(r.key);
    r.key.clear();
  }
  header head;
  head.set_encoded("id", r.id);
  head.set("request", r.number);
  head.set("code", code::expired);
  head.set("status", "error");
  head.set("error", "expired: no " + r.target->name + " worker took it within " +
                        std::to_string(r.timeout_ms) + " ms");
  head.set("attempts", r.attempts);
  finish_request(r, head, {}, request_state::expired, r.holder ? r.holder->name : "");
}

std::uint64_t broker::effective_timeout(std::optional<std::uint64_t> asked) const {
  constexpr std::uint64_t longest = std::uint64_t{30} * 24 * 3600 * 1000;
  if (!asked || *asked == 0) return static_cast<std::uint64_t>(options_.queue_timeout_ms);
  return std::min(*asked, longest);
}

void broker::expire_waiting(time_point now) {
  if (now < next_expiry_) return;
  time_point next = time_point::max();
  auto past = [&](const request& r) {
    if (r.deadline <= now) return true;
    next = std::min(next, r.deadline);
    return false;
  };
  for (auto& [name, s] : services_) {
    // The requests kept in full: any of them may be past due (deadlines come
    // from each request's timeout_ms, so they need not grow along the queue).
    std::size_t kept = 0;
    for (std::uint64_t number : s->queue) {
      auto it = requests_.find(number);
      if (it == requests_.end()) continue;  // answered meanwhile
      if (past(it->second)) {
        expire(it->second);
        requests_.erase(it);
      } else {
        s->queue[kept++] = number;
      }
    }
    s->queue.resize(kept);
    // The parked ones in order, while the oldest is past due; the rest are
    // checked when they reach the front (dispatch never sends one past due).
    while (!s->parked.empty()) {
      const std::optional<time_point> due = s->parked.front_deadline();
      if (!due) break;
      if (*due > now) {
        next = std::min(next, *due);
        break;
      }
      request& r = unpark(*s);
      const std::uint64_t number = r.number;
      expire(r);
      requests_.erase(number);
    }
  }
  // Reloaded requests kept for their old worker, and keyed ones waiting for
  // their row's commit, wait too.
  for (auto& [worker, numbers] : sticky_) {
    for (std::uint64_t number : numbers) {
      auto it = requests_.find(number);
      if (it == requests_.end() || it->second.holder != nullptr) continue;
      if (past(it->second)) {
        expire(it->second);
        requests_.erase(it);
      }
    }
  }
  for (const auto& [seq, number] : uncommitted_) {
    auto it = requests_.find(number);
    if (it != requests_.end()) next = std::min(next, it->second.deadline);
  }
  next_expiry_ = next;
}

service& broker::require_service(const std::string& name) {
  auto it = services_.find(name);
  if (it != services_.end()) return *it->second;
  auto s = std::make_unique<service>();
  s->name = name;
  service& ref = *s;
  services_.emplace(name, std::move(s));
  return ref;
}

// A service's waiting requests: the full ones first (re-dispatched requests go
// to their front), then the parked ones. Once a service has parked requests,
// every newcomer is parked behind them, so arrival order is kept.
bool broker::should_park(const service& s) const {
  return !s.parked.empty() || s.queue.size() >= options_.park_after;
}

std::size_t broker::waiting(const service& s) const { return s.queue.size() + s.parked.size(); }

// Puts r, not yet in requests_, at the back of s's queue.
void broker::queue_back(service& s, request&& r) {
  if (should_park(s)) {
    s.parked.push(std::move(r));
    return;
  }
  const std::uint64_t number = r.number;
  requests_.emplace(number, std::move(r));
  s.queue.push_back(number);
}

// Takes s's oldest parked request back into requests_, with the clients that
// sent it again while it was parked as its waiters.
request& broker::unpark(service& s) {
  request r = s.parked.pop();
  r.target = &s;
  if (!parked_waiters_.empty()) {
    if (auto it = parked_waiters_.find(r.number); it != parked_waiters_.end()) {
      for (std::string& c : it->second) {
        if (r.client.empty()) {
          r.client = std::move(c);
        } else if (c != r.client && std::find(r.waiters.begin(), r.waiters.end(), c) == r.waiters.end()) {
          r.waiters.push_back(std::move(c));
        }
      }
      parked_waiters_.erase(it);
    }
  }
  const std::uint64_t number = r.number;
  return requests_.emplace(number, std::move(r)).first->second;
}

void broker::dispatch(service& s) {
  if (shutting_down_) return;  // what waits stays in the journal for the next start
  while (!s.queue.empty() || !s.parked.empty()) {
    known_worker* w = s.ring.next_eligible();
    if (w == nullptr) return;
    request* r = nullptr;
    if (s.queue.empty()) {
      r = &unpark(s);
    } else {
      auto it = requests_.find(s.queue.front());
      s.queue.pop_front();
      if (it == requests_.end()) continue;  // answered while it waited
      r = &it->second;
    }
    if (r->deadline <= batch_now_) {  // never dispatched past its deadline
      const std::uint64_t number = r->number;
      expire(*r);
      requests_.erase(number);
      continue;
    }
    send_request(*w, *r);
  }
}

void broker::send_request(known_worker& w, request& r) {
  ++r.attempts;
  r.holder = &w;
  r.dispatched_at = batch_now_;
  r.dispatched_ms = batch_unix_ms_;
  w.in_flight.push_back(r.number);
  // The address is the broker's token for the request, its number: the
  // worker echoes it, and the REPLY is matched by it (whatever the dialects).
  char token[24];
  const auto [end, ec] = std::to_chars(token, token + sizeof token, r.number);
  const std::string_view address(token, static_cast<std::size_t>(end - token));
  // A carico worker's header: the client's (none from a stock client) with
  // the broker's `request` and `attempt`. A stock worker gets the body alone.
  zmq::message_t head;
  if (w.from == dialect::carico) {
    head = append_uints(r.head, {{"request", r.number}, {"attempt", r.attempts}});
  }
  if (r.framed) {
    std::vector<zmq::message_t> body;
    for (const std::string& f : decode_frames(r.payload.to_string_view())) {
      body.emplace_back(f.data(), f.size());
    }
    send_addressed(to_workers_, w.identity, w.from, command::request, address, &head, body.data(),
                   body.size());
  } else {
    zmq::message_t payload;
    payload.copy(r.payload);  // shares the buffer; kept for a re-dispatch
    send_addressed(to_workers_, w.identity, w.from, command::request, address, &head, &payload, 1);
  }
  if (journal_ && !r.fetch) {
    journal_event e;
    e.what = journal_event::kind::dispatched;
    e.row.number = r.number;
    e.row.worker = w.name;
    e.row.attempts = r.attempts;
    e.row.dispatched_ms = r.dispatched_ms;
    journal_->post(std::move(e));
  }
}

}  // namespace carico
