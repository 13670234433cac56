#include "shared/map_writer.hpp"

#include <algorithm>
#include <cstring>

#include <msgpack.hpp>

namespace carico {

// Appends to the writer's buffer. Defined here, so that msgpack-c's packer
// calls it inline: its one- to nine-byte writes of a known size become
// stores, where std::string::append was a call each.
struct map_writer::sink {
  map_writer& w;
  void write(const char* data, std::size_t size) {
    if (size == 0) return;  // data may be null then
    if (w.capacity_ - w.size_ < size) w.grow(size);
    std::memcpy(w.data_.get() + w.size_, data, size);
    w.size_ += size;
  }
};

void map_writer::grow(std::size_t more) {
  const std::size_t capacity = std::max<std::size_t>({256, 2 * capacity_, size_ + more});
  auto bigger = std::make_unique<char[]>(capacity);
  if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
  data_ = std::move(bigger);
  capacity_ = capacity;
}

void map_writer::begin(std::size_t count) {
  size_ = 0;
  sink out{*this};
  msgpack::packer<sink>(out).pack_map(static_cast<std::uint32_t>(count));
}

void map_writer::add_key(std::string_view key) {
  sink out{*this};
  msgpack::packer<sink> packer(out);
  packer.pack_str(static_cast<std::uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

void map_writer::add_raw(std::string_view key, std::string_view encoded_value) {
  add_key(key);
  sink{*this}.write(encoded_value.data(), encoded_value.size());
}

void map_writer::add(std::string_view key, std::uint64_t value) {
  add_key(key);
  sink out{*this};
  msgpack::packer<sink>(out).pack(value);
}

void map_writer::add(std::string_view key, std::string_view value) {
  add_key(key);
  sink out{*this};
  msgpack::packer<sink> packer(out);
  packer.pack_str(static_cast<std::uint32_t>(value.size()));
  packer.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
}

}  // namespace carico
