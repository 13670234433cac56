// MMI: the broker's own services (mmi.*), for carico and stock clients.
#include "broker/broker.hpp"

#include <algorithm>
#include <unordered_map>

#include <unistd.h>  // getpid

#include "broker/allocator.hpp"
#include "broker/broker_util.hpp"

namespace carico {
namespace {

// mmi.stats' "journal": whether it can be written (and since when, unix ms),
// why not, and its size on disk against its bound.
nlohmann::json journal_json(const journal& j, const broker_options& options,
                            std::uint64_t refused) {
  const journal_health h = j.health();
  nlohmann::json out = {{"state", h.writable ? "ok" : "unavailable"},
                        {"since_ms", h.since_ms},
                        {"refused", refused},
                        {"bytes", j.disk_bytes()},
                        {"max_bytes", options.journal_max_bytes}};
  out.update(j.describe());  // backend; PostgreSQL: term, active
  if (!h.writable) {
    out["error"] = h.error;
    out["failed_writes"] = h.attempts;
    out["waiting_events"] = h.waiting;
  }
  return out;
}

}  // namespace

// RFC 8 (MMI) for a stock client: mmi.service answers one frame, 200 or 404;
// any other mmi. name one frame, 501.
void broker::answer_stock_mmi(const std::string& client, client_request& message) {
  std::vector<zmq::message_t> body;
  if (message.service == "mmi.service") {
    auto it = services_.find(message.payload.to_string());
    const bool served = it != services_.end() && !it->second->ring.empty();
    body.emplace_back(served ? std::string_view("200") : std::string_view("404"));
  } else {
    body.emplace_back(std::string_view("501"));
  }
  send_to_client(client, dialect::mdp, message.service, zmq::message_t(), std::move(body));
}

void broker::answer_mmi(const std::string& client, client_request& message) {
  decode_head(message);
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
    std::optional<nlohmann::json> found;
    const std::optional<std::string_view> of_client = message.head.get_string("of_client");
    const msgpack::object* of_id = message.head.find("of_id");
    if (auto number = message.head.get_uint("of_request")) {
      found = find_request_json(*number);
    } else if (of_client && !of_client->empty() && of_id != nullptr) {
      request_key_parts key;
      key.client = std::string(*of_client);
      key.client_id = to_json_text(*of_id);
      key.text = join_key(key.client, key.client_id);
      found = find_request_json(key);
    } else {
      reply_error(client, dialect::carico, name, code::bad_request,
                  "mmi.request needs of_request, or of_client and of_id", &message.head);
      return;
    }
    if (!found) {
      reply_error(client, dialect::carico, name, code::not_found, "no such request", &message.head);
      return;
    }
    head.set_json("result", *found);
  } else if (name == "mmi.history") {
    const std::uint64_t last = std::clamp<std::uint64_t>(message.head.get_uint("last").value_or(20), 1, 1000);
    head.set_json("result", nlohmann::json{{"requests", history_json(last)}});
  } else if (name == "mmi.stored") {
    const std::uint64_t last = std::clamp<std::uint64_t>(message.head.get_uint("last").value_or(20), 1, 1000);
    if (!journal_) {
      reply_error(client, dialect::carico, name, code::not_found,
                  "no journal: this broker runs with --journal none", &message.head);
      return;
    }
    head.set_json("result", nlohmann::json{{"documents", stored_json(last, owner_of(message))}});
  } else {
    reply_error(client, dialect::carico, name, code::not_implemented,
                "unknown mmi service " + name, &message.head);
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
                    {"reason", w->load.reason},
                    {"dialect", dialect_name(w->from)},
                    {"heartbeat_ms", w->heartbeat_ms},
                    {"in_flight", w->in_flight.size()},
                    {"capacity", w->info.capacity},
                    {"answered", w->answered},
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
  std::size_t queued_in_full = 0;  // the waiting requests that are in requests_
  // At most stats_services of them by name, those with workers or the
  // longest queues first: the reply stays small however many names clients
  // send (a header map holds at most 4096 entries).
  constexpr std::size_t stats_services = 256;
  std::vector<const service*> shown;
  for (const auto& [name, s] : services_) {
    queued += waiting(*s);
    queued_in_full += s->queue.size();
    shown.push_back(s.get());
  }
  const auto weight = [this](const service* s) {
    return std::make_pair(s->ring.size(), waiting(*s));
  };
  if (shown.size() > stats_services) {
    std::partial_sort(shown.begin(), shown.begin() + stats_services, shown.end(),
                      [&](const service* a, const service* b) { return weight(a) > weight(b); });
    shown.resize(stats_services);
  }
  nlohmann::json services = nlohmann::json::object();
  for (const service* s : shown) {
    services[s->name] = {{"workers", s->ring.size()}, {"queued", waiting(*s)}};
  }
  nlohmann::json out = {{"received", stats_.received},
                        {"done", stats_.done},
                        {"failed", stats_.failed},
                        {"expired", stats_.expired},
                        {"redispatched", stats_.redispatched},
                        {"refused", stats_.refused},
                        {"malformed", stats_.malformed},
                        {"late_replies", stats_.late_replies},
                        {"unread_dropped", stats_.unread_dropped},
                        {"resends", stats_.resends},
                        {"mdp_dropped", stats_.mdp_dropped},
                        {"queued", queued},
                        {"in_flight", requests_.size() - queued_in_full},
                        {"workers", workers_.size()},
                        {"workers_joined", stats_.workers_joined},
                        {"workers_lost", stats_.workers_lost},
                        {"services", services},
                        {"services_known", services_.size()},
                        {"uptime_ms", ms_between(started_at_, clock::now())},
                        // Which broker answered: with several (a PostgreSQL
                        // journal), clients and operators tell them apart by it.
                        {"broker", {{"frontend", frontend_endpoint()},
                                    {"backend", backend_endpoint()},
                                    {"pid", static_cast<long>(::getpid())},
                                    {"allocator", allocator_name()}}}};
  if (journal_) out["journal"] = journal_json(*journal_, options_, stats_.journal_refused);
  return out;
}

nlohmann::json broker::request_json(const request& r) const {
  header head;
  if (r.head.size() > 0) {
    if (header_result decoded = header::decode(r.head)) head = std::move(*decoded.value);
  }
  nlohmann::json out = record_of(r, head).to_json();
  out["age_ms"] = ms_between(r.received_at, clock::now());
  // An unanswered request's title, from its header (the journal keeps no title).
  if (auto title = head.get_string("title")) out["title"] = std::string(*title);
  return out;
}

std::optional<nlohmann::json> broker::find_request_json(std::uint64_t number) {
  if (auto it = requests_.find(number); it != requests_.end()) return request_json(it->second);
  if (auto parked = find_parked_json(number)) return parked;
  if (!journal_) return std::nullopt;
  // Committed rows only: MMI never waits for the journal's writer. A reply
  // leaves only once its outcome is committed, so what a client was answered
  // is there; what is unanswered was found in memory above.
  try {
    if (auto row = journal_->find(number)) return row->to_json();
  } catch (const journal_error& e) {
    log_->error("journal lookup of request {} failed: {}", number, e.what());
  }
  return std::nullopt;
}

std::optional<nlohmann::json> broker::find_request_json(const request_key_parts& key) {
  if (auto it = keyed_.find(key.text); it != keyed_.end()) return find_request_json(it->second);
  if (!journal_) return std::nullopt;
  try {
    if (auto row = journal_->find(key.client, key.client_id)) return row->to_json();
  } catch (const journal_error& e) {
    log_->error("journal lookup of client={} id={} failed: {}", key.client, key.client_id,
                e.what());
  }
  return std::nullopt;
}

nlohmann::json broker::history_json(std::size_t last) {
  nlohmann::json list = nlohmann::json::array();
  if (journal_) {
    try {
      // The committed rows (MMI never waits for the writer), with the
      // in-memory view of every unanswered request in full, which is fresher
      // than its row or has none committed yet.
      std::unordered_map<std::uint64_t, journal_record> rows;
      std::vector<std::uint64_t> numbers;
      for (journal_record& row : journal_->history(last)) {
        numbers.push_back(row.number);
        rows.emplace(row.number, std::move(row));
      }
      for (const auto& [number, r] : requests_) {
        if (!rows.contains(number)) numbers.push_back(number);
      }
      const auto cut = numbers.size() > last ? numbers.begin() + static_cast<long>(last)
                                             : numbers.end();
      std::partial_sort(numbers.begin(), cut, numbers.end(), std::greater<>());
      numbers.erase(cut, numbers.end());
      for (std::uint64_t n : numbers) {
        auto it = requests_.find(n);
        list.push_back(it != requests_.end() ? request_json(it->second) : rows.at(n).to_json());
      }
      return list;
    } catch (const journal_error& e) {
      log_->error("journal history failed: {}", e.what());
    }
  }
  // The newest `last` of each service's parked requests, as views (valid
  // until the next push or pop), and every request in full.
  std::vector<std::uint64_t> numbers;
  for (const auto& [number, r] : requests_) numbers.push_back(number);
  std::unordered_map<std::uint64_t, std::pair<service*, packed_view>> parked;
  for (auto& [name, s] : services_) {
    std::deque<packed_view> newest;
    s->parked.for_each([&newest, last](const packed_view& v) {
      newest.push_back(v);
      if (newest.size() > last) newest.pop_front();
      return true;
    });
    for (const packed_view& v : newest) {
      numbers.push_back(v.number);
      parked.emplace(v.number, std::make_pair(s.get(), v));
    }
  }
  std::sort(numbers.rbegin(), numbers.rend());
  if (numbers.size() > last) numbers.resize(last);
  for (std::uint64_t n : numbers) {
    auto it = requests_.find(n);
    if (it != requests_.end()) {
      list.push_back(request_json(it->second));
    } else {
      const auto& [s, v] = parked.at(n);
      list.push_back(parked_json(*s, v));
    }
  }
  return list;
}

// The mmi.request view of parked request `number`, if one is parked.
std::optional<nlohmann::json> broker::find_parked_json(std::uint64_t number) {
  // Numbers need not grow along a parked queue: with the journal on, a keyed
  // request is parked when its row commits, after unkeyed ones that came later.
  for (auto& [name, s] : services_) {
    if (s->parked.empty()) continue;
    std::optional<nlohmann::json> found;
    s->parked.for_each([&](const packed_view& v) {
      if (v.number == number) found = parked_json(*s, v);
      return !found;
    });
    if (found) return found;
  }
  return std::nullopt;
}

nlohmann::json broker::parked_json(service& s, const packed_view& v) const {
  request r = to_request(v);
  r.target = &s;
  nlohmann::json out = request_json(r);
  out["bytes"] = v.payload_bytes;  // r was rebuilt without its payload
  return out;
}

}  // namespace carico
