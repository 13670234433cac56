#include "broker/reply_cache.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>

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

reply_cache::reply_cache(std::size_t capacity, std::size_t max_bytes)
    : capacity_(std::min<std::size_t>(capacity, std::size_t{1} << 30)), max_bytes_(max_bytes) {}

std::size_t reply_cache::cost_of(std::size_t bytes) { return sizeof(entry) + bytes; }

std::size_t reply_cache::entry::cost() const {
  return cost_of(std::size_t{key_size} + service_size + head_size + body_size);
}

std::uint32_t reply_cache::slot_hash(std::string_view key) {
  const std::uint64_t h = std::hash<std::string_view>{}(key);
  const auto folded = static_cast<std::uint32_t>(h ^ (h >> 32));
  return folded == 0 ? 1 : folded;
}

// parts: key, service, head, body.
reply_cache::entry reply_cache::make_entry(std::uint64_t number, std::uint32_t hash,
                                           std::initializer_list<std::string_view> parts) {
  entry e;
  e.number = number;
  e.hash = hash;
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

std::size_t reply_cache::probe(std::string_view key, std::uint32_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const slot s = slots_[i];
    if (s.hash == 0 || (s.hash == hash && at(s).key() == key)) return i;
  }
}

void reply_cache::grow() {
  std::vector<slot> old =
      std::exchange(slots_, std::vector<slot>(std::max<std::size_t>(1024, slots_.size() * 2)));
  const std::size_t mask = slots_.size() - 1;
  for (const slot s : old) {
    if (s.hash == 0) continue;
    std::size_t i = s.hash & mask;
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

// Linear probing's deletion without tombstones: each later slot of the run
// moves back into the hole unless its home lies cyclically in (hole, slot].
void reply_cache::empty_slot(std::size_t i) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t j = (i + 1) & mask; slots_[j].hash != 0; j = (j + 1) & mask) {
    const std::size_t home = slots_[j].hash & mask;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = slot{};
}

void reply_cache::forget_oldest() {
  const std::uint32_t hash = order_.front().hash;
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].seq != first_seq_ || slots_[i].hash != hash) i = (i + 1) & mask;
  empty_slot(i);
  bytes_ -= order_.front().cost();
  order_.pop_front();
  ++first_seq_;
}

void reply_cache::put(std::string_view key, std::uint64_t number, std::string_view service,
                      std::string_view head, std::string_view body) {
  if (capacity_ == 0) return;
  const bool fits = cost_of(key.size() + service.size() + head.size() + body.size()) <= max_bytes_;
  if (slots_.empty() && !fits) return;
  if ((order_.size() + 1) * 2 > slots_.size()) grow();
  const std::uint32_t hash = slot_hash(key);
  const std::size_t i = probe(key, hash);
  if (slots_[i].hash != 0) {
    // Known key: the new reply replaces the old in its place in the order;
    // one too large to keep leaves the key there, forgotten (never the old reply).
    entry& e = order_[static_cast<std::uint32_t>(slots_[i].seq - first_seq_)];
    bytes_ -= e.cost();
    e = make_entry(number, hash, {key, fits ? service : "", fits ? head : "", fits ? body : ""});
    e.gone = !fits;
    bytes_ += e.cost();
  } else {
    if (!fits) return;
    const auto seq = static_cast<std::uint32_t>(first_seq_ + order_.size());
    order_.push_back(make_entry(number, hash, {key, service, head, body}));
    bytes_ += order_.back().cost();
    slots_[i] = slot{hash, seq};
  }
  // The newest entry stays: it fits alone.
  while (order_.size() > capacity_ || (bytes_ > max_bytes_ && order_.size() > 1)) {
    forget_oldest();
  }
}

std::optional<cached_reply> reply_cache::find(std::string_view key) const {
  if (slots_.empty()) return std::nullopt;
  const slot s = slots_[probe(key, slot_hash(key))];
  if (s.hash == 0) return std::nullopt;
  const entry& e = at(s);
  if (e.gone) return std::nullopt;
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
  std::size_t size = 512;
  while (size < bits) size <<= 1;
  words_.assign(size / 64, 0);
  mask_ = size / 512 - 1;  // blocks - 1
}

// A blocked filter: a key's bits all lie in one 64-byte block (chosen by h1),
// at positions taken from h2, so that adding or testing a key reads one cache
// line of a filter far larger than the CPU's caches, not filter_hashes lines.
void key_filter::add(std::string_view key) {
  const std::uint64_t h1 = std::hash<std::string_view>{}(key);
  std::uint64_t h2 = mix(h1);
  std::uint64_t* block = &words_[(h1 & mask_) * 8];
  for (int i = 0; i < filter_hashes; ++i, h2 >>= 9) {
    block[(h2 >> 6) & 7] |= std::uint64_t{1} << (h2 & 63);
  }
}

bool key_filter::may_contain(std::string_view key) const {
  const std::uint64_t h1 = std::hash<std::string_view>{}(key);
  std::uint64_t h2 = mix(h1);
  const std::uint64_t* block = &words_[(h1 & mask_) * 8];
  for (int i = 0; i < filter_hashes; ++i, h2 >>= 9) {
    if ((block[(h2 >> 6) & 7] & (std::uint64_t{1} << (h2 & 63))) == 0) return false;
  }
  return true;
}

}  // namespace carico
