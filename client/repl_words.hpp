// What the REPL makes of the words a user types: split, compared without
// case, read as numbers. Errors are sentences for the user.
//
//   std::string why;
//   if (auto n = carico::typed_number("17", 1000, why)) ...  // else why: "N must be ..."
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace carico {

// The blank-separated words of line.
std::vector<std::string> split_words(const std::string& line);

// s in ASCII lower case.
std::string lower_case(std::string s);

// A positive integer of decimal digits only (no sign, no blanks) no larger
// than max; else nothing, and why says "N must be a positive integer, not
// 'x'" or "N must be at most MAX, not x".
std::optional<std::uint64_t> typed_number(const std::string& text, std::uint64_t max,
                                          std::string& why);

// Levenshtein distance (bytes): how far a mistyped command is from a real one.
std::size_t edit_distance(const std::string& a, const std::string& b);

// True for words that look like an attempt at a number: 0, -3, 2.5, 1e3.
bool looks_numeric(const std::string& word);

}  // namespace carico
