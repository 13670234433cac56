// The exactly-once ledger: the journal, keyed requests, held replies, the
// reply cache, and the end of every request.
#include "broker/broker.hpp"

#include <algorithm>

#include "broker/broker_util.hpp"
#include "broker/leadership.hpp"

namespace carico {
namespace {


}  // namespace

// With key (the request's, already worked out), client and id are taken from
// it rather than rendered from the header a second time.
journal_record broker::record_of(const request& r, const header& head,
                                 const request_key_parts* key) const {
  journal_record out;
  out.number = r.number;
  out.service = r.target->name;
  out.state = r.holder ? request_state::dispatched : request_state::queued;
  out.worker = r.holder ? r.holder->name : "";
  out.attempts = r.attempts;
  out.bytes = r.payload.size();
  out.received_ms = r.received_ms;
  out.dispatched_ms = r.dispatched_ms;
  if (key != nullptr) {
    out.client = key->client;
    out.client_id = key->client_id;
  } else {
    out.client = std::string(head.get_string("client").value_or(""));
    if (const msgpack::object* id = head.find("id")) {
      out.client_id = to_json_text(*id);
    }
  }
  return out;
}

// Keeps the client's header as r.head, encoded, for forwarding: the frame as
// received when it has no `request` or `attempt` (the broker adds its own at
// each dispatch), re-encoded without them otherwise. Its `id` goes to r.id.
void broker::keep_header(request& r, header& head, zmq::message_t&& frame) {
  if (const msgpack::object* id = head.find("id")) r.id = header::encode_value(*id);
  if (head.contains("request") || head.contains("attempt")) {
    head.erase("request");
    head.erase("attempt");
    r.head = head.encode();
  } else {
    r.head = std::move(frame);
  }
}

void broker::open_journal() {
  // main.cpp opens a PostgreSQL journal itself before the broker binds (a
  // standby binds nothing); anything else is opened here.
  if (options_.opened_journal) {
    journal_ = std::exchange(options_.opened_journal, nullptr);
  } else {
    journal_ = carico::open_journal(journal_options_for(options_), log_);
  }
  journal_->set_on_commit([this] { journal_commits_.wake(); });
  journal_->defer_posts();  // handed over once per pass, in flush_sends()
  journal_keys_ = std::make_unique<key_filter>();
  journal_->for_each_key([this](std::string_view client, std::string_view client_id) {
    journal_keys_->add(join_key(client, client_id));
  });
  next_request_ = journal_->first_number();
  reload_unfinished();
  log_->info("journal {}: next request number {}, {} requests reloaded", journal_->path(),
             next_request_, requests_.size());
}

void broker::reload_unfinished() {
  const time_point now = clock::now();
  const std::int64_t now_ms = unix_ms();
  for (journal_unfinished& u : journal_->take_unfinished()) {
    // A stock client's request was kept with no header (accept_request).
    const bool stock = u.head.empty();
    header_result head = stock ? header_result{header(), {}}
                               : header::decode(u.head.data(), u.head.size());
    if (!head) {
      log_->error("journal: request {} has an unreadable header ({}); marked failed",
                  u.record.number, head.error);
      journal_event e;
      e.what = journal_event::kind::finished;
      e.row = u.record;
      e.row.state = request_state::failed;
      e.row.code = code::worker_failed;
      e.row.completed_ms = now_ms;
      journal_->post(std::move(e));
      continue;
    }
    service& s = require_service(u.record.service);
    request r;
    r.number = u.record.number;
    r.target = &s;
    if (stock) {
      r.from = dialect::mdp;
      r.framed = true;
    } else {
      keep_header(r, *head.value, zmq::message_t(u.head.data(), u.head.size()));
    }
    r.payload = zmq::message_t(u.payload.data(), u.payload.size());
    r.attempts = u.record.attempts;
    r.received_ms = u.record.received_ms;
    r.received_at = steady_time_of(u.record.received_ms, now, now_ms);
    r.timeout_ms = effective_timeout(head.value->get_uint("timeout_ms"));
    r.deadline = r.received_at + milliseconds(r.timeout_ms);
    note_deadline(r);
    if (auto key = request_key(*head.value)) {
      r.key = key->text;
      keyed_[r.key] = r.number;
    }
    log_->info("request {} reloaded from the journal service={} state={} attempts={}", r.number,
               s.name, request_state_name(u.record.state), r.attempts);
    // Whoever held it is gone with the old broker's sockets: queue it again,
    // first for the same worker if it had one.
    if (u.record.state == request_state::dispatched && !u.record.worker.empty()) {
      sticky_[u.record.worker].push_back(r.number);
      sticky_until_ = now + 2 * expiry_;
      next_tick_ = std::min(next_tick_, sticky_until_);
      requests_.emplace(r.number, std::move(r));
    } else {
      queue_back(s, std::move(r));
    }
  }
}

// Gives the reloaded requests kept for `returning` to it (those it cannot take
// now go to the front of their queue); with nullptr, the wait is over and all
// of them go to the front of their queues.
void broker::release_sticky(known_worker* returning) {
  std::vector<std::vector<std::uint64_t>> lists;
  if (returning == nullptr) {
    for (auto& [name, numbers] : sticky_) lists.push_back(std::move(numbers));
    sticky_.clear();
    log_->info("reloaded requests no longer kept for their old workers");
  } else {
    auto it = sticky_.find(returning->name);
    if (it == sticky_.end()) return;
    lists.push_back(std::move(it->second));
    sticky_.erase(it);
  }
  std::vector<service*> touched;
  for (const auto& numbers : lists) {
    for (auto n = numbers.rbegin(); n != numbers.rend(); ++n) {
      auto it = requests_.find(*n);
      if (it == requests_.end()) continue;
      request& r = it->second;
      if (returning != nullptr && returning->served == r.target && returning->eligible()) {
        log_->info("request {} given back to {}, which held it before the restart", r.number,
                   returning->name);
        send_request(*returning, r);
        continue;
      }
      r.target->queue.push_front(r.number);
      if (std::find(touched.begin(), touched.end(), r.target) == touched.end()) {
        touched.push_back(r.target);
      }
    }
  }
  for (service* s : touched) dispatch(*s);
}

void broker::stop_if_fenced() const {
  if (journal_ && journal_->fenced()) {
    throw journal_fenced("journal " + journal_->path() + ": " + journal_->health().error);
  }
}

void broker::on_journal_commit() {
  // Fenced: committed() will not move again. run() ends here, without flushing.
  stop_if_fenced();
  const std::uint64_t committed = journal_->committed();
  while (!held_replies_.empty() && held_replies_.front().seq <= committed) {
    held_reply& h = held_replies_.front();
    send_to_client(h.client, h.to, h.service, std::move(h.head), std::move(h.body));
    held_replies_.pop_front();
  }
  std::vector<service*> ready;
  while (!uncommitted_.empty() && uncommitted_.front().first <= committed) {
    auto it = requests_.find(uncommitted_.front().second);
    uncommitted_.pop_front();
    if (it == requests_.end()) continue;
    service* s = it->second.target;
    if (should_park(*s)) {
      s->parked.push(std::move(it->second));
      requests_.erase(it);
    } else {
      s->queue.push_back(it->first);
    }
    if (std::find(ready.begin(), ready.end(), s) == ready.end()) ready.push_back(s);
  }
  for (service* s : ready) dispatch(*s);
}

void broker::send_after_commit(std::uint64_t seq, const std::string& client, dialect to,
                               std::string_view service, zmq::message_t&& head_frame,
                               std::vector<zmq::message_t>&& body) {
  if (!journal_ || journal_->committed() >= seq) {
    send_to_client(client, to, service, std::move(head_frame), std::move(body));
    return;
  }
  held_replies_.push_back(
      {seq, client, to, std::string(service), std::move(head_frame), std::move(body)});
}

// Hands the access log the record of r, which ends now with `code`.
void broker::log_access(request& r, std::uint64_t code, request_state state,
                        std::string_view worker) {
  const time_point now = clock::now();
  auto us = [](time_point from, time_point to) {
    return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  };
  const bool dispatched = r.attempts > 0;
  access_record a;
  a.number = r.number;
  a.code = code;
  a.outcome = std::string(request_state_name(state));
  a.service = r.target->name;
  a.worker = std::string(worker);
  a.attempts = r.attempts;
  a.client = r.client;
  a.stock = r.from == dialect::mdp;
  a.head.copy(r.head);  // shares a large buffer; a small one is copied inline
  a.bytes = r.payload.size();
  a.queued_us = us(r.received_at, dispatched ? r.dispatched_at : now);
  a.worker_us = dispatched ? us(r.dispatched_at, now) : 0;
  a.total_us = us(r.received_at, now);
  access_.add(std::move(a));
}

// The final reply of r goes to its client and to every resend waiting for it,
// once the journal holds the outcome; the reply is remembered under r's key so
// that a later resend gets it again. The caller erases r.
void broker::finish_request(request& r, header& head, std::vector<zmq::message_t>&& body,
                            request_state state, std::string_view worker) {
  finish_request(r, head.encode(), head.get_uint("code").value_or(0), std::move(body), state,
                 worker);
}

// The same with the reply header encoded (once, for the journal, the cache and
// the replies); result_code is its `code`.
void broker::finish_request(request& r, zmq::message_t&& head_frame, std::uint64_t result_code,
                            std::vector<zmq::message_t>&& body, request_state state,
                            std::string_view worker) {
  if (r.quota_bytes > 0) quota_.release(r.client, r.quota_bytes);
  r.quota_bytes = 0;
  monitor_.on_finished(r, result_code, batch_now_);
  if (access_.enabled()) log_access(r, result_code, state, worker);
  std::uint64_t seq = 0;
  // The reply, for the reply cache and the journal: only a request with a key
  // can be sent again, so only its reply is kept.
  const bool keep = !r.key.empty();
  const std::string_view encoded(head_frame.data<char>(), head_frame.size());  // the header
  std::string packed = keep ? encode_frames(body) : std::string();  // the body frames
  if (keep) {
    answered_.put(r.key, r.number, r.target->name, encoded, packed);
    keyed_.erase(r.key);
  }
  if (journal_ && !r.fetch) {
    journal_event e;
    e.what = journal_event::kind::finished;
    e.row.number = r.number;
    e.row.state = state;
    e.row.worker = std::string(worker);
    e.row.attempts = r.attempts;
    e.row.completed_ms = unix_ms();
    e.row.code = result_code;
    // The reply, kept with the row when it can be asked for again; its
    // `result` is read from the header on the writer's thread either way.
    e.head = encoded;
    e.body = std::move(packed);
    e.reply_kept = keep;
    seq = journal_->post(std::move(e));
  }
  if (r.from == dialect::mdp && result_code != code::ok) {
    // MDP/0.1 has no error reply: the stock client's own timeout takes over.
    ++stats_.mdp_dropped;
    log_->info("no reply to stock client={} for request {}: code {} (MDP/0.1 has no error reply)",
               client_label(r.client), r.number, result_code);
    return;
  }
  if (r.waiters.empty()) {  // the common case: one client, no list to build
    if (!r.client.empty()) {
      send_after_commit(seq, r.client, r.from, r.target->name, std::move(head_frame),
                        std::move(body));
    }
    return;
  }
  std::vector<const std::string*> to;
  if (!r.client.empty()) to.push_back(&r.client);
  for (const std::string& w : r.waiters) to.push_back(&w);
  for (std::size_t i = 0; i < to.size(); ++i) {
    std::vector<zmq::message_t> frames;
    if (i + 1 == to.size()) {
      frames = std::move(body);
    } else {
      for (zmq::message_t& f : body) frames.emplace_back().copy(f);
    }
    zmq::message_t frame;
    frame.copy(head_frame);
    send_after_commit(seq, *to[i], r.from, r.target->name, std::move(frame), std::move(frames));
  }
}

// A request whose (client, id) the broker has seen: an unanswered one gains a
// waiter, an answered one is answered again from memory or the journal.
// Returns false when the key is new.
bool broker::answer_resend(const std::string& client, const request_key_parts& key,
                           std::uint64_t timeout_ms) {
  if (auto it = keyed_.find(key.text); it != keyed_.end()) {
    // Unanswered: in requests_, or else parked (a key leaves keyed_ only when
    // its request is answered).
    const std::uint64_t number = it->second;
    if (auto found = requests_.find(number); found != requests_.end()) {
      request& r = found->second;
      // The client still waits: a waiting request's deadline runs from its
      // latest send (a reloaded one's first deadline may have passed while
      // the broker was down).
      const time_point wanted = batch_now_ + milliseconds(timeout_ms);
      if (r.holder == nullptr && wanted > r.deadline) {
        r.deadline = wanted;
        r.timeout_ms = timeout_ms;
      }
      if (r.client.empty()) {
        r.client = client;
      } else if (r.client != client &&
                 std::find(r.waiters.begin(), r.waiters.end(), client) == r.waiters.end()) {
        r.waiters.push_back(client);
      }
    } else {
      std::vector<std::string>& waiters = parked_waiters_[number];
      if (std::find(waiters.begin(), waiters.end(), client) == waiters.end()) {
        waiters.push_back(client);
      }
    }
    ++stats_.resends;
    log_->info("request {} sent again by client={} name={} id={}: waiting for the same outcome",
               number, client_label(client), key.client, key.client_id);
    return true;
  }
  cached_reply again;
  const char* source = "memory";
  if (std::optional<cached_reply> c = answered_.find(key.text)) {
    again = std::move(*c);
  } else if (journal_keys_ && journal_keys_->may_contain(key.text)) {
    std::optional<cached_reply> stored;
    try {
      stored = journal_->find_reply(key.client, key.client_id);
    } catch (const journal_error& e) {
      log_->error("journal lookup for client={} id={} failed: {}", key.client, key.client_id,
                  e.what());
    }
    if (!stored) return false;
    again = std::move(*stored);
    source = "journal";
  } else {
    return false;
  }
  // Checked, then sent as stored: the very bytes the first reply carried.
  if (header_result head = header::decode(again.head.data(), again.head.size()); !head) {
    log_->error("remembered reply of request {} is unreadable ({}); executing the resend",
                again.number, head.error);
    return false;
  }
  std::vector<zmq::message_t> body;
  for (const std::string& f : decode_frames(again.body)) body.emplace_back(f.data(), f.size());
  ++stats_.resends;
  log_->info("request {} sent again by client={} name={} id={}: answered from {}, not executed",
             again.number, client_label(client), key.client, key.client_id, source);
  send_after_commit(journal_ ? journal_->posted() : 0, client, dialect::carico, again.service,
                    zmq::message_t(again.head.data(), again.head.size()), std::move(body));
  return true;
}

}  // namespace carico
