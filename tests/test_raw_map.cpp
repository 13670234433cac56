// carico::raw_map (an encoded map read in place) and carico::map_writer.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "shared/header.hpp"
#include "shared/map_writer.hpp"
#include "shared/raw_map.hpp"
#include "broker/reply_cache.hpp"
#include "tests/support/msgpack_bytes.hpp"

using carico::header;
using carico::map_writer;
using carico::raw_map;
using carico::test::pack;

namespace {

bool parses(raw_map& m, const std::string& bytes) { return m.parse(bytes.data(), bytes.size()); }

// A header with a value of every kind the broker meets.
header sample_header() {
  header h;
  h.set("request", std::uint64_t{1} << 40);
  h.set("code", std::uint64_t{200});
  h.set("status", "ok");
  h.set("title", std::string(40, 't'));  // str8 rather than fixstr
  h.set("empty", "");
  h.set_json("result", {{"count_a", 7}, {"stored_as", "x.txt"}, {"nested", {1, -2, 3.5, nullptr}}});
  h.set_json("neg", -5);
  h.set_json("flag", true);
  return h;
}

}  // namespace

TEST_CASE("raw_map reads what header encodes", "[raw_map]") {
  const header h = sample_header();
  const std::string bytes = h.encode_string();
  raw_map parsed;
  REQUIRE(parses(parsed, bytes));
  const carico::raw_view m = parsed.over(bytes.data());
  CHECK(m.size() == h.size());
  CHECK(m.get_uint("request") == std::uint64_t{1} << 40);
  CHECK(m.get_uint("code") == 200u);
  CHECK(m.get_string("status") == "ok");
  CHECK(m.get_string("title") == std::string(40, 't'));
  CHECK(m.get_string("empty") == "");
  CHECK_FALSE(m.get_uint("status"));
  CHECK_FALSE(m.get_string("code"));
  CHECK_FALSE(m.get_uint("neg"));
  CHECK_FALSE(m.get_uint("missing"));
  CHECK(m.contains("flag"));
  // Each value is a complete encoding: copied into a new map it decodes the same.
  map_writer out;
  out.begin(m.size());
  for (const carico::raw_view::entry& e : m) out.add_raw(e.key, e.value);
  carico::header_result back = header::decode(out.bytes().data(), out.bytes().size());
  INFO(back.error);
  REQUIRE(back);
  CHECK(back.value->to_json() == h.to_json());
  CHECK(out.bytes() == bytes);  // msgpack-c's packer made minimal encodings: copied as they are
}

TEST_CASE("raw_map is read through its bytes, wherever they are now", "[raw_map]") {
  const std::string bytes = sample_header().encode_string();
  std::string first = bytes;
  raw_map m;
  REQUIRE(m.parse(first.data(), first.size()));
  const carico::raw_view::entry title = *m.over(first.data()).find("title");
  const std::ptrdiff_t title_at = title.key.data() - first.data();
  // The same bytes elsewhere, and the old copy scribbled over: read through
  // the new copy, the map finds everything there.
  std::string moved = bytes;
  first.assign(first.size(), '\xc1');
  const carico::raw_view now = m.over(moved.data());
  CHECK(now.size() == sample_header().size());
  CHECK(now.get_uint("request") == std::uint64_t{1} << 40);
  CHECK(now.get_string("status") == "ok");
  CHECK(now.get_string("title") == std::string(40, 't'));
  const std::optional<carico::raw_view::entry> found = now.find("title");
  REQUIRE(found);
  CHECK(found->key.data() - moved.data() == title_at);
  // Every entry lies inside the new copy.
  for (const carico::raw_view::entry& e : now) {
    CHECK(e.key.data() >= moved.data());
    CHECK(e.value.data() + e.value.size() <= moved.data() + moved.size());
  }
}

TEST_CASE("raw_map reads integers the way msgpack-c does", "[raw_map]") {
  // Non-negative signed encodings are positive integers; negative ones are not.
  CHECK(raw_map::as_uint(std::string("\xd0\x05", 2)) == 5u);
  CHECK(raw_map::as_uint(std::string("\xd3\x00\x00\x00\x00\x00\x00\x01\x00", 9)) == 256u);
  CHECK_FALSE(raw_map::as_uint(std::string("\xd0\xfb", 2)));
  CHECK_FALSE(raw_map::as_uint(std::string("\xff", 1)));  // negative fixint
  CHECK(raw_map::as_uint(std::string("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9)) == UINT64_MAX);
  CHECK(raw_map::as_uint(std::string("\xcd\x01\xf4", 3)) == 500u);
  CHECK_FALSE(raw_map::as_uint(std::string("\xcd\x01", 2)));       // truncated
  CHECK_FALSE(raw_map::as_uint(std::string("\xca\0\0\0\0", 5)));  // a float
  CHECK_FALSE(raw_map::as_uint(""));
  CHECK(raw_map::as_string(std::string("\xd9\x02hi", 4)) == "hi");
  CHECK_FALSE(raw_map::as_string(std::string("\xd9\x03hi", 4)));  // truncated
  CHECK_FALSE(raw_map::as_string(std::string("\xa1hi", 3)));      // more than one value
  CHECK_FALSE(raw_map::as_string(std::string("\xc4\x01h", 3)));   // binary is not a string

  // The same through a whole map, against header's reading of it.
  const std::string bytes = std::string("\x83\xa1s\xd1\x00\x07\xa1n\xd1\xff\xf9\xa1u\xce\x00\x01\x00\x00", 18);
  raw_map m;
  REQUIRE(parses(m, bytes));
  carico::header_result h = header::decode(bytes.data(), bytes.size());
  REQUIRE(h);
  for (const char* key : {"s", "n", "u"}) {
    INFO(key);
    CHECK(m.over(bytes.data()).get_uint(key) == h.value->get_uint(key));
  }
}

TEST_CASE("raw_map refuses what it leaves to header::decode", "[raw_map]") {
  raw_map m;
  SECTION("what header::decode refuses too") {
    CHECK_FALSE(parses(m, ""));
    CHECK_FALSE(parses(m, header().encode_string() + "x"));  // trailing bytes
    CHECK_FALSE(parses(m, pack(std::vector<int>{1, 2})));     // not a map
    CHECK_FALSE(parses(m, pack(std::map<int, int>{{1, 2}}))); // a key that is not a string
    CHECK_FALSE(parses(m, std::string("\x81\xc4\x01k\x01", 5)));  // a binary key
    CHECK_FALSE(parses(m, "\x82\xa1" "a"));                  // truncated
    CHECK_FALSE(parses(m, "\xdf\xff\xff\xff\xff"));
    CHECK_FALSE(parses(m, std::string("\x81\xa1k\xc1", 4)));  // never-used byte
    std::string deep = "\x81\xa1" "a";  // {"a": [[[[...]]]]}: too deep
    deep.append(200, '\x91');
    deep += '\x90';
    CHECK_FALSE(parses(m, deep));
  }
  SECTION("what header::decode accepts: the general path handles it") {
    // A repeated key ({"k": 1, "k": 2}): header keeps the last value.
    CHECK_FALSE(parses(m, std::string("\x82\xa1k\x01\xa1k\x02", 7)));
    // An ext value.
    CHECK_FALSE(parses(m, std::string("\x81\xa1k\xd4\x01\x02", 6)));
    // More than max_entries entries.
    header big;
    for (std::size_t i = 0; i <= raw_map::max_entries; ++i) {
      std::string key = "k";
      key += std::to_string(i);
      big.set(key, std::uint64_t{i});
    }
    CHECK_FALSE(parses(m, big.encode_string()));
    big.erase("k0");
    CHECK(parses(m, big.encode_string()));
    CHECK(m.size() == raw_map::max_entries);
  }
  CHECK(m.size() <= raw_map::max_entries);
  SECTION("a refusal leaves the map empty") {
    REQUIRE(parses(m, sample_header().encode_string()));
    const std::string repeated("\x82\xa1k\x01\xa1k\x02", 7);
    CHECK_FALSE(parses(m, repeated));
    CHECK(m.size() == 0);
    CHECK_FALSE(m.over(repeated.data()).contains("k"));
  }
  SECTION("an empty map") {
    REQUIRE(parses(m, header().encode_string()));
    CHECK(m.size() == 0);
  }
}

TEST_CASE("whatever raw_map accepts, header::decode reads the same", "[raw_map][fuzz]") {
  // Mutations of valid headers: every byte string raw_map parses must decode
  // to a header with the same keys and the same integer and string values.
  std::mt19937 random(20261127);
  std::vector<std::string> seeds = {sample_header().encode_string(), header().encode_string(),
                                    std::string("\x82\xa1k\x01\xa1k\x02", 7)};
  std::size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const std::size_t at = random() % bytes.size();
      switch (random() % 4) {
        case 0: bytes[at] = static_cast<char>(random()); break;
        case 1: bytes.erase(at, 1); break;
        case 2: bytes.insert(at, 1, static_cast<char>(random())); break;
        default: bytes.resize(at); break;
      }
    }
    raw_map m;
    if (!parses(m, bytes)) {
      CHECK(m.size() == 0);
      continue;
    }
    ++accepted;
    carico::header_result h = header::decode(bytes.data(), bytes.size());
    INFO("round " << round << " error " << h.error);
    REQUIRE(h);
    REQUIRE(h.value->size() == m.size());
    const carico::raw_view v = m.over(bytes.data());
    for (const carico::raw_view::entry& e : v) {
      REQUIRE(h.value->contains(e.key));
      CHECK(h.value->get_uint(e.key) == v.get_uint(e.key));
      CHECK(h.value->get_string(e.key) == v.get_string(e.key));
    }
  }
  CHECK(accepted > 100);  // the mutations did reach the accepting side
}

TEST_CASE("map_writer encodes as msgpack-c does", "[map_writer]") {
  map_writer out;
  for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{15}, std::size_t{16}, std::size_t{40}}) {
    DYNAMIC_SECTION(n << " entries") {
      header h;
      out.begin(n);
      for (std::size_t i = 0; i < n; ++i) {
        const std::string key = "key" + std::to_string(i);
        if (i % 3 == 0) {
          const std::uint64_t value = std::uint64_t{1} << (i % 64);
          h.set(key, value);
          out.add(key, value);
        } else if (i % 3 == 1) {
          const std::string value(i * 7, 'v');  // fixstr, str8, str16 as i grows
          h.set(key, value);
          out.add(key, value);
        } else {
          h.set(key, "s");
          out.add_raw(key, pack(std::string("s")));
        }
      }
      CHECK(out.bytes() == h.encode_string());
      zmq::message_t frame = out.to_message();
      CHECK(frame.to_string() == h.encode_string());
    }
  }
  SECTION("an empty key and value, from default string_views (no data pointer)") {
    out.begin(1);
    out.add(std::string_view(), std::string_view());
    header h;
    h.set("", "");
    CHECK(out.bytes() == h.encode_string());
  }
  SECTION("a moved writer keeps its map, and the one moved from starts afresh") {
    out.begin(1);
    out.add("a", "b");
    const std::string first(out.bytes());
    map_writer moved(std::move(out));
    CHECK(moved.bytes() == first);
    out.begin(1);  // NOLINT(bugprone-use-after-move): a moved-from writer is empty and usable
    out.add("c", std::string(300, 'x'));  // past its old capacity, had it kept one
    header h;
    h.set("c", std::string(300, 'x'));
    CHECK(out.bytes() == h.encode_string());
    CHECK(moved.bytes() == first);
  }
  SECTION("begin drops the previous map") {
    out.begin(1);
    out.add("a", "b");
    out.begin(1);
    out.add("c", std::uint64_t{0});
    header h;
    h.set("c", std::uint64_t{0});
    CHECK(out.bytes() == h.encode_string());
  }
}

// The broker keys a request by (client, id) read in place (id_json_text) and,
// after a restart, by the decoded header (request_key): the two must agree to
// the byte, or a resend after a restart would run again.
TEST_CASE("id_json_text renders an id as request_key does, or declines", "[raw_map][key]") {
  std::vector<header> heads;
  for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{127}, std::uint64_t{128},
                          std::uint64_t{65536}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    heads.emplace_back().set("id", n);
  }
  for (std::string s : {std::string("a"), std::string(""), std::string("quote\" back\\slash"),
                        std::string("caf\xc3\xa9"), std::string("bad \xff utf-8"),
                        std::string("ctl \x01\x1f"), std::string(300, 'x')}) {
    heads.emplace_back().set("id", std::string_view(s));
  }
  for (header& h : heads) {
    h.set("client", "vm-1");
    const std::string bytes = h.encode_string();
    raw_map m;
    REQUIRE(m.parse(bytes.data(), bytes.size()));
    const std::optional<std::string> text = carico::id_json_text(m.over(bytes.data()).find("id")->value);
    const std::optional<carico::request_key_parts> key = carico::request_key(h);
    REQUIRE(text);
    REQUIRE(key);
    CHECK(*text == key->client_id);
  }
  // Other shapes are left to the decoder.
  header negative;
  negative.set_json("id", -5);
  header nested;
  nested.set_json("id", nlohmann::json{{"a", 1}});
  for (header* h : {&negative, &nested}) {
    const std::string bytes = h->encode_string();
    raw_map m;
    REQUIRE(m.parse(bytes.data(), bytes.size()));
    CHECK_FALSE(carico::id_json_text(m.over(bytes.data()).find("id")->value));
  }
}
