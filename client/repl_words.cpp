#include "client/repl_words.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace carico {

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string lower_case(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::uint64_t> typed_number(const std::string& text, std::uint64_t max,
                                          std::string& why) {
  // 19 digits always fit in 64 bits; more are beyond any max worth typing.
  bool digits = !text.empty() && text.size() <= 19;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  const std::uint64_t n = digits ? std::stoull(text) : 0;
  if (n == 0) {
    why = "N must be a positive integer, not '" + text + "'";
    return std::nullopt;
  }
  if (n > max) {
    why = "N must be at most " + std::to_string(max) + ", not " + text;
    return std::nullopt;
  }
  return n;
}

bool looks_numeric(const std::string& word) {
  return !word.empty() && word.find_first_not_of("0123456789+-.eE") == std::string::npos &&
         word.find_first_of("0123456789") != std::string::npos;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace carico
