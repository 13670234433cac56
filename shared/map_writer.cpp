#include "shared/map_writer.hpp"

#include <msgpack.hpp>

namespace carico {

void map_writer::begin(std::size_t count) {
  buffer_.clear();
  string_sink stream{buffer_};
  msgpack::packer<string_sink>(stream).pack_map(static_cast<std::uint32_t>(count));
}

void map_writer::add_key(std::string_view key) {
  string_sink stream{buffer_};
  msgpack::packer<string_sink> packer(stream);
  packer.pack_str(static_cast<std::uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

void map_writer::add_raw(std::string_view key, std::string_view encoded_value) {
  add_key(key);
  buffer_.append(encoded_value);
}

void map_writer::add(std::string_view key, std::uint64_t value) {
  add_key(key);
  string_sink stream{buffer_};
  msgpack::packer<string_sink>(stream).pack(value);
}

void map_writer::add(std::string_view key, std::string_view value) {
  add_key(key);
  string_sink stream{buffer_};
  msgpack::packer<string_sink> packer(stream);
  packer.pack_str(static_cast<std::uint32_t>(value.size()));
  packer.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
}

}  // namespace carico
