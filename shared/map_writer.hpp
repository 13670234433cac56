// Writes an encoded MessagePack map entry by entry, with the same encodings
// msgpack-c's packer chooses, into a buffer kept between maps.
//
//   carico::map_writer out;             // one per loop: its buffer is reused
//   out.begin(2);
//   out.add_raw("result", entry.value); // a value already encoded, copied as is
//   out.add("code", std::uint64_t{200});
//   zmq::message_t frame = out.to_message();
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <zmq.hpp>

namespace carico {

// A stream for msgpack-c's packer that appends to a string.
struct string_sink {
  std::string& out;  // where the bytes go
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

class map_writer {
 public:
  map_writer() = default;
  map_writer(map_writer&& other) noexcept { *this = std::move(other); }
  map_writer& operator=(map_writer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }

  // Starts a map of `count` entries; what was written before is dropped.
  void begin(std::size_t count);
  // An entry whose value is one complete encoded MessagePack value (not one
  // inside this writer's own bytes: a write may move them).
  void add_raw(std::string_view key, std::string_view encoded_value);
  void add(std::string_view key, std::uint64_t value);
  void add(std::string_view key, std::string_view value);
  void add(std::string_view key, const char* value) { add(key, std::string_view(value)); }

  // The map so far; complete once `count` entries were added.
  std::string_view bytes() const { return std::string_view(data_.get(), size_); }
  zmq::message_t to_message() const { return zmq::message_t(data_.get(), size_); }

 private:
  struct sink;  // msgpack-c's stream: appends to data_, inline (map_writer.cpp)

  void add_key(std::string_view key);
  void grow(std::size_t more);  // room for `more` bytes past size_

  std::unique_ptr<char[]> data_;  // the encoded map; kept across begin()
  std::size_t size_{0};           // bytes written
  std::size_t capacity_{0};       // bytes data_ holds
};

}  // namespace carico
