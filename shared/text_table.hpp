// A plain-text table: every column padded to its widest cell, two blanks
// between columns, no trailing blanks, one '\n' after each row.
//
//   std::string text = carico::render_table({{"NAME", "STATE"}, {"w1", "idle"}});
//   // "NAME  STATE\nw1    idle\n"
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace carico {

// rows may be ragged (a short row just ends early); widths count UTF-8 code
// points, so "è" is one column (no East Asian double widths); no rows, "".
std::string render_table(const std::vector<std::vector<std::string>>& rows);

// text broken into lines of at most width columns (UTF-8 code points) at
// blanks, each line starting with indent blanks and ending in '\n'; a word
// longer than a line gets a line of its own, whole. "" for blank text.
std::string wrap_words(const std::string& text, std::size_t width, std::size_t indent);

// The columns text takes on a terminal: its UTF-8 code points.
std::size_t text_columns(const std::string& text);

// text with every control character (below 0x20, and DEL) replaced by `with`:
// text from the broker or a file cannot drive the terminal through a cell.
std::string without_controls(std::string text, char with);

}  // namespace carico
