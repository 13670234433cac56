// shared/text_table: the one table renderer behind the REPL, carico-client
// workers/stats and carico-broker journal.
#include <catch2/catch.hpp>

#include "shared/text_table.hpp"

using carico::render_table;

TEST_CASE("render_table pads each column to its widest cell, two blanks between") {
  CHECK(render_table({{"NAME", "STATE", "PID"}, {"w1", "idle", "42"}, {"worker-22", "busy", "7"}}) ==
        "NAME       STATE  PID\n"
        "w1         idle   42\n"
        "worker-22  busy   7\n");
}

TEST_CASE("render_table: ragged rows end early and still align the columns they have") {
  CHECK(render_table({{"a", "bbb", "c"}, {"dddd"}, {"e", "f"}, {}}) ==
        "a     bbb  c\n"
        "dddd\n"
        "e     f\n"
        "\n");
  // A column only a long row has is as wide as its own cells.
  CHECK(render_table({{"x"}, {"yy", "zzz", "q"}, {"", "", "long"}}) ==
        "x\n"
        "yy  zzz  q\n"
        "         long\n");
}

TEST_CASE("render_table counts UTF-8 code points, not bytes") {
  // "è" is two bytes, one column; "città" is five columns.
  const std::string table = render_table({{"città", "x"}, {"è", "y"}, {"abcdef", "z"}});
  CHECK(table ==
        "città   x\n"
        "è       y\n"
        "abcdef  z\n");
  // The second column starts at the same column on every line.
  CHECK(render_table({{"è", "1"}, {"e", "2"}}) == "è  1\ne  2\n");
}

TEST_CASE("render_table of nothing is nothing") {
  CHECK(render_table({}).empty());
  CHECK(render_table({{}}) == "\n");
  CHECK(render_table({{""}}) == "\n");
}

TEST_CASE("wrap_words breaks at blanks within the width, indented") {
  using carico::wrap_words;
  CHECK(wrap_words("one two three four", 10, 2) == "  one two\n  three\n  four\n");
  CHECK(wrap_words("  spaced   out  ", 80, 0) == "spaced out\n");
  CHECK(wrap_words("", 80, 4).empty());
  // A word longer than a line stands alone, whole.
  CHECK(wrap_words("a abcdefghijkl b", 8, 1) == " a\n abcdefghijkl\n b\n");
  // Widths count code points: six "è" fit in 6 columns.
  CHECK(wrap_words("èèèèèè è", 7, 0) == "èèèèèè\nè\n");
  CHECK(carico::text_columns("x") == 1);
  CHECK(carico::text_columns("città") == 5);
}

TEST_CASE("escape_controls writes every control character out, and nothing else") {
  using carico::escape_controls;
  CHECK(escape_controls("plain città") == "plain città");
  CHECK(escape_controls("a\nb\tc\rd") == "a\\nb\\tc\\rd");
  CHECK(escape_controls(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(escape_controls("\x1b[31mred\x7f") == "\\x1b[31mred\\x7f");
  CHECK(escape_controls("back\\slash") == "back\\slash");  // left as it is
  CHECK(carico::has_controls("a\tb"));
  CHECK_FALSE(carico::has_controls("città \\n"));
}

TEST_CASE("has_controls finds a control character at any offset of a long text") {
  // It scans in blocks of 32 bytes: every offset of a block and of the tail.
  for (std::size_t size : {1u, 31u, 32u, 33u, 64u, 100u}) {
    const std::string clean(size, 'x');
    CHECK_FALSE(carico::has_controls(clean));
    for (std::size_t at = 0; at < size; ++at) {
      for (char bad : {'\n', '\x01', '\x1f', '\x7f'}) {
        std::string text = clean;
        text[at] = bad;
        INFO("size " << size << ", offset " << at << ", byte " << int(bad));
        CHECK(carico::has_controls(text));
      }
    }
  }
  CHECK_FALSE(carico::has_controls(std::string(70, ' ') + "città \\x"));
}

TEST_CASE("render_table escapes cells: a tab or newline cannot break a row") {
  const std::string table = render_table({{"ID", "TITLE"}, {"1", "two\nlines\tand a tab"}});
  CHECK(table ==
        "ID  TITLE\n"
        "1   two\\nlines\\tand a tab\n");
  CHECK(std::count(table.begin(), table.end(), '\n') == 2);
}
