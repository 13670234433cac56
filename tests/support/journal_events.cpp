#include "tests/support/journal_events.hpp"

#include <nlohmann/json.hpp>

#include "shared/header.hpp"

namespace carico::test {

journal_event received_event(std::uint64_t number, const std::string& id,
                             const std::string& payload) {
  journal_event e;
  e.what = journal_event::kind::received;
  e.row.number = number;
  e.row.client = "tester";
  e.row.client_id = id;
  e.row.service = "text";
  e.row.bytes = payload.size();
  e.row.received_ms = unix_ms();
  header h;
  h.set("client", "tester");
  h.set("title", "doc " + id);
  e.head = h.encode_string();
  e.payload = zmq::message_t(payload.data(), payload.size());
  return e;
}

journal_event dispatched_event(std::uint64_t number, const std::string& worker) {
  journal_event e;
  e.what = journal_event::kind::dispatched;
  e.row.number = number;
  e.row.worker = worker;
  e.row.attempts = 1;
  e.row.dispatched_ms = unix_ms();
  return e;
}

journal_event finished_event(std::uint64_t number, std::uint64_t code, const std::string& reply) {
  journal_event e;
  e.what = journal_event::kind::finished;
  e.row.number = number;
  e.row.state = code == 200 ? request_state::done : request_state::failed;
  e.row.worker = "w1";
  e.row.attempts = 1;
  e.row.completed_ms = unix_ms();
  e.row.code = code;
  e.row.result =
      nlohmann::json{{"count_a", 3}, {"stored_as", std::to_string(number) + "-doc.json"}}.dump();
  e.head = reply;
  return e;
}

}  // namespace carico::test
