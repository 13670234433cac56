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
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
// An encoded `id` value as request_key renders it (JSON text), read where it
// lies when it is an unsigned integer or a string; nothing for another shape
// (the caller decodes the header then).
std::optional<std::string> id_json_text(std::string_view encoded);

// A reply as sent, ready to be sent again (from memory or from the journal).
struct cached_reply {
  std::uint64_t number{0};  // the request number
  std::string service;      // frame 2
  std::string head;         // the encoded reply header
  std::string body;         // frames 4.., packed by encode_frames() (journal.hpp)
};

class reply_cache {
 public:
  // At most `capacity` replies and about `max_bytes` of them (their bytes
  // plus a small overhead each): a cache of large replies (a keyed echo of
  // 4 MiB documents) keeps fewer, not gigabytes. A reply larger than
  // max_bytes alone is not kept (a resend finds it in the journal, if any).
  explicit reply_cache(std::size_t capacity, std::size_t max_bytes = default_max_bytes);
  static constexpr std::size_t default_max_bytes = std::size_t{64} << 20;
  reply_cache(const reply_cache&) = delete;
  reply_cache& operator=(const reply_cache&) = delete;
  // Remembers the reply (number, service, encoded header, packed body) under
  // key, copied into one allocation, forgetting the oldest entry when full; a
  // key already remembered gets the new reply and keeps its place in the order.
  void put(std::string_view key, std::uint64_t number, std::string_view service,
           std::string_view head, std::string_view body);
  std::optional<cached_reply> find(std::string_view key) const;
  std::size_t size() const { return order_.size(); }  // entries, forgotten ones included
  std::size_t bytes() const { return bytes_; }        // what the entries count against max_bytes

 private:
  // One remembered reply. Its strings share one allocation, so that keeping
  // and forgetting an entry touches few cache lines: a full cache (10^5
  // entries by default) is far larger than the CPU's caches, and the entry
  // forgotten is always the coldest.
  struct entry {
    std::unique_ptr<char[]> bytes;  // key, service, head, body, back to back
    std::uint64_t number{0};        // the request number
    std::uint32_t hash{0};          // slot_hash(key), so forgetting it never reads the key
    std::uint32_t key_size{0};      // sizes of the four parts of bytes
    std::uint32_t service_size{0};
    std::uint32_t head_size{0};
    std::uint32_t body_size{0};
    bool gone{false};  // its reply was replaced by one too large to keep: not found
    std::string_view key() const { return {bytes.get(), key_size}; }
    std::size_t cost() const;  // counted against max_bytes_
  };
  // The index: open addressing with linear probing, at most half full, eight
  // bytes a slot, so that a lookup usually reads one cache line of it and the
  // key's own bytes only when the hashes match. A slot names its entry by
  // sequence number (order_[seq - first_seq_]), truncated to 32 bits: the
  // cache holds fewer than 2^31 entries, so the difference is exact.
  struct slot {
    std::uint32_t hash{0};  // 0: empty
    std::uint32_t seq{0};
  };
  static std::uint32_t slot_hash(std::string_view key);
  // What an entry holding `bytes` of strings counts against max_bytes_.
  static std::size_t cost_of(std::size_t bytes);
  static entry make_entry(std::uint64_t number, std::uint32_t hash,
                          std::initializer_list<std::string_view> parts);
  const entry& at(slot s) const { return order_[static_cast<std::uint32_t>(s.seq - first_seq_)]; }
  // The slot holding key, or the empty slot where it would go.
  std::size_t probe(std::string_view key, std::uint32_t hash) const;
  void grow();                     // doubles slots_, placing every entry again
  void forget_oldest();            // the front of order_ and its slot
  void empty_slot(std::size_t i);  // backward-shift deletion: no tombstones

  std::size_t capacity_;        // entries kept at most
  std::size_t max_bytes_;       // entries' cost kept at most
  std::size_t bytes_{0};        // entries' cost now
  std::deque<entry> order_;     // oldest first; stays in place as it grows and shrinks
  std::uint32_t first_seq_{0};  // the sequence number of order_.front(), modulo 2^32
  std::vector<slot> slots_;     // a power of two in size, or empty
};

// A Bloom filter over keys: may_contain() is never false for a key added.
class key_filter {
 public:
  explicit key_filter(std::size_t bits = std::size_t{1} << 26);
  void add(std::string_view key);
  bool may_contain(std::string_view key) const;

 private:
  std::vector<std::uint64_t> words_;  // the bit array, in blocks of 8 words
  std::uint64_t mask_;                // blocks - 1 (a power of two)
};

}  // namespace carico
