#include "broker/reply_cache.hpp"

#include <cstring>
#include <functional>

#include "shared/raw_map.hpp"

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

std::optional<std::string> id_json_text(std::string_view encoded) {
  if (std::optional<std::uint64_t> n = raw_map::as_uint(encoded)) return std::to_string(*n);
  if (std::optional<std::string_view> s = raw_map::as_string(encoded)) {
    return nlohmann::json(std::string(*s))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return std::nullopt;
}

// parts: key, service, head, body.
reply_cache::entry reply_cache::make_entry(std::uint64_t number,
                                           std::initializer_list<std::string_view> parts) {
  entry e;
  e.number = number;
  std::uint32_t* sizes[] = {&e.key_size, &e.service_size, &e.head_size, &e.body_size};
  std::size_t total = 0;
  std::size_t i = 0;
  for (std::string_view part : parts) {
    *sizes[i++] = static_cast<std::uint32_t>(part.size());
    total += part.size();
  }
  e.bytes = std::make_unique_for_overwrite<char[]>(total);
  char* p = e.bytes.get();
  for (std::string_view part : parts) {
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  return e;
}

void reply_cache::put(std::string_view key, std::uint64_t number, std::string_view service,
                      std::string_view head, std::string_view body) {
  if (capacity_ == 0) return;
  // A deque keeps its elements in place as it grows at the back and shrinks
  // at the front, so index_ may point at them.
  entry& e = order_.emplace_back(make_entry(number, {key, service, head, body}));
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
