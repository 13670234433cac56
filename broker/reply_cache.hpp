// What the broker remembers for exactly-once: the replies of recently answered
// keyed requests (bounded, oldest forgotten first), and a Bloom filter of every
// key the journal may know, so that a new key costs no journal lookup.
//
//   carico::reply_cache cache(100000);
//   if (auto key = carico::request_key(head)) {
//     if (const carico::cached_reply* r = cache.find(key->text)) resend(*r);
//   }
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shared/header.hpp"

namespace carico {

// The idempotency key of a request: its `client` and `id` (as JSON text).
struct request_key_parts {
  std::string client;     // header `client`
  std::string client_id;  // header `id`, rendered as JSON
  std::string text;       // both, joined: the map key
};
// The key of a request carrying both a string `client` and an `id`; nothing otherwise.
std::optional<request_key_parts> request_key(const header& head);
std::string join_key(std::string_view client, std::string_view client_id);

// A reply as sent, ready to be sent again (from memory or from the journal).
struct cached_reply {
  std::uint64_t number{0};         // the request number
  std::string service;             // frame 2
  std::string head;                // the encoded reply header
  std::string body;                // frames 4.., packed by encode_frames() (journal.hpp)
};

class reply_cache {
 public:
  explicit reply_cache(std::size_t capacity) : capacity_(capacity) {}
  // order_ points into replies_' nodes: a copy would point into the original.
  reply_cache(const reply_cache&) = delete;
  reply_cache& operator=(const reply_cache&) = delete;
  // Remembers reply under key, forgetting the oldest entry when full.
  void put(const std::string& key, cached_reply reply);
  const cached_reply* find(const std::string& key) const;
  std::size_t size() const { return replies_.size(); }

 private:
  std::size_t capacity_;                                   // entries kept at most
  std::unordered_map<std::string, cached_reply> replies_;  // by key
  std::deque<const std::string*> order_;  // the keys in replies_' nodes, oldest first
};

// A Bloom filter over keys: may_contain() is never false for a key added.
class key_filter {
 public:
  explicit key_filter(std::size_t bits = std::size_t{1} << 26);
  void add(std::string_view key);
  bool may_contain(std::string_view key) const;

 private:
  std::vector<std::uint64_t> words_;  // the bit array
  std::uint64_t mask_;                // bits - 1 (bits is a power of two)
};

}  // namespace carico
