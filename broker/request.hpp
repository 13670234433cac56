// A client request the broker has accepted and not yet answered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "shared/codec.hpp"
#include "shared/runtime.hpp"

namespace carico {

struct service;
struct known_worker;

struct request {
  std::uint64_t number{0};        // the broker's request number
  std::string client;             // routing id of the client on the frontend; empty if reloaded
  std::vector<std::string> waiters;  // routing ids of resends waiting for the same reply
  std::string key;                // idempotency key (client, id); empty if none
  service* target{nullptr};       // the service it asked for
  zmq::message_t head;            // the client's header as encoded, without `request` and
                                  // `attempt` (added per dispatch); empty if none
  std::string id;                 // the header's `id`, MessagePack-encoded; empty if none
  zmq::message_t payload;         // kept until answered, for re-dispatch; a stock client's
                                  // body is kept packed by encode_frames (framed)
  dialect from{dialect::carico};  // the client's dialect: what its reply looks like
  bool framed{false};             // payload holds encode_frames of the body (stock clients)
  bool fetch{false};              // a `get` (broker/fetch.cpp): only its holder may serve it,
                                  // and the journal does not record it
  std::uint64_t timeout_ms{0};    // how long it may wait for a worker (from received_at)
  time_point deadline{};          // received_at + timeout_ms: answered 504 if still waiting
  std::uint64_t attempts{0};      // workers given it so far
  known_worker* holder{nullptr};  // the worker executing it, if any
  std::size_t quota_bytes{0};     // counted against client's quota; 0 when not counted
  time_point received_at{};       // when it arrived
  time_point dispatched_at{};     // when it was last given to a worker
  std::int64_t received_ms{0};    // received_at in unix ms, for records
  std::int64_t dispatched_ms{0};  // dispatched_at in unix ms, for records
};

}  // namespace carico
