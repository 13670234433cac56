// MessagePack bytes of any value msgpack-c can pack, for tests that build
// header frames by hand.
//
//   std::string frame = carico::test::pack(std::map<std::string, int>{{"id", 1}});
#pragma once

#include <string>

#include <msgpack.hpp>

namespace carico::test {

// Packs value with msgpack-c and returns the bytes.
template <class T>
std::string pack(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace carico::test
