#include "broker/reply_cache.hpp"

#include <cstring>
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

reply_cache::entry reply_cache::make_entry(std::string_view key, const cached_reply& reply) {
  entry e;
  e.number = reply.number;
  e.key_size = static_cast<std::uint32_t>(key.size());
  e.service_size = static_cast<std::uint32_t>(reply.service.size());
  e.head_size = static_cast<std::uint32_t>(reply.head.size());
  e.body_size = static_cast<std::uint32_t>(reply.body.size());
  e.bytes = std::make_unique_for_overwrite<char[]>(key.size() + reply.service.size() +
                                                   reply.head.size() + reply.body.size());
  char* p = e.bytes.get();
  for (std::string_view part : {key, std::string_view(reply.service), std::string_view(reply.head),
                                std::string_view(reply.body)}) {
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  return e;
}

void reply_cache::put(std::string_view key, const cached_reply& reply) {
  if (capacity_ == 0) return;
  // A deque keeps its elements in place as it grows at the back and shrinks
  // at the front, so index_ may point at them.
  entry& e = order_.emplace_back(make_entry(key, reply));
  auto [it, fresh] = index_.try_emplace(e.key(), &e);
  if (!fresh) {
    // Known key: the new reply replaces the old in its place in the order.
    entry* old = it->second;
    index_.erase(it);  // its key points into the bytes replaced below
    *old = std::move(e);
    order_.pop_back();
    index_.emplace(old->key(), old);
    return;
  }
  while (order_.size() > capacity_) {
    index_.erase(order_.front().key());
    order_.pop_front();
  }
}

std::optional<cached_reply> reply_cache::find(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const entry& e = *it->second;
  const char* p = e.bytes.get() + e.key_size;
  cached_reply r;
  r.number = e.number;
  r.service.assign(p, e.service_size);
  p += e.service_size;
  r.head.assign(p, e.head_size);
  p += e.head_size;
  r.body.assign(p, e.body_size);
  return r;
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
