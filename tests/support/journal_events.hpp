// Journal events as the broker posts them, for tests that drive a journal
// directly: a keyed request from client "tester" arriving, and its outcome.
//
//   auto j = carico::open_journal({.path = file});
//   j->post(carico::test::received_event(1, "1", "payload"));
//   j->post(carico::test::finished_event(1, 200, "reply"));
//   j->flush();
#pragma once

#include <cstdint>
#include <string>

#include "broker/journal.hpp"

namespace carico::test {

// Request `number` with key ("tester", id) and this payload, queued.
journal_event received_event(std::uint64_t number, const std::string& id,
                             const std::string& payload);
// Given to `worker` (attempt 1).
journal_event dispatched_event(std::uint64_t number, const std::string& worker);
// Its outcome: done for code 200, else failed, with `reply` as the reply header.
journal_event finished_event(std::uint64_t number, std::uint64_t code, const std::string& reply);

}  // namespace carico::test
