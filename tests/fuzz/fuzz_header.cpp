// libFuzzer target: header::decode of one MessagePack map, and the invariants
// that a decoded header re-encodes to a map that decodes to the same bytes.
#include <cstdlib>

#include "shared/header.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace carico;
  header_result h = header::decode(data, size);
  if (!h) {
    check(!h.error.empty());
    return 0;
  }
  const std::string once = h.value->encode_string();
  header_result again = header::decode(once.data(), once.size());
  check(static_cast<bool>(again));
  check(again.value->size() == h.value->size());
  check(again.value->encode_string() == once);
  (void)h.value->to_json();
  (void)h.value->get_uint("request");
  (void)h.value->get_string("title");
  // Editing must keep it a valid map.
  h.value->set("request", std::uint64_t{42});
  h.value->erase("id");
  header copy;
  copy.merge_missing(*h.value);
  const std::string edited = copy.encode_string();
  header_result third = header::decode(edited.data(), edited.size());
  check(static_cast<bool>(third));
  check(third.value->get_uint("request") == std::uint64_t{42});
  return 0;
}
