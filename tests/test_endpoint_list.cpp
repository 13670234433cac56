// The --connect list of clients and workers (shared/endpoint_list.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "shared/endpoint_list.hpp"
#include "shared/runtime.hpp"

using carico::parse_endpoint_list;

TEST_CASE("endpoint list: one endpoint, or several in order") {
  SECTION("one endpoint is a list of one, as before") {
    auto l = parse_endpoint_list("tcp://127.0.0.1:5555");
    REQUIRE(l);
    CHECK(l.endpoints == std::vector<std::string>{"tcp://127.0.0.1:5555"});
  }
  SECTION("commas separate; blanks around an item are dropped; order is kept") {
    auto l = parse_endpoint_list(" tcp://b:2 ,tcp://a:1,\tipc:///tmp/x ");
    REQUIRE(l);
    CHECK(l.endpoints == std::vector<std::string>{"tcp://b:2", "tcp://a:1", "ipc:///tmp/x"});
    CHECK(carico::describe_endpoints(l.endpoints) == "tcp://b:2, tcp://a:1, ipc:///tmp/x");
  }
  SECTION("inproc endpoints too") {
    auto l = parse_endpoint_list("inproc://a,inproc://b");
    REQUIRE(l);
    CHECK(l.endpoints.size() == 2);
  }
}

TEST_CASE("endpoint list: bad lists are clear errors that name the item") {
  auto error_of = [](std::string_view text) {
    auto l = parse_endpoint_list(text);
    CHECK_FALSE(l);
    CHECK(l.endpoints.empty());
    return l.error;
  };
  SECTION("empty text, empty items, a trailing comma") {
    CHECK_THAT(error_of(""), Catch::Contains("item 1 is empty"));
    CHECK_THAT(error_of("   "), Catch::Contains("item 1 is empty"));
    CHECK_THAT(error_of("tcp://a:1,,tcp://b:2"), Catch::Contains("item 2 is empty"));
    CHECK_THAT(error_of("tcp://a:1,"), Catch::Contains("item 2 is empty"));
    CHECK_THAT(error_of(",tcp://a:1"), Catch::Contains("item 1 is empty"));
    CHECK_THAT(error_of("tcp://a:1, ,tcp://b:2"), Catch::Contains("item 2 is empty"));
  }
  SECTION("blanks inside an endpoint (a list separated by spaces, not commas)") {
    const std::string e = error_of("tcp://a:1 tcp://b:2");
    CHECK_THAT(e, Catch::Contains("item 1 ('tcp://a:1 tcp://b:2') has blanks inside"));
    CHECK_THAT(e, Catch::Contains("separated by commas"));
  }
  SECTION("the same endpoint twice") {
    CHECK_THAT(error_of("tcp://a:1,tcp://b:2, tcp://a:1"),
               Catch::Contains("item 3 ('tcp://a:1') is listed twice"));
  }
  SECTION("not TRANSPORT://ADDRESS") {
    CHECK_THAT(error_of("127.0.0.1:5555"), Catch::Contains("is not TRANSPORT://ADDRESS"));
    CHECK_THAT(error_of("tcp://"), Catch::Contains("is not TRANSPORT://ADDRESS"));
    CHECK_THAT(error_of("://x"), Catch::Contains("is not TRANSPORT://ADDRESS"));
  }
}

TEST_CASE("endpoint list: --connect from flags and config files") {
  std::string target = "tcp://127.0.0.1:5555";
  CLI::App app;
  carico::add_config_option(app);
  carico::add_connect_option(app, target, "brokers");
  std::vector<std::string> rest;
  app.add_option("rest", rest);
  auto parse = [&](std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  };
  SECTION("not given: the default") {
    parse({});
    CHECK(target == "tcp://127.0.0.1:5555");
  }
  SECTION("one value, kept as written, and nothing after it taken") {
    parse({"--connect", "tcp://a:1,,tcp://b:2", "send"});
    CHECK(target == "tcp://a:1,,tcp://b:2");  // parse_endpoint_list says what is wrong
    CHECK(rest == std::vector<std::string>{"send"});
  }
  SECTION("repeated: joined") {
    parse({"--connect", "tcp://a:1", "--connect", "tcp://b:2"});
    CHECK(target == "tcp://a:1,tcp://b:2");
  }
  SECTION("a config file: a string or a TOML array") {
    const std::string path = "test_endpoint_list.toml";
    {
      std::ofstream file(path);
      file << "connect = [\"tcp://a:1\", \"tcp://b:2\"]\n";
    }
    parse({"--config", path});
    CHECK(target == "tcp://a:1,tcp://b:2");
    {
      std::ofstream file(path);
      file << "connect = \"tcp://a:1, tcp://b:2\"\n";
    }
    target.clear();
    app.clear();
    parse({"--config", path});
    CHECK(target == "tcp://a:1, tcp://b:2");
    std::remove(path.c_str());
  }
}
