// Inputs the fuzzers (tests/fuzz) found or that guard the limits they probe.
// Each finding's input is also kept in tests/fuzz/corpus/<target>/ as a seed.
#include <catch2/catch.hpp>

#include <string>

#include "shared/codec.hpp"
#include "shared/header.hpp"
#include "worker/text_service.hpp"

using namespace carico;

TEST_CASE("fuzz_header: an empty key and empty strings copy without a null memcpy", "[fuzz]") {
  // 81 a0 00 = {"": 0}; the unpacker hands empty strings over as null pointers.
  const std::string bytes("\x81\xa0\x00", 3);
  header_result h = header::decode(bytes.data(), bytes.size());
  REQUIRE(h);
  header copy;
  copy.merge_missing(*h.value);  // copies the key and value into a new zone
  CHECK(copy.size() == 1);
  CHECK(copy.encode_string() == bytes);
  // An empty string and empty binary values too.
  const std::string values("\x82\xa1s\xa0\xa1" "b\xc4\x00", 8);
  header_result v = header::decode(values.data(), values.size());
  REQUIRE(v);
  header second;
  second.merge_missing(*v.value);
  CHECK(second.encode_string() == values);
  CHECK(second.get_string("s") == std::string_view());
}

TEST_CASE("fuzz_worker_codec: headers of many array headers decode quickly", "[fuzz]") {
  // A small input declaring 1792-element arrays: msgpack allocates before it
  // reads the elements, so the cost is bounded by the depth limit. It was a
  // fuzzer time-out; a regression shows as this test hitting CTest's
  // time-out, not as a wall-clock check that a busy machine can fail.
  std::string bytes = "\x83";
  for (int i = 0; i < 20; ++i) bytes += std::string("\xa1k\xdc\x07\x00", 5);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(header::decode(bytes.data(), bytes.size()));
}

TEST_CASE("request header frames are capped at 64 KiB", "[fuzz][limits]") {
  std::string big = "\x81\xa1k\xdb";
  const std::uint32_t n = 70000;
  for (int shift = 24; shift >= 0; shift -= 8) big += static_cast<char>((n >> shift) & 0xff);
  big += std::string(n, 'x');
  zmq::multipart_t frames;
  frames.addstr("");
  frames.addstr(std::string(client_ext_signature));
  frames.addstr("text");
  frames.addstr(big);
  frames.addstr("{}");
  decoded<client_request> r = decode_client_request(std::move(frames));
  REQUIRE_FALSE(r);
  CHECK(r.error.find("header frame has 70008 bytes") != std::string::npos);
}

TEST_CASE("documents over the size or value limits are refused", "[fuzz][limits]") {
  std::string big = R"({"title":"t","content":")" + std::string(max_document_bytes, 'a') + "\"}";
  decoded<document> d = parse_document(big);
  REQUIRE_FALSE(d);
  CHECK(d.error.find("larger than") != std::string::npos);

  std::string many = R"({"title":"t","content":"c","x":[)";
  for (std::size_t i = 0; i <= max_document_values; ++i) many += "0,";
  many += "0]}";
  decoded<document> m = parse_document(many);
  REQUIRE_FALSE(m);
  CHECK(m.error.find("JSON values") != std::string::npos);

  CHECK(parse_document(R"({"title":"t","content":"banana"})"));
}
