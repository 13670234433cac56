// The `text` service: the original system's file_di_testo request.
//
//   auto doc = carico::parse_document(payload);       // title/content or titolo/contenuto
//   if (!doc) reply(400, doc.error);
//   std::uint64_t n = carico::count_a(doc->content);  // 'a' and 'A'
//   std::string name = carico::safe_file_name(17, doc->title);  // "17-<title>.json"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/codec.hpp"

namespace carico {

struct document {
  std::string title;    // from title or titolo
  std::string content;  // from content or contenuto
};

// Limits on a document's JSON, so hostile input cannot exhaust the worker.
inline constexpr std::size_t max_document_depth = 64;
inline constexpr std::size_t max_document_bytes = 16u << 20;  // larger payloads: 413
inline constexpr std::size_t max_document_values = 1u << 20;  // JSON values (numbers, keys...)

// Parses a JSON object with a string title and content, in English or in the
// original's Italian keys. Anything else is an error with a reason.
decoded<document> parse_document(std::string_view payload);

// The number of letters 'a' and 'A' in text.
std::uint64_t count_a(std::string_view text);

// Unicode code points in UTF-8 text (invalid bytes count one each).
std::uint64_t count_chars(std::string_view text);

// The file name a document is stored under: "<request>-<title>.json", where the
// title is made safe: no '/', '\\', NUL, control characters, "..", leading dot
// or invalid UTF-8; never empty; at most 255 bytes in all.
std::string safe_file_name(std::uint64_t request, std::string_view title);
// The same with another key than a request number: "<key>-<title>.json".
std::string safe_file_name(std::string_view key, std::string_view title);

}  // namespace carico
