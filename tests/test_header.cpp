// carico::header: the MessagePack map of header frames.
#include <catch2/catch.hpp>

#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "shared/header.hpp"
#include "tests/support/msgpack_bytes.hpp"

using carico::header;
using carico::test::pack;

namespace {

carico::header_result decode(const std::string& bytes) {
  return header::decode(bytes.data(), bytes.size());
}

std::string key_of(std::size_t i) {
  std::string key = "k";
  key += std::to_string(i);
  return key;
}

header decode_ok(const std::string& bytes) {
  carico::header_result h = decode(bytes);
  INFO(h.error);
  REQUIRE(h);
  return std::move(*h.value);
}

}  // namespace

TEST_CASE("header round trips through encode and decode", "[header]") {
  header h;
  h.set("request", std::uint64_t{42});
  h.set("title", "Divina Commedia");
  h.set_json("result", {{"count_a", 7}, {"nested", {1, 2, 3}}});
  h.set("empty", "");

  SECTION("encode_string") {
    header back = decode_ok(h.encode_string());
    CHECK(back.size() == 4);
    CHECK(back.get_uint("request") == 42u);
    CHECK(back.get_string("title") == "Divina Commedia");
    CHECK(back.get_string("empty") == "");
    CHECK(back.to_json() == h.to_json());
    CHECK(back.to_json()["result"]["nested"] == nlohmann::json({1, 2, 3}));
  }
  SECTION("encode as a zmq frame") {
    zmq::message_t frame = h.encode();
    carico::header_result back = header::decode(frame);
    REQUIRE(back);
    CHECK(back.value->encode_string() == h.encode_string());
  }
  SECTION("wire order is kept") {
    header back = decode_ok(h.encode_string());
    CHECK(back.encode_string() == h.encode_string());
  }
}

TEST_CASE("an empty map is a valid header", "[header]") {
  header back = decode_ok(header().encode_string());
  CHECK(back.size() == 0);
  CHECK(pack(std::map<std::string, int>{}) == header().encode_string());
}

TEST_CASE("a default header is empty until set, then behaves like any other", "[header]") {
  header h;  // no zone yet
  CHECK(h.size() == 0);
  CHECK(h.find("id") == nullptr);
  CHECK_FALSE(h.get_uint("id"));
  CHECK(h.encode_string() == "\x80");
  h.erase("id");
  header moved = std::move(h);
  moved.set("id", std::uint64_t{7});
  moved.set("title", "t");
  moved.set_json("result", nlohmann::json{{"a", 1}});
  carico::header_result back = header::decode(moved.encode());
  REQUIRE(back);
  CHECK(back.value->get_uint("id") == 7u);
  CHECK(back.value->get_string("title") == "t");
  CHECK(back.value->to_json()["result"]["a"] == 1);
}

TEST_CASE("header keeps unknown values untouched", "[header]") {
  const std::string bytes = pack(std::map<std::string, std::vector<int>>{{"list", {1, -2, 3}}});
  header h = decode_ok(bytes);
  CHECK(h.encode_string() == bytes);
  CHECK_FALSE(h.get_uint("list"));
  CHECK_FALSE(h.get_string("list"));
  REQUIRE(h.find("list") != nullptr);
  CHECK(h.find("list")->type == msgpack::type::ARRAY);
}

TEST_CASE("typed getters check the type", "[header]") {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(4);
  packer.pack(std::string("n")).pack(std::uint64_t{5});
  packer.pack(std::string("neg")).pack(std::int64_t{-5});
  packer.pack(std::string("s")).pack(std::string("x"));
  packer.pack(std::string("f")).pack(1.5);
  header h = decode_ok(std::string(buffer.data(), buffer.size()));
  CHECK(h.get_uint("n") == 5u);
  CHECK_FALSE(h.get_uint("neg"));
  CHECK_FALSE(h.get_uint("s"));
  CHECK_FALSE(h.get_uint("f"));
  CHECK_FALSE(h.get_uint("missing"));
  CHECK(h.get_string("s") == "x");
  CHECK_FALSE(h.get_string("n"));
  CHECK(h.contains("neg"));
  CHECK_FALSE(h.contains("missing"));
}

TEST_CASE("malformed header frames are rejected with a reason", "[header]") {
  SECTION("empty frame") {
    carico::header_result h = decode("");
    CHECK_FALSE(h);
    CHECK_FALSE(h.error.empty());
  }
  SECTION("trailing bytes after the map") {
    std::string bytes = header().encode_string() + "x";
    carico::header_result h = decode(bytes);
    CHECK_FALSE(h);
    CHECK_THAT(h.error, Catch::Contains("trailing"));
  }
  SECTION("two maps") {
    std::string bytes = header().encode_string() + header().encode_string();
    CHECK_FALSE(decode(bytes));
  }
  SECTION("not a map") {
    CHECK_FALSE(decode(pack(std::vector<int>{1, 2})));
    CHECK_FALSE(decode(pack(7)));
    CHECK_FALSE(decode(pack(std::string("a map?"))));
    CHECK_FALSE(decode("\xc0"));  // nil
  }
  SECTION("non-string keys") {
    carico::header_result h = decode(pack(std::map<int, int>{{1, 2}}));
    CHECK_FALSE(h);
    CHECK_THAT(h.error, Catch::Contains("string"));
    // A binary key is not a string either.
    CHECK_FALSE(decode(std::string("\x81\xc4\x01k\x01", 5)));
  }
  SECTION("garbage") {
    CHECK_FALSE(decode("\xc1"));                    // never-used byte
    CHECK_FALSE(decode("\x82\xa1" "a"));            // truncated map
    CHECK_FALSE(decode("\xdf\xff\xff\xff\xff"));    // map32 claiming 4G entries
    CHECK_FALSE(decode("\xdb\xff\xff\xff\xff"));    // str32 claiming 4 GB
    CHECK_FALSE(decode("hello world"));
    CHECK_FALSE(decode(std::string(1000, '\xff')));  // negative fixints: not a map, trailing
  }
  SECTION("too deep") {
    // {"a": [[[[...]]]]} nested far beyond any sane header.
    std::string bytes = "\x81\xa1" "a" + std::string(200, '\x91') + "\x90";
    CHECK_FALSE(decode(bytes));
  }
}

TEST_CASE("a repeated key keeps the last value", "[header]") {
  // {"k": 1, "k": 2}
  header h = decode_ok(std::string("\x82\xa1k\x01\xa1k\x02", 7));
  CHECK(h.size() == 1);
  CHECK(h.get_uint("k") == 2u);
}

TEST_CASE("set, erase and merge_missing", "[header]") {
  header h;
  h.set("a", std::uint64_t{1});
  h.set("b", "two");

  SECTION("set replaces in place") {
    h.set("a", "one");
    CHECK(h.size() == 2);
    CHECK(h.get_string("a") == "one");
    CHECK_FALSE(h.get_uint("a"));
    header back = decode_ok(h.encode_string());
    CHECK(back.get_string("a") == "one");
  }
  SECTION("set copies the characters") {
    std::string key = "key";
    std::string value = "value";
    h.set(key, std::string_view(value));
    key.assign("XXX");
    value.assign("XXXXX");
    CHECK(h.get_string("key") == "value");
  }
  SECTION("set of an object deep-copies it") {
    header value;
    {
      header other = decode_ok(pack(std::map<std::string, std::vector<std::string>>{
          {"list", {"x", "y"}}}));
      value.set("copied", *other.find("list"));
    }  // other's zone is gone
    CHECK(value.to_json()["copied"] == nlohmann::json({"x", "y"}));
  }
  SECTION("erase") {
    h.erase("a");
    CHECK(h.size() == 1);
    CHECK_FALSE(h.contains("a"));
    h.erase("missing");
    CHECK(h.size() == 1);
    header back = decode_ok(h.encode_string());
    CHECK(back.to_json() == nlohmann::json({{"b", "two"}}));
  }
  SECTION("merge_missing adds only absent keys") {
    header other;
    other.set("a", std::uint64_t{100});
    other.set("c", "three");
    h.merge_missing(other);
    CHECK(h.size() == 3);
    CHECK(h.get_uint("a") == 1u);
    CHECK(h.get_string("c") == "three");
    other.set("c", "changed");
    CHECK(h.get_string("c") == "three");
  }
  SECTION("a moved header keeps its entries") {
    header moved = std::move(h);
    CHECK(moved.get_uint("a") == 1u);
    CHECK(moved.get_string("b") == "two");
  }
}

TEST_CASE("header from and to JSON", "[header]") {
  nlohmann::json j = {{"id", 9}, {"title", "t"}, {"result", {{"x", true}}}};
  carico::header_result h = header::from_json(j);
  REQUIRE(h);
  CHECK(h.value->get_uint("id") == 9u);
  CHECK(h.value->to_json() == j);
  CHECK_FALSE(header::from_json(nlohmann::json::array({1, 2})));
  CHECK_FALSE(header::from_json(nlohmann::json("s")));
}

TEST_CASE("to_json_text writes what dumping to_json writes", "[header]") {
  const nlohmann::json values = nlohmann::json::array(
      {0, 1, 127, 128, 65535, std::numeric_limits<std::uint64_t>::max(), -1, -32, -33,
       std::numeric_limits<std::int64_t>::min(), "id-7", "", "quote \" and \\", true, nullptr,
       1.5, nlohmann::json::array({1, "a"}), nlohmann::json::object({{"k", 2}})});
  for (const nlohmann::json& v : values) {
    carico::header_result h = header::from_json({{"id", v}});
    REQUIRE(h);
    const msgpack::object* id = h.value->find("id");
    REQUIRE(id != nullptr);
    CHECK(carico::to_json_text(*id) == carico::to_json(*id).dump());
    CHECK(nlohmann::json::parse(carico::to_json_text(*id)) == v);
  }
}

TEST_CASE("append_uints adds entries to an encoded map without decoding it", "[header]") {
  SECTION("to no header at all") {
    zmq::message_t out = carico::append_uints(zmq::message_t(), {{"request", 7}, {"attempt", 1}});
    header back = decode_ok(out.to_string());
    CHECK(back.size() == 2);
    CHECK(back.get_uint("request") == 7u);
    CHECK(back.get_uint("attempt") == 1u);
  }
  // 13 + 2 stays a fixmap; 14 + 2 becomes a map 16.
  for (std::size_t n : {std::size_t{0}, std::size_t{13}, std::size_t{14}, std::size_t{300}}) {
    DYNAMIC_SECTION("to a map of " << n << " entries") {
      header h;
      for (std::size_t i = 0; i < n; ++i) h.set(key_of(i), std::uint64_t{i});
      zmq::message_t out =
          carico::append_uints(h.encode(), {{"request", 1ull << 40}, {"attempt", 3}});
      carico::header_result back = header::decode(out);
      INFO(back.error);
      REQUIRE(back);
      CHECK(back.value->size() == n + 2);
      CHECK(back.value->get_uint("request") == 1ull << 40);
      CHECK(back.value->get_uint("attempt") == 3u);
      if (n > 0) CHECK(back.value->get_uint(key_of(n - 1)) == n - 1);
      h.set("request", 1ull << 40);
      h.set("attempt", std::uint64_t{3});
      CHECK(back.value->encode_string() == h.encode_string());
      CHECK(out.to_string() == h.encode_string());  // msgpack-c's own encodings, byte for byte
    }
  }
  SECTION("every width of key and value is encoded as msgpack-c encodes it") {
    const std::uint64_t values[] = {0, 127, 128, 255, 256, 65535, 65536, 0xffffffffull,
                                    0x100000000ull, ~0ull};
    for (std::size_t length : {std::size_t{1}, std::size_t{31}, std::size_t{32}, std::size_t{255},
                               std::size_t{256}, std::size_t{70000}}) {
      for (std::uint64_t value : values) {
        const std::string key(length, 'k');
        header h;
        h.set("title", "x");
        const zmq::message_t map = h.encode();
        h.set(key, value);
        CHECK(carico::append_uints(map, {{key, value}}).to_string() == h.encode_string());
      }
    }
  }
  SECTION("to a map 32 (any sender may use the long form for a short map)") {
    std::string map32("\xdf\x00\x00\x00\x01", 5);
    map32 += pack(std::string("title")) + pack(std::string("x"));
    zmq::message_t out =
        carico::append_uints(zmq::message_t(map32.data(), map32.size()), {{"request", 9}});
    header back = decode_ok(out.to_string());
    CHECK(back.size() == 2);
    CHECK(back.get_string("title") == "x");
    CHECK(back.get_uint("request") == 9u);
  }
  SECTION("a frame that is not a map is refused") {
    const std::string array = pack(std::vector<int>{1, 2});
    CHECK_THROWS_AS(carico::append_uints(zmq::message_t(array.data(), array.size()), {{"a", 1}}),
                    std::invalid_argument);
  }
}

TEST_CASE("one value kept on its own and set again", "[header]") {
  header h = decode_ok(pack(std::map<std::string, std::vector<int>>{{"id", {4, 5}}}));
  const std::string id = header::encode_value(*h.find("id"));
  header reply;
  reply.set_encoded("id", id);
  CHECK(reply.to_json() == nlohmann::json{{"id", {4, 5}}});
  reply.set_encoded("bad", std::string("\xc1", 1));  // never used by MessagePack
  reply.set_encoded("empty", "");
  CHECK(reply.size() == 1);
}
