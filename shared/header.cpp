#include "shared/header.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace carico {
namespace {

// Hostile input must not make the decoder allocate without bound.
const msgpack::unpack_limit header_limits(/*array=*/4096, /*map=*/4096, /*str=*/1 << 20,
                                          /*bin=*/16 << 20, /*ext=*/1 << 20, /*depth=*/32);

bool never_reference(msgpack::type::object_type, std::size_t, void*) { return false; }

// Bytes copied into zone; an empty run may come from the unpacker as a null
// pointer, which memcpy must never see (found by fuzz_header).
const char* copy_bytes(msgpack::zone& zone, const char* data, std::uint32_t size) {
  if (size == 0) return "";
  char* p = static_cast<char*>(zone.allocate_no_align(size));
  std::memcpy(p, data, size);
  return p;
}

// A deep copy of o into zone (msgpack's own copy memcpy's null pointers).
msgpack::object copy_object(const msgpack::object& o, msgpack::zone& zone) {
  msgpack::object out = o;
  switch (o.type) {
    case msgpack::type::STR:
      out.via.str.ptr = copy_bytes(zone, o.via.str.ptr, o.via.str.size);
      break;
    case msgpack::type::BIN:
      out.via.bin.ptr = copy_bytes(zone, o.via.bin.ptr, o.via.bin.size);
      break;
    case msgpack::type::EXT:
      // ext.ptr points at the type byte, followed by size bytes of data.
      out.via.ext.ptr = copy_bytes(zone, o.via.ext.ptr, o.via.ext.size + 1);
      break;
    case msgpack::type::ARRAY: {
      if (o.via.array.size == 0) {
        out.via.array.ptr = nullptr;
        break;
      }
      auto* items = static_cast<msgpack::object*>(zone.allocate_align(
          sizeof(msgpack::object) * o.via.array.size, alignof(msgpack::object)));
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        items[i] = copy_object(o.via.array.ptr[i], zone);
      }
      out.via.array.ptr = items;
      break;
    }
    case msgpack::type::MAP: {
      if (o.via.map.size == 0) {
        out.via.map.ptr = nullptr;
        break;
      }
      auto* kvs = static_cast<msgpack::object_kv*>(zone.allocate_align(
          sizeof(msgpack::object_kv) * o.via.map.size, alignof(msgpack::object_kv)));
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        kvs[i].key = copy_object(o.via.map.ptr[i].key, zone);
        kvs[i].val = copy_object(o.via.map.ptr[i].val, zone);
      }
      out.via.map.ptr = kvs;
      break;
    }
    default:
      break;  // scalars live in the object itself
  }
  return out;
}

}  // namespace

// msgpack's default zone mallocs an 8 KiB chunk up front; a typical header
// needs well under 256 bytes, and the broker keeps one per queued request.
constexpr std::size_t zone_chunk_bytes = 256;

header::header() = default;  // no zone until something is set: most empty headers stay empty

header::header(std::size_t chunk_bytes) : zone_(std::make_unique<msgpack::zone>(chunk_bytes)) {}

header_result header::decode(const void* data, std::size_t size) {
  header_result out;
  if (size == 0) {
    out.error = "header frame is empty";
    return out;
  }
  // Decoded, a map takes ~48 bytes per entry plus its strings: a first chunk
  // of 8x the frame holds a usual header whole (one malloc instead of two).
  header* h = &out.value.emplace(header(std::clamp<std::size_t>(8 * size, zone_chunk_bytes, 4096)));
  std::size_t offset = 0;
  msgpack::object root;
  try {
    root = msgpack::unpack(*h->zone_, static_cast<const char*>(data), size, offset,
                           never_reference, nullptr, header_limits);
  } catch (const std::exception& e) {
    out.value.reset();
    out.error = std::string("header is not valid MessagePack: ") + e.what();
    return out;
  }
  if (offset != size) {
    out.value.reset();
    out.error = "header has " + std::to_string(size - offset) + " trailing bytes after the map";
    return out;
  }
  if (root.type != msgpack::type::MAP) {
    out.value.reset();
    out.error = "header is not a MessagePack map";
    return out;
  }
  h->entries_.reserve(root.via.map.size);
  for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object_kv& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) {
      out.value.reset();
      out.error = "header keys must be strings";
      return out;
    }
    std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
    if (entry* existing = h->find_entry(key)) {
      existing->value = kv.val;  // a repeated key: the last one wins
    } else {
      h->entries_.push_back({key, kv.val});
    }
  }
  return out;
}

header_result header::from_json(const nlohmann::json& object) {
  if (!object.is_object()) return {std::nullopt, "header must be a JSON object"};
  std::vector<std::uint8_t> bytes = nlohmann::json::to_msgpack(object);
  return decode(bytes.data(), bytes.size());
}

msgpack::zone& header::zone() {
  if (!zone_) zone_ = std::make_unique<msgpack::zone>(zone_chunk_bytes);
  return *zone_;
}

header::entry* header::find_entry(std::string_view key) {
  for (entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const msgpack::object* header::find(std::string_view key) const {
  for (const entry& e : entries_) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

std::optional<std::uint64_t> header::get_uint(std::string_view key) const {
  const msgpack::object* o = find(key);
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o->via.u64;
}

std::optional<std::string_view> header::get_string(std::string_view key) const {
  const msgpack::object* o = find(key);
  if (o == nullptr || o->type != msgpack::type::STR) return std::nullopt;
  return std::string_view(o->via.str.ptr, o->via.str.size);
}

std::string_view header::copy_key(std::string_view key) {
  if (key.empty()) return std::string_view("", 0);
  char* p = static_cast<char*>(zone().allocate_no_align(key.size()));
  std::memcpy(p, key.data(), key.size());
  return {p, key.size()};
}

void header::set(std::string_view key, const msgpack::object& value) {
  msgpack::object copy = copy_object(value, zone());
  if (entry* e = find_entry(key)) {
    e->value = copy;
  } else {
    entries_.push_back({copy_key(key), copy});
  }
}

void header::set(std::string_view key, std::uint64_t value) { set(key, msgpack::object(value)); }

void header::set(std::string_view key, std::string_view value) {
  msgpack::object o;
  o.type = msgpack::type::STR;
  o.via.str.size = static_cast<std::uint32_t>(value.size());
  o.via.str.ptr = value.data();
  set(key, o);  // deep-copies the characters into the zone
}

void header::set_json(std::string_view key, const nlohmann::json& value) {
  std::vector<std::uint8_t> bytes = nlohmann::json::to_msgpack(value);
  std::size_t offset = 0;
  msgpack::object o = msgpack::unpack(zone(), reinterpret_cast<const char*>(bytes.data()),
                                      bytes.size(), offset, never_reference, nullptr);
  set(key, o);
}

void header::set_encoded(std::string_view key, std::string_view bytes) {
  if (bytes.empty()) return;
  std::size_t offset = 0;
  msgpack::object o;
  try {
    o = msgpack::unpack(zone(), bytes.data(), bytes.size(), offset, never_reference, nullptr,
                        header_limits);
  } catch (const std::exception&) {
    return;
  }
  if (offset != bytes.size()) return;
  set(key, o);
}

std::string header::encode_value(const msgpack::object& value) {
  msgpack::sbuffer buffer(32);
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

void header::erase(std::string_view key) {
  std::erase_if(entries_, [key](const entry& e) { return e.key == key; });
}

void header::merge_missing(const header& other) {
  for (const entry& e : other.entries_) {
    if (find(e.key) == nullptr) set(e.key, e.value);
  }
}

void header::pack(msgpack::packer<msgpack::sbuffer>& packer) const {
  packer.pack_map(static_cast<std::uint32_t>(entries_.size()));
  for (const entry& e : entries_) {
    packer.pack_str(static_cast<std::uint32_t>(e.key.size()));
    packer.pack_str_body(e.key.data(), static_cast<std::uint32_t>(e.key.size()));
    packer.pack(e.value);
  }
}

zmq::message_t header::encode() const {
  msgpack::sbuffer buffer(64 + 32 * entries_.size());
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  pack(packer);
  return zmq::message_t(buffer.data(), buffer.size());
}

std::string header::encode_string() const {
  msgpack::sbuffer buffer(64 + 32 * entries_.size());
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  pack(packer);
  return std::string(buffer.data(), buffer.size());
}

nlohmann::json header::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const entry& e : entries_) out[std::string(e.key)] = carico::to_json(e.value);
  return out;
}

nlohmann::json to_json(const msgpack::object& object) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, object);
  auto bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
  nlohmann::json j = nlohmann::json::from_msgpack(bytes, bytes + buffer.size(), true, false);
  if (j.is_discarded()) return nullptr;
  return j;
}

std::string to_json_text(const msgpack::object& object) {
  switch (object.type) {
    case msgpack::type::POSITIVE_INTEGER: return std::to_string(object.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return std::to_string(object.via.i64);
    default:
      return to_json(object).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

namespace {

// The sizes of MessagePack's shortest forms, which msgpack-c's packer writes.
std::size_t str_header_size(std::size_t n) { return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5; }
std::size_t uint_size(std::uint64_t v) {
  return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}
std::size_t map_header_size(std::size_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }

// A packer stream writing into memory sized beforehand (no allocation).
struct fixed_stream {
  char* p;  // where the next bytes go
  void write(const char* data, std::size_t size) {
    if (size == 0) return;  // data may be null (an empty frame)
    std::memcpy(p, data, size);
    p += size;
  }
};

}  // namespace

zmq::message_t append_uints(const zmq::message_t& map, std::initializer_list<uint_entry> entries) {
  // The map's own count and where its pairs start: fixmap, map 16 or map 32.
  const auto* bytes = static_cast<const unsigned char*>(map.data());
  std::size_t count = 0;
  std::size_t start = 0;
  if (map.size() > 0) {
    if ((bytes[0] & 0xf0) == 0x80) {
      count = bytes[0] & 0x0f;
      start = 1;
    } else if (bytes[0] == 0xde && map.size() >= 3) {
      count = (std::size_t{bytes[1]} << 8) | bytes[2];
      start = 3;
    } else if (bytes[0] == 0xdf && map.size() >= 5) {
      count = (std::size_t{bytes[1]} << 24) | (std::size_t{bytes[2]} << 16) |
              (std::size_t{bytes[3]} << 8) | bytes[4];
      start = 5;
    } else {
      throw std::invalid_argument("append_uints: frame is not an encoded map");
    }
  }
  // Sized first, then written straight into the frame: one allocation.
  const std::size_t body = map.size() - start;
  std::size_t total = map_header_size(count + entries.size()) + body;
  for (const uint_entry& e : entries) {
    total += str_header_size(e.key.size()) + e.key.size() + uint_size(e.value);
  }
  zmq::message_t out(total);
  fixed_stream stream{static_cast<char*>(out.data())};
  msgpack::packer<fixed_stream> packer(stream);
  packer.pack_map(static_cast<std::uint32_t>(count + entries.size()));
  stream.write(reinterpret_cast<const char*>(bytes) + start, body);
  for (const uint_entry& e : entries) {
    packer.pack_str(static_cast<std::uint32_t>(e.key.size()));
    packer.pack_str_body(e.key.data(), static_cast<std::uint32_t>(e.key.size()));
    packer.pack(e.value);
  }
  return out;
}

}  // namespace carico
