#include "shared/map_writer.hpp"

#include <msgpack.hpp>

namespace carico {
namespace {

// msgpack-c's packer writes into any stream with write(); this one appends.
struct append_stream {
  std::string& out;  // the writer's buffer
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

}  // namespace

void map_writer::begin(std::size_t count) {
  buffer_.clear();
  append_stream stream{buffer_};
  msgpack::packer<append_stream>(stream).pack_map(static_cast<std::uint32_t>(count));
}

void map_writer::add_key(std::string_view key) {
  append_stream stream{buffer_};
  msgpack::packer<append_stream> packer(stream);
  packer.pack_str(static_cast<std::uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

void map_writer::add_raw(std::string_view key, std::string_view encoded_value) {
  add_key(key);
  buffer_.append(encoded_value);
}

void map_writer::add(std::string_view key, std::uint64_t value) {
  add_key(key);
  append_stream stream{buffer_};
  msgpack::packer<append_stream>(stream).pack(value);
}

void map_writer::add(std::string_view key, std::string_view value) {
  add_key(key);
  append_stream stream{buffer_};
  msgpack::packer<append_stream> packer(stream);
  packer.pack_str(static_cast<std::uint32_t>(value.size()));
  packer.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
}

}  // namespace carico
