// libFuzzer target: the text worker's document parser (JSON with title/content
// or titolo/contenuto) and the counters run on what it accepts.
#include <cstdlib>

#include "worker/text_service.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace carico;
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  decoded<document> doc = parse_document(payload);
  if (!doc) {
    check(!doc.error.empty());
    return 0;
  }
  check(doc->content.size() <= size && doc->title.size() <= size);
  check(count_a(doc->content) <= doc->content.size());
  check(count_chars(doc->content) <= doc->content.size());
  check(!safe_file_name(1, doc->title).empty());
  return 0;
}
