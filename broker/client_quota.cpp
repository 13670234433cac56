#include "broker/client_quota.hpp"

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

void client_quota::add(const std::string& client, std::uint64_t number, std::size_t bytes) {
  if (!owners_.emplace(number, owner{client, bytes}).second) return;
  ++counts_[client];
  bytes_ += bytes;
}

void client_quota::release(std::uint64_t number) {
  auto it = owners_.find(number);
  if (it == owners_.end()) return;
  auto count = counts_.find(it->second.client);
  if (count != counts_.end() && --count->second == 0) counts_.erase(count);
  bytes_ -= it->second.bytes;
  owners_.erase(it);
}

std::size_t client_quota::in_flight(const std::string& client) const {
  auto it = counts_.find(client);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace carico
