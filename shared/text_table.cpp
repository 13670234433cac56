#include "shared/text_table.hpp"

#include <algorithm>
#include <cstddef>
#include <sstream>

namespace carico {
namespace {

// Columns s takes on a terminal: its UTF-8 code points (continuation bytes not counted).
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::size_t text_columns(const std::string& text) { return columns(text); }

std::string wrap_words(const std::string& text, std::size_t width, std::size_t indent) {
  const std::string margin(indent, ' ');
  std::istringstream in(text);
  std::string out;
  std::string line;
  for (std::string word; in >> word;) {
    if (!line.empty() && indent + columns(line) + 1 + columns(word) > width) {
      out += margin + line + '\n';
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += margin + line + '\n';
  return out;
}

bool has_controls(std::string_view text) {
  // In blocks of 32 bytes with no early exit inside one, so that the compiler
  // checks a block with vector instructions: every log line passes here.
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    unsigned found = 0;
    for (std::size_t k = 0; k < 32; ++k) found |= (p[i + k] < 0x20) | (p[i + k] == 0x7f);
    if (found != 0) return true;
  }
  for (; i < n; ++i) {
    if (p[i] < 0x20 || p[i] == 0x7f) return true;
  }
  return false;
}

std::string escape_controls(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
    }
  }
  return out;
}

std::string without_controls(std::string text, char with) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = with;
  }
  return text;
}

std::string render_table(const std::vector<std::vector<std::string>>& raw_rows) {
  // Escaped first, so that the widths are those of what is printed.
  std::vector<std::vector<std::string>> rows = raw_rows;
  for (auto& row : rows) {
    for (std::string& cell : row) {
      if (has_controls(cell)) cell = escape_controls(cell);
    }
  }
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], columns(row[i]));
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - columns(row[i]) + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace carico
