#include "broker/reply_cache.hpp"

#include <functional>

namespace carico {
namespace {

constexpr int filter_hashes = 3;

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string join_key(std::string_view client, std::string_view client_id) {
  std::string key;
  key.reserve(client.size() + client_id.size() + 1);
  key.append(client);
  key += '\x1f';
  key.append(client_id);
  return key;
}

std::optional<request_key_parts> request_key(const header& head) {
  const std::optional<std::string_view> client = head.get_string("client");
  const msgpack::object* id = head.find("id");
  if (!client || client->empty() || id == nullptr) return std::nullopt;
  request_key_parts key;
  key.client = std::string(*client);
  key.client_id = to_json_text(*id);
  key.text = join_key(key.client, key.client_id);
  return key;
}

void reply_cache::put(const std::string& key, cached_reply reply) {
  if (capacity_ == 0) return;
  auto [it, fresh] = replies_.insert_or_assign(key, std::move(reply));
  if (!fresh) return;
  // A node's key stays put until the node is erased (a rehash moves no node).
  order_.push_back(&it->first);
  while (order_.size() > capacity_) {
    replies_.erase(replies_.find(*order_.front()));
    order_.pop_front();
  }
}

const cached_reply* reply_cache::find(const std::string& key) const {
  auto it = replies_.find(key);
  return it == replies_.end() ? nullptr : &it->second;
}

key_filter::key_filter(std::size_t bits) {
  std::size_t size = 64;
  while (size < bits) size <<= 1;
  words_.assign(size / 64, 0);
  mask_ = size - 1;
}

void key_filter::add(std::string_view key) {
  const std::uint64_t h1 = std::hash<std::string_view>{}(key);
  const std::uint64_t h2 = mix(h1) | 1;
  for (int i = 0; i < filter_hashes; ++i) {
    const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) & mask_;
    words_[bit >> 6] |= std::uint64_t{1} << (bit & 63);
  }
}

bool key_filter::may_contain(std::string_view key) const {
  const std::uint64_t h1 = std::hash<std::string_view>{}(key);
  const std::uint64_t h2 = mix(h1) | 1;
  for (int i = 0; i < filter_hashes; ++i) {
    const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) & mask_;
    if ((words_[bit >> 6] & (std::uint64_t{1} << (bit & 63))) == 0) return false;
  }
  return true;
}

}  // namespace carico
