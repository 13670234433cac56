// A FIFO of waiting requests packed into large byte chunks: no map node, no
// ZeroMQ frame and no record object per request, only its bytes (routing id,
// key, header, payload) behind a few varints. The broker parks requests
// here once a service's queue is long, so that a million waiting requests cost
// little more than their payloads (issue 5: 64 MiB + the payload bytes).
//
//   carico::packed_queue q;
//   q.push(std::move(r));          // r's frames are released
//   carico::request back = q.pop(); // the oldest, rebuilt; target left null
//
// Payloads larger than large_payload keep their ZeroMQ frame (zero copy); a
// copy of those would cost time and save nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <zmq.hpp>

#include "broker/request.hpp"

namespace carico {

// A parked request as stored, without rebuilding it.
struct packed_view {
  std::uint64_t number{0};        // the broker's request number
  std::int64_t received_ms{0};    // when it arrived, unix ms
  std::uint64_t attempts{0};      // workers given it so far
  std::size_t quota_bytes{0};     // counted against its client's quota
  std::string_view client;        // routing id of its client; empty if none
  std::string_view key;           // idempotency key; empty if none
  std::string_view head;          // the header as forwarded
  std::size_t payload_bytes{0};   // payload size
  std::uint64_t timeout_ms{0};    // how long it may wait, from received_ms
  dialect from{dialect::carico};  // its client's dialect
  bool framed{false};             // the payload is a packed stock body (request::framed)
};

// The request v describes, rebuilt without its payload; received_at (and so
// the deadline) is reconstructed from received_ms, target is left null.
request to_request(const packed_view& v);

class packed_queue {
 public:
  // Payloads above this many bytes keep their frame instead of being copied.
  static constexpr std::size_t large_payload = 8192;

  explicit packed_queue(std::size_t chunk_bytes = std::size_t{256} << 10)
      : chunk_bytes_(chunk_bytes) {}

  // Appends r (its number must exceed every number queued); its frames are
  // released or moved. Waiters, holder, target and dispatch times are not kept:
  // a parked request has none.
  void push(request&& r);
  // Removes the oldest request and returns it rebuilt; its target is null and
  // received_at is rebuilt from received_ms. Precondition: !empty().
  request pop();
  // The deadline of the oldest request (request::deadline, rebuilt as
  // to_request does); empty when none is parked.
  std::optional<time_point> front_deadline() const;
  // Calls visit for each parked request, oldest first, until it returns false.
  void for_each(const std::function<bool(const packed_view&)>& visit) const;

  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  // The number of the newest request pushed; 0 when none ever was.
  std::uint64_t last_number() const { return last_number_; }
  // Bytes of chunk memory held (for stats and tests).
  std::size_t chunk_bytes_held() const;

 private:
  struct chunk {
    std::unique_ptr<char[]> data;  // the packed entries
    std::size_t capacity{0};       // bytes allocated
    std::size_t read{0};           // offset of the oldest entry
    std::size_t write{0};          // offset where the next entry goes
  };
  // Decodes the entry at p (within a chunk), which follows `before`; returns
  // the byte after it.
  static const char* read_entry(const char* p, const packed_view& before, packed_view& out,
                                bool& large);

  std::size_t chunk_bytes_;                 // size of a normal chunk
  std::deque<chunk> chunks_;                // oldest first; entries never straddle two
  std::deque<zmq::message_t> large_;        // payloads kept as frames, oldest first
  std::size_t count_{0};                    // requests parked
  std::uint64_t last_number_{0};            // newest number pushed (entries hold deltas)
  std::int64_t last_ms_{0};                 // newest received_ms pushed
  std::size_t last_quota_{0};               // newest quota_bytes pushed
  std::size_t last_payload_{0};             // newest payload size pushed
  packed_view popped_;                      // the last entry popped (its views dangle: the
                                            // numbers are what deltas are taken from)
};

}  // namespace carico
