// An encoded MessagePack header map read in place: each entry's key and the
// encoded bytes of its value, without a zone, a copy or an allocation.
//
//   carico::raw_map m;
//   if (m.parse(frame.data(), frame.size())) {
//     std::optional<std::uint64_t> request = m.get_uint("request");
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

class raw_map {
 public:
  // One entry: its key's characters and its value as encoded (a complete
  // MessagePack value, which can be copied into another map as it is).
  struct entry {
    std::string_view key;    // the key's characters (not its MessagePack prefix)
    std::string_view value;  // the value's encoded bytes
  };
  static constexpr std::size_t max_entries = 32;  // more: parse() refuses

  // Reads [data, data + size); false (and empty) when the bytes are outside
  // the subset described above.
  bool parse(const void* data, std::size_t size);

  std::size_t size() const { return count_; }
  const entry& operator[](std::size_t i) const { return entries_[i]; }
  const entry* begin() const { return entries_.data(); }
  const entry* end() const { return entries_.data() + count_; }

  const entry* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // The value of key when it is a non-negative integer (header::get_uint's rule).
  std::optional<std::uint64_t> get_uint(std::string_view key) const;
  // The value of key when it is a string (header::get_string's rule).
  std::optional<std::string_view> get_string(std::string_view key) const;

  // The bytes parse() read now live at `data` (the same bytes, moved: a
  // message_t of up to 33 bytes keeps them inside itself, so moving the
  // message moves them). The entries follow; nothing is read again.
  void rebase(const void* data);

  // The same readings of one encoded value (an entry's `value`).
  static std::optional<std::uint64_t> as_uint(std::string_view value);
  static std::optional<std::string_view> as_string(std::string_view value);

 private:
  std::array<entry, max_entries> entries_{};  // the map, in wire order
  std::size_t count_{0};                      // entries in use
  const char* base_{nullptr};                 // where parse() read the map
};

}  // namespace carico
