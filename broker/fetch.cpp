// `get`: a carico client fetches back a document it sent, by request number.
// The journal says which worker stored it; only that worker is asked (it keeps
// its documents in its own --storage), and nobody else ever is: a document
// lives in one store only. docs/protocol.md ("carico additions: get").
#include <algorithm>
#include <string>

#include "broker/broker.hpp"

namespace carico {

std::optional<std::uint64_t> broker::get_of(const std::string& client, client_request& message) {
  std::optional<std::uint64_t> of;
  bool present = false;
  if (message.head_raw) {
    if (const auto e = client_head_.over(message.head_frame.data()).find("get")) {
      present = true;
      of = raw_map::as_uint(e->value);
    }
  } else if (message.head.contains("get")) {
    present = true;
    of = message.head.get_uint("get");
  }
  if (!present) return std::nullopt;
  if (!of || *of == 0) {
    ++stats_.malformed;
    log_->warn("malformed get from {}: `get` is not a request number", client_label(client));
    reply_error(client, dialect::carico, message.service, code::bad_request,
                "get needs a request number (an unsigned integer from 1)", &decode_head(message));
    return 0;
  }
  return of;
}

std::string broker::owner_of(const client_request& message) const {
  if (!options_.curve) return {};
  // Every frame of a message received over CURVE carries the ZAP User-Id
  // (zap_handler answers with the key's name on the allow list).
  for (const zmq::message_t* frame : {&message.head_frame, &message.payload}) {
    if (const char* id = zmq_msg_gets(const_cast<zmq_msg_t*>(frame->handle()), "User-Id")) {
      return id;
    }
  }
  return {};
}

void broker::accept_get(std::string&& client, client_request&& message, std::uint64_t of) {
  header& head = decode_head(message);
  const std::string n = std::to_string(of);
  auto refuse = [&](std::uint64_t code, const std::string& why) {
    log_->info("get {} answered {}: {} client={}", of, code, why, client_label(client));
    reply_error(client, dialect::carico, message.service, code, why, &head);
  };
  if (shutting_down_) return refuse(code::queue_full, "shutting down");
  if (!journal_) {
    return refuse(code::not_found,
                  "no journal: this broker runs with --journal none, so it "
                  "does not know who stored request " +
                      n);
  }
  const std::optional<journal_record> row = journal_->find(of);
  // With curve, another client's document does not exist for this one.
  if (!row || (options_.curve && journal_->owner_of(of).value_or("") != owner_of(message))) {
    return refuse(code::not_found, "no such request: " + n);
  }
  if (!is_final(row->state))
    return refuse(code::not_found, "request " + n + " is not answered yet");
  // "answered 200 with a stored file": the service's result named the file.
  const std::string stored_as = row->result_string("stored_as");
  if (row->state != request_state::done || stored_as.empty()) {
    return refuse(code::not_found,
                  "request " + n + " stored no document: it ended " +
                      std::string(request_state_name(row->state)) + " with code " +
                      std::to_string(row->code) +
                      (row->state == request_state::done ? " and no stored_as" : ""));
  }
  if (row->service != message.service) {
    return refuse(code::not_found,
                  "request " + n + " was for service " + row->service + ", not " + message.service);
  }
  known_worker* holder = nullptr;
  for (auto& [identity, w] : workers_) {
    if (w->name == row->worker && w->served != nullptr && w->served->name == row->service) {
      holder = w.get();
      break;
    }
  }
  if (holder == nullptr) {
    return refuse(code::queue_full, "worker " + row->worker + ", which stored request " + n +
                                        " as " + stored_as + ", is not connected");
  }
  if (holder->from != dialect::carico) {
    return refuse(code::queue_full, "worker " + row->worker +
                                        " is a stock MDP/0.1 worker: it "
                                        "cannot serve get");
  }
  ++stats_.received;
  request r;
  r.number = next_request_++;
  r.client = std::move(client);
  r.target = &require_service(row->service);
  r.from = dialect::carico;
  r.fetch = true;
  const std::optional<std::uint64_t> timeout_ms = head.get_uint("timeout_ms");
  keep_header(r, head, std::move(message.head_frame));  // `get` travels on to the holder
  r.received_at = batch_now_;
  r.received_ms = batch_unix_ms_;
  r.timeout_ms = effective_timeout(timeout_ms);
  r.deadline = r.received_at + milliseconds(r.timeout_ms);
  log_->debug("get {} (request {}) goes to worker {}", of, r.number, holder->name);
  auto [it, inserted] = requests_.emplace(r.number, std::move(r));
  send_request(*holder, it->second);
}

void broker::fail_get(request& r, const known_worker& by, std::string_view why) {
  ++stats_.failed;
  log_->warn("get (request {}) failed: worker {} {}", r.number, by.name, why);
  header head;
  head.set_encoded("id", r.id);
  head.set("request", r.number);
  head.set("code", code::queue_full);
  head.set("status", "error");
  head.set("error", "worker " + by.name + ", which holds the document, " + std::string(why) +
                        " (a get goes to no other worker)");
  head.set("worker", by.name);
  head.set("attempts", r.attempts);
  finish_request(r, head, {}, request_state::failed, by.name);
}

nlohmann::json broker::stored_json(std::size_t last, const std::string& owner) {
  nlohmann::json out = nlohmann::json::array();
  if (!journal_) return out;
  const std::optional<std::string> only =
      options_.curve ? std::optional<std::string>(owner) : std::nullopt;
  for (const journal_record& row : journal_->done_with("stored_as", last, only)) out.push_back(row.to_json());
  return out;
}

}  // namespace carico
