// A MessagePack map as carried in the header frame of carico messages.
//
//   auto h = carico::header::decode(frame.data(), frame.size());
//   if (!h) log(h.error);
//   std::optional<std::string_view> title = h.value->get_string("title");
//   h.value->set("request", uint64_t{42});
//   zmq::message_t out = h.value->encode();
//
// Values stay msgpack objects, so keys the broker does not know pass through
// untouched. Decoding is bounded (depth, sizes) and never throws.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace carico {

struct header_result;

class header {
 public:
  header();
  header(header&&) noexcept = default;
  header& operator=(header&&) noexcept = default;

  // Decodes exactly one MessagePack map filling [data, data + size).
  static header_result decode(const void* data, std::size_t size);
  static header_result decode(const zmq::message_t& frame);
  // Converts a JSON object (nlohmann) into a header; non-objects give an error.
  static header_result from_json(const nlohmann::json& object);

  const msgpack::object* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  std::optional<std::uint64_t> get_uint(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  std::size_t size() const { return entries_.size(); }

  // Sets key to value, replacing an existing entry with that key.
  void set(std::string_view key, std::uint64_t value);
  void set(std::string_view key, std::string_view value);
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, const msgpack::object& value);  // deep-copied
  void set_json(std::string_view key, const nlohmann::json& value);
  // Sets key to the one MessagePack value encoded in `bytes`, as made by
  // encode_value(); bytes that do not hold one value leave the header unchanged.
  void set_encoded(std::string_view key, std::string_view bytes);
  void erase(std::string_view key);

  // The MessagePack encoding of value, for keeping one entry without its header.
  static std::string encode_value(const msgpack::object& value);

  // Copies every entry of other whose key is not present here.
  void merge_missing(const header& other);

  zmq::message_t encode() const;
  std::string encode_string() const;
  nlohmann::json to_json() const;

 private:
  struct entry {
    std::string_view key;   // points into zone_
    msgpack::object value;  // lives in zone_
  };
  entry* find_entry(std::string_view key);
  std::string_view copy_key(std::string_view key);
  void pack(msgpack::packer<msgpack::sbuffer>& packer) const;

  explicit header(std::size_t zone_chunk_bytes);  // the zone's first chunk, in bytes

  msgpack::zone& zone();  // zone_, made on first use

  std::unique_ptr<msgpack::zone> zone_;  // owns every key and value below; null while empty
  std::vector<entry> entries_;           // the map, in wire order
};

// The outcome of decoding a header: a value, or the reason it is malformed.
struct header_result {
  std::optional<header> value;  // set on success
  std::string error;            // why decoding failed, when value is empty
  explicit operator bool() const { return value.has_value(); }
};

inline header_result header::decode(const zmq::message_t& frame) {
  return decode(frame.data(), frame.size());
}

// Renders a msgpack object as JSON (binary becomes a byte array).
nlohmann::json to_json(const msgpack::object& object);
// The same as compact JSON text, invalid UTF-8 replaced: how the journal and
// the idempotency keys hold a request's `id`. Integers, the usual ids, are
// written directly, without building a JSON value.
std::string to_json_text(const msgpack::object& object);

// An unsigned entry for append_uints().
struct uint_entry {
  std::string_view key;
  std::uint64_t value;
};

// The encoded header `map` (an encode() result, or an empty frame for no
// header) with `entries` added at its end, without decoding it: the map's
// count grows and the pairs are packed after the existing ones. The caller
// makes sure map holds none of these keys.
zmq::message_t append_uints(const zmq::message_t& map, std::initializer_list<uint_entry> entries);

}  // namespace carico
