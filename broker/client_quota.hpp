// Requests in flight per client and bytes held for all of them, so one client
// cannot fill the broker's queues or memory for everyone: past its cap a
// client's new requests are refused (503) and no one else's are; past the
// byte budget every new request is refused until some are answered.
//
//   carico::client_quota quota(10000, 1 << 30);
//   if (auto why = quota.refusal(routing_id, bytes)) reply_error(503, *why);
//   quota.add(routing_id, bytes);           // once the request is accepted
//   ...
//   quota.release(routing_id, bytes);       // when it is answered (same values)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace carico {

class client_quota {
 public:
  // 0 means unlimited, for either cap.
  client_quota(std::size_t per_client, std::size_t max_bytes)
      : per_client_(per_client), max_bytes_(max_bytes) {}

  // Why client may not have one more request of `bytes` in flight, or nothing.
  std::optional<std::string> refusal(const std::string& client, std::size_t bytes) const;
  // Counts one request of `bytes` against client. The caller keeps both, to
  // release exactly what it added: the quota keeps nothing per request.
  void add(const std::string& client, std::size_t bytes);
  // Uncounts one request added with these values; a client with none counted is ignored.
  void release(const std::string& client, std::size_t bytes);

  std::size_t in_flight(const std::string& client) const;
  std::size_t bytes() const { return bytes_; }
  // Clients with at least one request counted.
  std::size_t clients() const { return counts_.size(); }

 private:
  std::size_t per_client_;                               // requests in flight per client
  std::size_t max_bytes_;                                // bytes held for all requests
  std::size_t bytes_{0};                                 // bytes held now
  std::unordered_map<std::string, std::size_t> counts_;  // routing id -> requests counted (never 0)
};

}  // namespace carico
