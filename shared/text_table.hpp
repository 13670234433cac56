// A plain-text table: every column padded to its widest cell, two blanks
// between columns, no trailing blanks, one '\n' after each row.
//
//   std::string text = carico::render_table({{"NAME", "STATE"}, {"w1", "idle"}});
//   // "NAME  STATE\nw1    idle\n"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace carico {

// rows may be ragged (a short row just ends early); widths count UTF-8 code
// points, so "è" is one column (no East Asian double widths); no rows, "".
// Cells go through escape_controls: a tab or newline in a cell is shown as
// \t or \n and never breaks the table.
std::string render_table(const std::vector<std::vector<std::string>>& rows);

// text broken into lines of at most width columns (UTF-8 code points) at
// blanks, each line starting with indent blanks and ending in '\n'; a word
// longer than a line gets a line of its own, whole. "" for blank text.
std::string wrap_words(const std::string& text, std::size_t width, std::size_t indent);

// The columns text takes on a terminal: its UTF-8 code points.
std::size_t text_columns(const std::string& text);

// text with every control character (below 0x20, and DEL) written out as an
// escape: "\n", "\r", "\t", else "\xNN" ("a\tb" becomes the 6 bytes a\tb). Text
// from users goes into log lines and tables this way: it cannot split a line,
// misalign a column or drive a terminal. Backslashes are left as they are.
std::string escape_controls(std::string_view text);

// True when text holds a byte escape_controls would rewrite.
bool has_controls(std::string_view text);

// text with every control character (below 0x20, and DEL) replaced by `with`:
// text from the broker or a file cannot drive the terminal through a cell.
std::string without_controls(std::string text, char with);

}  // namespace carico
