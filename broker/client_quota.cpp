#include "broker/client_quota.hpp"

#include <algorithm>

namespace carico {

std::optional<std::string> client_quota::refusal(const std::string& client,
                                                 std::size_t bytes) const {
  if (per_client_ != 0 && in_flight(client) >= per_client_) {
    return "too many requests in flight: " + std::to_string(in_flight(client)) +
           " unanswered from this client (limit " + std::to_string(per_client_) + ")";
  }
  if (max_bytes_ != 0 && bytes_ + bytes > max_bytes_) {
    return "broker memory budget reached: " + std::to_string(bytes_) + " bytes held (limit " +
           std::to_string(max_bytes_) + ")";
  }
  return std::nullopt;
}

void client_quota::add(const std::string& client, std::size_t bytes) {
  ++counts_[client];
  bytes_ += bytes;
}

void client_quota::release(const std::string& client, std::size_t bytes) {
  auto count = counts_.find(client);
  if (count == counts_.end()) return;
  if (--count->second == 0) counts_.erase(count);
  bytes_ -= std::min(bytes, bytes_);
}

std::size_t client_quota::in_flight(const std::string& client) const {
  auto it = counts_.find(client);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace carico
