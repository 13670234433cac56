#include "worker/text_service.hpp"

#include <nlohmann/json.hpp>

namespace carico {
namespace {

constexpr std::size_t max_file_name = 255;

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                        (len == 4 && cp < 0x10000);
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  // C1 control characters (U+0080..U+009F) are as unprintable as C0 ones.
  if (cp >= 0x80 && cp <= 0x9f) return 0;
  return len;
}

bool unsafe_ascii(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u == 0x7f) return true;
  switch (c) {
    case '/': case '\\': case ':': case '*': case '?': case '"': case '<': case '>': case '|':
    case ' ': case '\t':
      return true;
    default:
      return false;
  }
}

const nlohmann::json* find_string(const nlohmann::json& object, const char* english,
                                  const char* italian) {
  for (const char* key : {english, italian}) {
    auto it = object.find(key);
    if (it != object.end() && it->is_string()) return &*it;
  }
  return nullptr;
}

}  // namespace

decoded<document> parse_document(std::string_view payload) {
  decoded<document> out;
  if (payload.size() > max_document_bytes) {
    out.error = "document is larger than " + std::to_string(max_document_bytes) + " bytes";
    return out;
  }
  bool too_deep = false;
  std::size_t values = 0;
  auto limit_depth = [&too_deep, &values](int depth, nlohmann::json::parse_event_t,
                                          nlohmann::json&) {
    if (static_cast<std::size_t>(depth) > max_document_depth) too_deep = true;
    return !too_deep && ++values <= max_document_values;
  };
  nlohmann::json j = nlohmann::json::parse(payload.begin(), payload.end(), limit_depth,
                                           /*allow_exceptions=*/false);
  if (too_deep) {
    out.error = "document nests deeper than " + std::to_string(max_document_depth) + " levels";
    return out;
  }
  if (values > max_document_values) {
    out.error = "document has more than " + std::to_string(max_document_values) + " JSON values";
    return out;
  }
  if (j.is_discarded()) {
    out.error = "document is not valid JSON";
    return out;
  }
  if (!j.is_object()) {
    out.error = "document must be a JSON object";
    return out;
  }
  const nlohmann::json* title = find_string(j, "title", "titolo");
  const nlohmann::json* content = find_string(j, "content", "contenuto");
  if (title == nullptr) {
    out.error = "document has no string title (title or titolo)";
    return out;
  }
  if (content == nullptr) {
    out.error = "document has no string content (content or contenuto)";
    return out;
  }
  out.value.emplace(document{title->get<std::string>(), content->get<std::string>()});
  return out;
}

std::uint64_t count_a(std::string_view text) {
  std::uint64_t n = 0;
  for (char c : text) n += (c == 'a') | (c == 'A');
  return n;
}

std::uint64_t count_chars(std::string_view text) {
  std::uint64_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string safe_file_name(std::uint64_t request, std::string_view title) {
  return safe_file_name(std::string_view(std::to_string(request)), title);
}

std::string safe_file_name(std::string_view key, std::string_view title) {
  const std::string prefix = std::string(key) + "-";
  const std::string suffix = ".json";
  const std::size_t budget = max_file_name - prefix.size() - suffix.size();

  std::string safe;
  for (std::size_t i = 0; i < title.size();) {
    const std::size_t len = utf8_sequence(title, i);
    std::string_view piece = len == 0 ? std::string_view("_") : title.substr(i, len);
    if (len == 1 && unsafe_ascii(title[i])) piece = "_";
    if (len == 1 && title[i] == '.' && (safe.empty() || safe.back() == '.')) piece = "_";
    if (safe.size() + piece.size() > budget) break;  // cut on a code point boundary
    safe += piece;
    i += len == 0 ? 1 : len;
  }
  if (!safe.empty() && safe.back() == '.') safe.back() = '_';  // no ".." before ".json"
  if (safe.empty()) safe = "untitled";
  return prefix + safe + suffix;
}

}  // namespace carico
