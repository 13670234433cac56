// `carico-client top`'s screen: mmi results turned into /api/state's shape,
// and that shape drawn as text.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "client/top_view.hpp"

using namespace carico;
using json = nlohmann::json;

namespace {

json three_workers() {
  json workers = json::array();
  for (const char* name : {"w1", "w2", "w3"}) {
    workers.push_back({{"name", name},
                       {"service", "text"},
                       {"state", std::string(name) == "w2" ? "overload" : "ready"},
                       {"in_flight", 1},
                       {"capacity", 4},
                       {"answered", 7},
                       {"pid", 42},
                       {"host", "box"},
                       {"rss_bytes", 3 << 20},
                       {"mem_percent", 0.5},
                       {"last_seen_ms", 120}});
  }
  return {{"workers", workers}};
}

}  // namespace

TEST_CASE("state_from_mmi: each service gets its ring, totals and queue carried over", "[top]") {
  json stats = {
      {"received", 10},
      {"done", 9},
      {"failed", 1},
      {"queued", 3},
      {"in_flight", 2},
      {"uptime_ms", 5000},
      {"services",
       {{"text", {{"workers", 3}, {"queued", 3}}}, {"echo", {{"workers", 0}, {"queued", 0}}}}}};
  json state = state_from_mmi(stats, three_workers());
  REQUIRE(state["services"].size() == 2);
  const json& echo = state["services"][0];
  const json& text = state["services"][1];
  CHECK(echo["name"] == "echo");
  CHECK(echo["ring"].empty());
  CHECK(text["name"] == "text");
  CHECK(text["queued"] == 3);
  REQUIRE(text["ring"].size() == 3);
  CHECK(text["ring"][1]["state"] == "overload");
  CHECK(state["totals"]["done"] == 9);
  CHECK(state["unanswered"] == 5);
}

TEST_CASE("state_from_mmi: nonsense in, an empty view out, no throw", "[top]") {
  json state = state_from_mmi(json("x"), json::array());
  CHECK(state["services"].empty());
  CHECK(state["totals"]["done"] == 0);
}

TEST_CASE("render_top: every worker with its state, in flight and memory, cut to width", "[top]") {
  json stats = {{"done", 9}, {"queued", 0}, {"services", {{"text", {{"queued", 0}}}}}};
  json state = state_from_mmi(stats, three_workers());
  state["rate_per_s"] = 12.5;
  state["latency"] = {{"samples", 9}, {"p50_ms", 3.25}, {"p99_ms", 120.0}};
  state["history"] =
      json::array({{{"finished", 1}, {"queued", 0}}, {{"finished", 8}, {"queued", 2}}});
  state["events"] = json::array(
      {{{"t", 0}, {"kind", "refusal"}, {"text", "request for text refused 503: queue full"}}});
  const std::string screen = render_top(state, "tcp://x", 100);
  CHECK_THAT(screen, Catch::Contains("req/s 12.5"));
  CHECK_THAT(screen, Catch::Contains("p50 3.2 ms"));
  CHECK_THAT(screen, Catch::Contains("p99 120 ms"));
  CHECK_THAT(screen, Catch::Contains("2 of 3 ready"));
  CHECK_THAT(screen, Catch::Contains("w2"));
  CHECK_THAT(screen, Catch::Contains("overload"));
  CHECK_THAT(screen, Catch::Contains("1/4"));
  CHECK_THAT(screen, Catch::Contains("3.0 MiB"));
  CHECK_THAT(screen, Catch::Contains("queue full"));
  // No line over the width (counted in code points).
  std::size_t at = 0;
  for (std::size_t end; (end = screen.find('\n', at)) != std::string::npos; at = end + 1) {
    std::size_t points = 0;
    for (std::size_t i = at; i < end; ++i)
      points += (static_cast<unsigned char>(screen[i]) & 0xC0) != 0x80;
    CHECK(points <= 100);
  }
  // A worker name cannot drive the terminal.
  json evil = state;
  evil["services"][0]["ring"][0]["name"] = "\x1b[2Jx";
  CHECK(render_top(evil, "x", 100).find('\x1b') == std::string::npos);
}

TEST_CASE("sparkline: scaled to the maximum, the last `width` values", "[top]") {
  CHECK(sparkline({0, 7}, 10) == "\u2581\u2588");
  CHECK(sparkline({1, 2, 3}, 2) == sparkline({2, 3}, 2));
  CHECK(sparkline({}, 5).empty());
  CHECK(sparkline({0, 0}, 5) == "\u2581\u2581");
}
