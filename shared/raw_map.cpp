#include "shared/raw_map.hpp"

#include <cstdint>

namespace carico {
namespace {

// Tighter than header::decode's unpack limits (4096 items, 1 MiB strings,
// depth 32), so whatever parse() accepts, header::decode accepts too.
constexpr std::uint32_t max_items = 1024;       // per array or map
constexpr std::uint32_t max_bytes = 64u << 10;  // per string or binary
constexpr int max_depth = 8;                    // nested containers, the header map included
constexpr std::uint32_t max_values = 4096;      // values in the whole frame

// A bounded reader over the frame: every read checks what is left first.
class cursor {
 public:
  cursor(const unsigned char* p, const unsigned char* end) : p_(p), end_(end) {}
  const unsigned char* at() const { return p_; }
  bool done() const { return p_ == end_; }

  // Reads an n-byte big-endian unsigned; false when fewer bytes remain.
  bool read_be(std::size_t n, std::uint64_t& out) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) out = (out << 8) | p_[i];
    p_ += n;
    return true;
  }
  bool skip(std::uint64_t n) {
    if (static_cast<std::uint64_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }
  bool read_byte(unsigned char& out) {
    if (p_ == end_) return false;
    out = *p_++;
    return true;
  }

  // Skips one complete value at container depth `depth`; false when it is
  // truncated, malformed or outside the bounds above.
  bool skip_value(int depth, std::uint32_t& values) {
    if (++values > max_values) return false;
    unsigned char b = 0;
    if (!read_byte(b)) return false;
    if (b <= 0x7f || b >= 0xe0) return true;                  // fixint
    if (b >= 0x80 && b <= 0x8f) return skip_items(2u * (b & 0x0f), depth, values);  // fixmap
    if (b >= 0x90 && b <= 0x9f) return skip_items(b & 0x0f, depth, values);         // fixarray
    if (b >= 0xa0 && b <= 0xbf) return skip(b & 0x1f);         // fixstr
    std::uint64_t n = 0;
    switch (b) {
      case 0xc0: case 0xc2: case 0xc3: return true;           // nil, false, true
      case 0xcc: case 0xd0: return skip(1);                    // uint8, int8
      case 0xcd: case 0xd1: return skip(2);
      case 0xca: case 0xce: case 0xd2: return skip(4);         // float32, uint32, int32
      case 0xcb: case 0xcf: case 0xd3: return skip(8);
      case 0xc4: case 0xd9: return read_be(1, n) && n <= max_bytes && skip(n);  // bin8, str8
      case 0xc5: case 0xda: return read_be(2, n) && n <= max_bytes && skip(n);
      case 0xc6: case 0xdb: return read_be(4, n) && n <= max_bytes && skip(n);
      case 0xdc: return read_be(2, n) && n <= max_items && skip_items(static_cast<std::uint32_t>(n), depth, values);
      case 0xdd: return read_be(4, n) && n <= max_items && skip_items(static_cast<std::uint32_t>(n), depth, values);
      case 0xde: return read_be(2, n) && n <= max_items && skip_items(static_cast<std::uint32_t>(2 * n), depth, values);
      case 0xdf: return read_be(4, n) && n <= max_items && skip_items(static_cast<std::uint32_t>(2 * n), depth, values);
      default: return false;  // 0xc1 (never used), ext types: left to header::decode
    }
  }

 private:
  bool skip_items(std::uint32_t n, int depth, std::uint32_t& values) {
    if (depth + 1 > max_depth) return false;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!skip_value(depth + 1, values)) return false;
    }
    return true;
  }

  const unsigned char* p_;    // next byte to read
  const unsigned char* end_;  // one past the frame
};

// The characters of a string value, when `value` is exactly one string.
std::optional<std::string_view> string_of(const unsigned char* p, std::size_t size) {
  if (size == 0) return std::nullopt;
  std::size_t prefix = 0;
  std::uint64_t length = 0;
  if (p[0] >= 0xa0 && p[0] <= 0xbf) {
    prefix = 1;
    length = p[0] & 0x1f;
  } else if (p[0] >= 0xd9 && p[0] <= 0xdb) {
    prefix = std::size_t{1} + (std::size_t{1} << (p[0] - 0xd9));  // 2, 3 or 5
    if (size < prefix) return std::nullopt;
    for (std::size_t i = 1; i < prefix; ++i) length = (length << 8) | p[i];
  } else {
    return std::nullopt;
  }
  if (size - prefix < length) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(p + prefix), static_cast<std::size_t>(length));
}

}  // namespace

bool raw_map::parse(const void* data, std::size_t size) {
  count_ = 0;
  const auto* p = static_cast<const unsigned char*>(data);
  if (size == 0 || size > UINT32_MAX) return false;  // offsets are 32-bit
  cursor in(p, p + size);
  unsigned char b = 0;
  std::uint64_t n = 0;
  (void)in.read_byte(b);
  if (b >= 0x80 && b <= 0x8f) {
    n = b & 0x0f;
  } else if (b == 0xde) {
    if (!in.read_be(2, n)) return false;
  } else if (b == 0xdf) {
    if (!in.read_be(4, n)) return false;
  } else {
    return false;
  }
  if (n > max_entries) return false;
  std::uint32_t values = 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    const unsigned char* key_at = in.at();
    if (!in.skip_value(1, values)) break;
    const std::optional<std::string_view> key =
        string_of(key_at, static_cast<std::size_t>(in.at() - key_at));
    if (!key) break;  // a key that is not a string
    const unsigned char* value_at = in.at();
    if (!in.skip_value(1, values)) break;
    if (over(data).contains(*key)) break;  // a repeated key
    places_[count_++] = {
        {static_cast<std::uint32_t>(reinterpret_cast<const unsigned char*>(key->data()) - p),
         static_cast<std::uint32_t>(key->size())},
        {static_cast<std::uint32_t>(value_at - p), static_cast<std::uint32_t>(in.at() - value_at)}};
  }
  if (count_ != n || !in.done()) {
    count_ = 0;
    return false;
  }
  return true;
}

raw_view::entry raw_view::operator[](std::size_t i) const {
  const raw_map::place& at = map_->places_[i];
  return {std::string_view(data_ + at.key.at, at.key.size),
          std::string_view(data_ + at.value.at, at.value.size)};
}

std::optional<raw_view::entry> raw_view::find(std::string_view key) const {
  for (std::size_t i = 0; i < size(); ++i) {
    const raw_map::place& at = map_->places_[i];
    if (key == std::string_view(data_ + at.key.at, at.key.size)) return (*this)[i];
  }
  return std::nullopt;
}

std::optional<std::uint64_t> raw_view::get_uint(std::string_view key) const {
  const std::optional<entry> e = find(key);
  return e ? raw_map::as_uint(e->value) : std::nullopt;
}

std::optional<std::string_view> raw_view::get_string(std::string_view key) const {
  const std::optional<entry> e = find(key);
  return e ? raw_map::as_string(e->value) : std::nullopt;
}

// msgpack-c reads any integer encoding of a value >= 0, signed ones included,
// as a POSITIVE_INTEGER; so does this.
std::optional<std::uint64_t> raw_map::as_uint(std::string_view value) {
  if (value.empty()) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  if (p[0] <= 0x7f) return value.size() == 1 ? std::optional<std::uint64_t>(p[0]) : std::nullopt;
  std::size_t width = 0;
  bool is_signed = false;
  switch (p[0]) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    case 0xd0: width = 1; is_signed = true; break;
    case 0xd1: width = 2; is_signed = true; break;
    case 0xd2: width = 4; is_signed = true; break;
    case 0xd3: width = 8; is_signed = true; break;
    default: return std::nullopt;
  }
  if (value.size() != 1 + width) return std::nullopt;
  if (is_signed && (p[1] & 0x80) != 0) return std::nullopt;  // negative
  std::uint64_t out = 0;
  for (std::size_t i = 1; i <= width; ++i) out = (out << 8) | p[i];
  return out;
}

std::optional<std::string_view> raw_map::as_string(std::string_view value) {
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  std::optional<std::string_view> s = string_of(p, value.size());
  if (!s) return std::nullopt;
  // Exactly one string: its characters end the value.
  if (s->data() + s->size() != value.data() + value.size()) return std::nullopt;
  return s;
}

}  // namespace carico
