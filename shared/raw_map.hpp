// An encoded MessagePack header map read in place: where each entry's key and
// value lie in the frame, as offsets, without a zone, a copy or an allocation.
// It holds no pointer into the frame: it is read through the frame, wherever
// the frame's bytes are now (a zmq::message_t of up to 33 bytes keeps them
// inside itself, so moving the message moves them).
//
//   carico::raw_map m;
//   if (m.parse(frame.data(), frame.size())) {
//     std::optional<std::uint64_t> request = m.over(frame.data()).get_uint("request");
//   } else {
//     header_result h = carico::header::decode(frame);  // the general path
//   }
//
// parse() accepts a subset of what header::decode accepts: one map with string
// keys and no trailing bytes, within tighter bounds (entries, depth, sizes, no
// ext values), and no key twice. A refusal means "use header::decode", which
// has the last word on whether the bytes are a valid header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace carico {

class raw_view;

class raw_map {
 public:
  static constexpr std::size_t max_entries = 32;  // more: parse() refuses

  // Reads [data, data + size); false (and empty) when the bytes are outside
  // the subset described above.
  bool parse(const void* data, std::size_t size);

  std::size_t size() const { return count_; }
  // The map read through `data`: the bytes parse() read, wherever they are now.
  raw_view over(const void* data) const;

  // The same readings as raw_view's, of one encoded value (an entry's `value`).
  static std::optional<std::uint64_t> as_uint(std::string_view value);
  static std::optional<std::string_view> as_string(std::string_view value);

 private:
  friend class raw_view;
  struct span {
    std::uint32_t at{0};    // offset from the map's first byte
    std::uint32_t size{0};  // bytes
  };
  struct place {
    span key;    // the key's characters (not its MessagePack prefix)
    span value;  // the value's encoded bytes
  };
  std::array<place, max_entries> places_{};  // the map, in wire order
  std::size_t count_{0};                     // entries in use
};

// A parsed map and the bytes it reads: valid while those bytes stay where
// they are. Make one where it is read; keep the raw_map, not the view.
class raw_view {
 public:
  // One entry: its key's characters and its value as encoded (a complete
  // MessagePack value, which can be copied into another map as it is).
  struct entry {
    std::string_view key;
    std::string_view value;
  };
  class iterator {
   public:
    iterator(const raw_view* view, std::size_t i) : view_(view), i_(i) {}
    entry operator*() const { return (*view_)[i_]; }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return i_ != other.i_; }

   private:
    const raw_view* view_;
    std::size_t i_;
  };

  raw_view(const raw_map& map, const void* data)
      : map_(&map), data_(static_cast<const char*>(data)) {}

  std::size_t size() const { return map_->count_; }
  entry operator[](std::size_t i) const;
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, size()}; }

  std::optional<entry> find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key).has_value(); }
  // The value of key when it is a non-negative integer (header::get_uint's rule).
  std::optional<std::uint64_t> get_uint(std::string_view key) const;
  // The value of key when it is a string (header::get_string's rule).
  std::optional<std::string_view> get_string(std::string_view key) const;

 private:
  const raw_map* map_;
  const char* data_;
};

inline raw_view raw_map::over(const void* data) const { return raw_view(*this, data); }

}  // namespace carico
