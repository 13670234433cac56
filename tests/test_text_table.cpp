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
