// libFuzzer target: safe_file_name. Whatever the title, the name has no '/',
// no "..", no control characters, no leading dot in the title part, is valid
// UTF-8, at most 255 bytes, starts with "<request>-" and ends with ".json".
#include <cstdlib>
#include <cstring>
#include <string>

#include "worker/text_service.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// True when s is valid UTF-8 with no C0/C1 control characters.
bool clean_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3
                                   : (b & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1f) : len == 3 ? (b & 0x0f) : (b & 0x07);
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return false;
    if (cp >= 0xd800 && cp <= 0xdfff) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint64_t request = 0;
  if (size >= sizeof request) {
    std::memcpy(&request, data, sizeof request);
    data += sizeof request;
    size -= sizeof request;
  }
  const std::string_view title(reinterpret_cast<const char*>(data), size);
  const std::string name = carico::safe_file_name(request, title);
  const std::string prefix = std::to_string(request) + "-";
  check(name.size() <= 255);
  check(name.size() > prefix.size() + 5);
  check(name.compare(0, prefix.size(), prefix) == 0);
  check(name.compare(name.size() - 5, 5, ".json") == 0);
  check(name.find('/') == std::string::npos);
  check(name.find('\\') == std::string::npos);
  check(name.find("..") == std::string::npos);
  check(name.find('\0') == std::string::npos);
  check(name[prefix.size()] != '.');
  check(clean_utf8(name));
  check(name != "." && name != "..");
  // Deterministic: the same title always maps to the same name.
  check(carico::safe_file_name(request, title) == name);
  return 0;
}
