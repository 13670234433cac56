// The codec: every message of the contract round trips, every malformed shape
// the contract lists is rejected with a reason.
#include <catch2/catch.hpp>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "shared/codec.hpp"
#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace carico::test;

namespace {

const std::string empty_map = header().encode_string();

}  // namespace

// ------------------------------------------------------------------ clients

TEST_CASE("client request round trip", "[codec][client]") {
  header h;
  h.set("id", std::uint64_t{7});
  h.set("title", "t");
  zmq::multipart_t frames = encode_client_request("text", h, zmq::message_t(std::string("{}")));
  CHECK(strings_of(frames) ==
        std::vector<std::string>{"", sig_c, "text", h.encode_string(), "{}"});

  client_envelope envelope;
  decoded<client_request> r = decode_client_request(std::move(frames), &envelope);
  INFO(r.error);
  REQUIRE(r);
  CHECK(envelope.service == "text");
  CHECK(envelope.from == dialect::carico);
  CHECK(r->service == "text");
  CHECK(r->from == dialect::carico);
  CHECK(r->body_frames == 1);
  CHECK(r->head.get_uint("id") == 7u);
  CHECK(r->head.get_string("title") == "t");
  CHECK(r->payload.to_string() == "{}");
}

TEST_CASE("keep_raw leaves a client header encoded until decode_head", "[codec][client]") {
  auto request_with = [](const std::string& head) {
    return frames_of({"", sig_c, "echo", head, "p"});
  };
  SECTION("a header raw_map reads stays in its frame, and decodes the same later") {
    const std::string head = encode_json_header({{"id", 9}, {"n", 1}});
    REQUIRE(head.size() < 33);  // its bytes live inside the message_t through the moves
    decoded<client_request> r =
        decode_client_request(request_with(head), nullptr, header_mode::keep_raw);
    REQUIRE(r);
    CHECK(r->from == dialect::carico);
    CHECK(r->head_raw);
    CHECK(r->head.size() == 0);
    CHECK(r->head_frame.to_string() == head);
    raw_map read;
    REQUIRE(read.parse(r->head_frame.data(), r->head_frame.size()));
    CHECK(read.over(r->head_frame.data()).get_uint("id") == 9u);
    const header& decoded_head = decode_head(*r);
    CHECK_FALSE(r->head_raw);
    CHECK(decoded_head.get_uint("id") == 9u);
    CHECK(decoded_head.get_uint("n") == 1u);
    CHECK(r->head_frame.to_string() == head);  // still there, for forwarding
    // Decoded once: a second call keeps what the first one gave.
    decode_head(*r).set("x", std::uint64_t{1});
    CHECK(decode_head(*r).get_uint("x") == 1u);
  }
  SECTION("the map the codec read is handed over, read through the frame where it is now") {
    for (const std::string& head :
         {encode_json_header({{"id", 9}, {"n", 1}}),
          encode_json_header({{"id", 9}, {"title", std::string(60, 't')}})}) {
      raw_map read;
      decoded<client_request> r =
          decode_client_request(request_with(head), nullptr, header_mode::keep_raw, &read);
      REQUIRE(r);
      REQUIRE(r->head_raw);
      const raw_view now = read.over(r->head_frame.data());
      CHECK(now.size() == 2);
      CHECK(now.get_uint("id") == 9u);
      for (const raw_view::entry& e : now) {
        CHECK(e.key.data() >= r->head_frame.data<char>());
        CHECK(e.value.data() + e.value.size() <=
              r->head_frame.data<char>() + r->head_frame.size());
      }
    }
  }
  SECTION("a header raw_map leaves to header::decode is decoded at once") {
    const std::string repeated("\x82\xa1k\x01\xa1k\x02", 7);  // {"k": 1, "k": 2}
    decoded<client_request> r =
        decode_client_request(request_with(repeated), nullptr, header_mode::keep_raw);
    REQUIRE(r);
    CHECK_FALSE(r->head_raw);
    CHECK(r->head.get_uint("k") == 2u);
  }
  SECTION("an invalid header is refused in both modes, with the same error") {
    decoded<client_request> a =
        decode_client_request(request_with("\xc1"), nullptr, header_mode::keep_raw);
    decoded<client_request> b = decode_client_request(request_with("\xc1"));
    CHECK_FALSE(a);
    CHECK_FALSE(b);
    CHECK(a.error == b.error);
  }
  SECTION("a stock request has no header to keep") {
    decoded<client_request> r =
        decode_client_request(frames_of({"", sig_sc, "echo", encode_json_header({{"id", 1}})}),
                              nullptr, header_mode::keep_raw);
    REQUIRE(r);
    CHECK(r->from == dialect::mdp);
    CHECK_FALSE(r->head_raw);
    CHECK(decode_head(*r).size() == 0);
  }
}

TEST_CASE("a stock request's body is opaque frames, never a header", "[codec][client]") {
  decoded<client_request> r = decode_client_request(frames_of({"", sig_sc, "echo", "hello"}));
  REQUIRE(r);
  CHECK(r->from == dialect::mdp);
  CHECK(r->head.size() == 0);
  CHECK(r->head_frame.size() == 0);
  CHECK(r->body_frames == 1);
  CHECK(r->payload.to_string() == "hello");
  CHECK(r->more.empty());
  SECTION("even when the single frame is a MessagePack map") {
    const std::string code_404 = encode_json_header({{"code", 404}});
    decoded<client_request> m = decode_client_request(frames_of({"", sig_sc, "echo", code_404}));
    REQUIRE(m);
    CHECK(m->head.size() == 0);
    CHECK(m->payload.to_string() == code_404);
  }
  SECTION("two and three frames, maps among them, in order") {
    decoded<client_request> two =
        decode_client_request(frames_of({"", sig_sc, "echo", empty_map, "part2"}));
    REQUIRE(two);
    CHECK(two->body_frames == 2);
    CHECK(two->payload.to_string() == empty_map);
    REQUIRE(two->more.size() == 1);
    CHECK(two->more[0].to_string() == "part2");
    decoded<client_request> three = decode_client_request(
        frames_of({"", sig_sc, "echo", "a", encode_json_header({{"k", 1}}), "c"}));
    REQUIRE(three);
    CHECK(three->body_frames == 3);
    REQUIRE(three->more.size() == 2);
    CHECK(three->more[0].to_string() == encode_json_header({{"k", 1}}));
    CHECK(three->more[1].to_string() == "c");
  }
  SECTION("one empty frame is a body; no frame at all is malformed (RFC 7: one or more)") {
    decoded<client_request> none = decode_client_request(frames_of({"", sig_sc, "echo"}));
    CHECK_FALSE(none);
    decoded<client_request> e = decode_client_request(frames_of({"", sig_sc, "echo", ""}));
    REQUIRE(e);
    CHECK(e->body_frames == 1);
    CHECK(e->payload.size() == 0);
  }
  SECTION("a carico request may leave out its payload, never its header") {
    decoded<client_request> bare = decode_client_request(frames_of({"", sig_c, "echo", empty_map}));
    REQUIRE(bare);
    CHECK(bare->payload.size() == 0);
    CHECK_FALSE(decode_client_request(frames_of({"", sig_c, "echo"})));
    CHECK_FALSE(decode_client_request(frames_of({"", sig_c, "echo", "hello"})));  // not a map
  }
}

TEST_CASE("malformed client requests are rejected", "[codec][client]") {
  std::string service = "unset";
  std::optional<dialect> from;
  auto rejects = [&](zmq::multipart_t frames) {
    client_envelope envelope;
    envelope.service = "unset";
    decoded<client_request> r = decode_client_request(std::move(frames), &envelope);
    service = envelope.service;
    from = envelope.from;
    CHECK_FALSE(r);
    CHECK_FALSE(r.error.empty());
    return r.error;
  };
  SECTION("no frames") {
    rejects(zmq::multipart_t());
    CHECK((service == "unset" || service.empty()));
  }
  SECTION("missing signature") {
    rejects(frames_of({""}));
    CHECK((service == "unset" || service.empty()));
  }
  SECTION("missing service") {
    rejects(frames_of({"", sig_c}));
    CHECK((service == "unset" || service.empty()));
  }
  SECTION("missing header") {
    rejects(frames_of({"", sig_c, "text"}));
    CHECK(service == "text");
    CHECK(from == dialect::carico);
  }
  SECTION("frame 0 not empty") {
    rejects(frames_of({"x", sig_c, "text", empty_map, "p"}));
  }
  SECTION("no empty frame 0 at all") {
    rejects(frames_of({sig_c, "text", empty_map, "p"}));
  }
  SECTION("neither client signature: no dialect, nothing to echo") {
    rejects(frames_of({"", "MDPC02", "text", empty_map, "p"}));
    CHECK_FALSE(from);
    rejects(frames_of({"", sig_w, "text", empty_map, "p"}));
    rejects(frames_of({"", sig_sw, "text", empty_map, "p"}));
    rejects(frames_of({"", "mdpc01", "text", "p"}));
    rejects(frames_of({"", "MDPCX2", "text", empty_map, "p"}));
    CHECK_FALSE(from);
  }
  SECTION("a stock request's envelope errors name its dialect") {
    rejects(frames_of({"x", sig_sc, "text", "p"}));
    CHECK(from == dialect::mdp);
    CHECK(service == "text");
    rejects(frames_of({"", sig_sc, ""}));
    CHECK(from == dialect::mdp);
  }
  SECTION("empty or over-long service name") {
    rejects(frames_of({"", sig_c, "", empty_map, "p"}));
    rejects(frames_of({"", sig_c, std::string(256, 's'), empty_map, "p"}));
    CHECK(decode_client_request(frames_of({"", sig_c, std::string(255, 's'), empty_map, "p"})));
    CHECK(decode_client_request(frames_of({"", sig_sc, std::string(255, 's'), "p"})));
  }
  SECTION("more than two body frames") {
    CHECK_THAT(rejects(frames_of({"", sig_c, "text", empty_map, "p", "extra"})),
               Catch::Contains("body frames"));
    CHECK(service == "text");
  }
  SECTION("bad header") {
    rejects(frames_of({"", sig_c, "text", "", "p"}));                          // empty
    rejects(frames_of({"", sig_c, "text", "garbage", "p"}));                   // not msgpack map
    rejects(frames_of({"", sig_c, "text", empty_map + "\x01", "p"}));          // trailing bytes
    rejects(frames_of({"", sig_c, "text", std::string("\x92\x01\x02"), "p"}));  // an array
    rejects(frames_of({"", sig_c, "text", std::string("\x81\x01\x02"), "p"}));  // int key
    CHECK(service == "text");
  }
}

TEST_CASE("client reply round trip", "[codec][client]") {
  header h;
  h.set("code", code::ok);
  h.set("status", "ok");
  std::vector<zmq::message_t> body;
  body.emplace_back(std::string_view("one"));
  body.emplace_back(std::string_view("two"));
  zmq::multipart_t frames = encode_client_reply("text", h, std::move(body));
  CHECK(strings_of(frames) ==
        std::vector<std::string>{"", sig_c, "text", h.encode_string(), "one", "two"});

  decoded<client_reply> r = decode_client_reply(std::move(frames));
  REQUIRE(r);
  CHECK(r->service == "text");
  CHECK(r->head.get_uint("code") == 200u);
  REQUIRE(r->body.size() == 2);
  CHECK(r->body[1].to_string() == "two");

  SECTION("no body") {
    decoded<client_reply> e = decode_client_reply(encode_client_reply("text", h, {}));
    REQUIRE(e);
    CHECK(e->body.empty());
  }
  SECTION("malformed replies") {
    CHECK_FALSE(decode_client_reply(frames_of({"", sig_c, "text"})));
    CHECK_FALSE(decode_client_reply(frames_of({"", sig_w, "text", empty_map})));
    CHECK_FALSE(decode_client_reply(frames_of({"", sig_c, "text", "nope"})));
    CHECK_FALSE(decode_client_reply(frames_of({"", sig_sc})));
  }
  SECTION("a stock reply is its body, whatever the frames hold") {
    std::vector<zmq::message_t> parts;
    parts.emplace_back(std::string_view("one"));
    parts.emplace_back(empty_map.data(), empty_map.size());
    zmq::multipart_t stock = encode_mdp_reply("text", std::move(parts));
    CHECK(strings_of(stock) == std::vector<std::string>{"", sig_sc, "text", "one", empty_map});
    decoded<client_reply> s = decode_client_reply(std::move(stock));
    REQUIRE(s);
    CHECK(s->from == dialect::mdp);
    CHECK(s->head.size() == 0);
    REQUIRE(s->body.size() == 2);
    CHECK(s->body[1].to_string() == empty_map);
  }
}

TEST_CASE("a stock request encodes as RFC 7 says", "[codec][client]") {
  std::vector<zmq::message_t> body;
  body.emplace_back(std::string_view("a"));
  body.emplace_back(std::string_view("b"));
  CHECK(strings_of(encode_mdp_request("echo", std::move(body))) ==
        std::vector<std::string>{"", sig_sc, "echo", "a", "b"});
}

// ------------------------------------------------------------------ workers

TEST_CASE("READY round trip", "[codec][worker]") {
  worker_info info{"w1", 4, 1234, "host-a", 250};
  zmq::multipart_t frames = encode_ready(dialect::carico, "text", info);
  REQUIRE(frames.size() == 5);
  CHECK(frames[2].to_string() == command_frame(command::ready));
  decoded<worker_message> m = decode_worker_message(std::move(frames));
  INFO(m.error);
  REQUIRE(m);
  CHECK(m->cmd == command::ready);
  CHECK(m->service == "text");
  REQUIRE(m->info);
  CHECK(m->info->name == "w1");
  CHECK(m->info->capacity == 4);
  CHECK(m->info->pid == 1234);
  CHECK(m->info->host == "host-a");
  CHECK(m->info->heartbeat_ms == 250);

  SECTION("a stock MDP READY is the service alone") {
    zmq::multipart_t stock = encode_ready(dialect::mdp, "echo", info);
    CHECK(strings_of(stock) ==
          std::vector<std::string>{"", sig_sw, command_frame(command::ready), "echo"});
    decoded<worker_message> plain = decode_worker_message(std::move(stock));
    REQUIRE(plain);
    CHECK(plain->from == dialect::mdp);
    CHECK(plain->service == "echo");
    CHECK_FALSE(plain->info);
    // An info map is carico's: a stock READY with one is malformed.
    CHECK_FALSE(decode_worker_message(frames_of(
        {"", sig_sw, command_frame(command::ready), "echo", encode_json_header({{"name", "n"}})})));
  }
  SECTION("a carico READY may leave out its info map") {
    decoded<worker_message> bare =
        decode_worker_message(frames_of({"", sig_w, command_frame(command::ready), "echo"}));
    REQUIRE(bare);
    CHECK(bare->from == dialect::carico);
    CHECK_FALSE(bare->info);
  }
  SECTION("info keys are optional; capacity defaults to 1") {
    decoded<worker_message> some = decode_worker_message(frames_of(
        {"", sig_w, command_frame(command::ready), "echo", encode_json_header({{"name", "n"}})}));
    REQUIRE(some);
    REQUIRE(some->info);
    CHECK(some->info->name == "n");
    CHECK(some->info->capacity == 1);
    CHECK(some->info->pid == 0);
    CHECK(some->info->heartbeat_ms == 0);  // not said: the broker's own interval
  }
  SECTION("unknown info keys are ignored") {
    CHECK(decode_worker_message(frames_of({"", sig_w, command_frame(command::ready), "echo",
                                           encode_json_header({{"version", "2"}})})));
  }
}

TEST_CASE("READY with bad info is rejected", "[codec][worker]") {
  auto ready_with = [](const std::string& info) {
    return decode_worker_message(
        frames_of({"", sig_w, command_frame(command::ready), "text", info}));
  };
  CHECK_FALSE(ready_with(encode_json_header({{"name", 5}})));
  CHECK_FALSE(ready_with(encode_json_header({{"capacity", "2"}})));
  CHECK_FALSE(ready_with(encode_json_header({{"capacity", -1}})));
  CHECK_FALSE(ready_with(encode_json_header({{"capacity", 0}})));
  CHECK_FALSE(ready_with(encode_json_header({{"capacity", 2.5}})));
  CHECK_FALSE(ready_with(encode_json_header({{"pid", "12"}})));
  CHECK_FALSE(ready_with(encode_json_header({{"host", nlohmann::json::array()}})));
  CHECK_FALSE(ready_with(encode_json_header({{"heartbeat_ms", 9}})));
  CHECK_FALSE(ready_with(encode_json_header({{"heartbeat_ms", 60001}})));
  CHECK_FALSE(ready_with(encode_json_header({{"heartbeat_ms", "500"}})));
  CHECK(ready_with(encode_json_header({{"heartbeat_ms", 10}})));
  CHECK(ready_with(encode_json_header({{"heartbeat_ms", 60000}})));
  CHECK_FALSE(ready_with("not a map"));
  CHECK_FALSE(ready_with(""));
  CHECK_FALSE(ready_with(empty_map + "x"));
  // Missing or bad service, too many frames.
  CHECK_FALSE(decode_worker_message(frames_of({"", sig_w, command_frame(command::ready)})));
  CHECK_FALSE(decode_worker_message(frames_of({"", sig_w, command_frame(command::ready), ""})));
  CHECK_FALSE(decode_worker_message(
      frames_of({"", sig_w, command_frame(command::ready), "text", empty_map, "extra"})));
}

TEST_CASE("REQUEST round trip", "[codec][worker]") {
  header h;
  h.set("request", std::uint64_t{3});
  h.set("attempt", std::uint64_t{1});
  h.set("custom", "kept");
  std::vector<zmq::message_t> doc;
  doc.emplace_back(std::string_view("doc"));
  zmq::multipart_t frames =
      encode_request(dialect::carico, zmq::message_t(std::string("client-id")), h, std::move(doc));
  CHECK(strings_of(frames) == std::vector<std::string>{"", sig_w, command_frame(command::request),
                                                       "client-id", "", h.encode_string(), "doc"});
  decoded<worker_message> m = decode_worker_message(std::move(frames));
  REQUIRE(m);
  CHECK(m->cmd == command::request);
  CHECK(m->address.to_string() == "client-id");
  REQUIRE(m->head);
  CHECK(m->head->get_uint("request") == 3u);
  CHECK(m->head->get_string("custom") == "kept");
  REQUIRE(m->body.size() == 1);
  CHECK(m->body[0].to_string() == "doc");

  SECTION("a carico REQUEST carries a stock client's body frames after the header") {
    decoded<worker_message> none = decode_worker_message(
        frames_of({"", sig_w, command_frame(command::request), "c", "", empty_map}));
    REQUIRE(none);
    CHECK(none->body.empty());
    decoded<worker_message> two = decode_worker_message(
        frames_of({"", sig_w, command_frame(command::request), "c", "", empty_map, "p", "q"}));
    REQUIRE(two);
    CHECK(two->body.size() == 2);
  }
  SECTION("a stock REQUEST is the body alone, maps included") {
    std::vector<zmq::message_t> body;
    body.emplace_back(empty_map.data(), empty_map.size());
    body.emplace_back(std::string_view("q"));
    zmq::multipart_t frames =
        encode_request(dialect::mdp, zmq::message_t(std::string("7")), h, std::move(body));
    CHECK(strings_of(frames) == std::vector<std::string>{"", sig_sw,
                                                         command_frame(command::request), "7", "",
                                                         empty_map, "q"});
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    REQUIRE(m);
    CHECK(m->from == dialect::mdp);
    CHECK_FALSE(m->head);
    REQUIRE(m->body.size() == 2);
    CHECK(m->body[0].to_string() == empty_map);
  }
  SECTION("malformed REQUEST") {
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_w, command_frame(command::request), "c", ""})));
    CHECK_FALSE(decode_worker_message(
        frames_of({"", sig_w, command_frame(command::request), "c", "x", empty_map, "p"})));
    CHECK_FALSE(decode_worker_message(
        frames_of({"", sig_w, command_frame(command::request), "c", "", "bad", "p"})));
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::request), "c"})));
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::request), "c", ""})));
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::request), "c", "x"})));
  }
}

TEST_CASE("send_addressed sends the frames encode_request and encode_reply make", "[codec][worker]") {
  zmq::context_t context;
  test::inproc_pair pair(context);
  zmq::socket_t& out = pair.sender;
  zmq::socket_t& in = pair.receiver;
  header h;
  h.set("request", std::uint64_t{3});
  h.set("custom", "kept");
  auto received = [&in] {
    zmq::multipart_t frames;
    REQUIRE(frames.recv(in));
    return strings_of(frames);
  };

  SECTION("REQUEST after a routing id, as the broker sends it") {
    zmq::message_t head = h.encode();
    zmq::message_t payload(std::string_view("doc"));
    REQUIRE(send_addressed(out, "worker-7", dialect::carico, command::request, "client-id", &head,
                           &payload, 1));
    std::vector<zmq::message_t> doc;
    doc.emplace_back(std::string_view("doc"));
    std::vector<std::string> expected{"worker-7"};
    for (const std::string& f : strings_of(encode_request(
             dialect::carico, zmq::message_t(std::string("client-id")), h, std::move(doc)))) {
      expected.push_back(f);
    }
    CHECK(received() == expected);
  }
  SECTION("a stock REQUEST: no header frame, even when one is given") {
    zmq::message_t head = h.encode();
    zmq::message_t payload(std::string_view("doc"));
    REQUIRE(send_addressed(out, "w", dialect::mdp, command::request, "9", &head, &payload, 1));
    CHECK(received() == std::vector<std::string>{"w", "", sig_sw, command_frame(command::request),
                                                 "9", "", "doc"});
    REQUIRE(send_addressed(out, "w", dialect::mdp, command::request, "9", nullptr, nullptr, 0));
    CHECK(received() ==
          std::vector<std::string>{"w", "", sig_sw, command_frame(command::request), "9", ""});
  }
  SECTION("REPLY without a routing id, as a worker sends it, with 0 to 2 body frames") {
    for (std::size_t n = 0; n <= 2; ++n) {
      std::vector<zmq::message_t> body, copy;
      for (std::size_t i = 0; i < n; ++i) {
        body.emplace_back(std::string("part-") + std::to_string(i));
        copy.emplace_back(std::string("part-") + std::to_string(i));
      }
      zmq::message_t head = h.encode();
      REQUIRE(send_addressed(out, {}, dialect::carico, command::reply, "cid", &head, body.data(),
                             body.size(), true));
      CHECK(received() == strings_of(encode_reply(dialect::carico, zmq::message_t(std::string("cid")),
                                                  h, std::move(copy))));
    }
  }
  SECTION("dontwait: a DEALER with no connection takes nothing") {
    zmq::socket_t lonely(context, zmq::socket_type::dealer);
    zmq::message_t head = h.encode();
    CHECK_FALSE(
        send_addressed(lonely, {}, dialect::carico, command::reply, "cid", &head, nullptr, 0, true));
    CHECK(head.size() > 0);  // not sent, still ours
  }
}

TEST_CASE("REPLY round trip", "[codec][worker]") {
  header h;
  h.set("request", std::uint64_t{3});
  h.set("code", code::ok);
  SECTION("with a result payload") {
    std::vector<zmq::message_t> body;
    body.emplace_back(std::string_view("result"));
    zmq::multipart_t frames =
        encode_reply(dialect::carico, zmq::message_t(std::string("cid")), h, std::move(body));
    CHECK(strings_of(frames) == std::vector<std::string>{"", sig_w, command_frame(command::reply),
                                                         "cid", "", h.encode_string(), "result"});
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    REQUIRE(m);
    CHECK(m->cmd == command::reply);
    CHECK(m->address.to_string() == "cid");
    REQUIRE(m->head);
    CHECK(m->head->get_uint("request") == 3u);
    REQUIRE(m->body.size() == 1);
    CHECK(m->body[0].to_string() == "result");
  }
  SECTION("header only") {
    decoded<worker_message> m =
        decode_worker_message(encode_reply(dialect::carico, zmq::message_t(std::string("cid")), h, {}));
    REQUIRE(m);
    REQUIRE(m->head);
    CHECK(m->body.empty());
  }
  SECTION("a stock reply: every frame is body, maps included") {
    decoded<worker_message> m =
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::reply), "cid", "",
                                         encode_json_header({{"code", 404}}), "world"}));
    REQUIRE(m);
    CHECK(m->from == dialect::mdp);
    CHECK_FALSE(m->head);
    REQUIRE(m->body.size() == 2);
    CHECK(m->body[0].to_string() == encode_json_header({{"code", 404}}));
    CHECK(m->body[1].to_string() == "world");
    // RFC 7: frames 6+ are the body; a stock REPLY without one is malformed.
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::reply), "cid", ""})));
  }
  SECTION("a carico reply's frame 5 must be a header: the dialect is never guessed") {
    CHECK_FALSE(decode_worker_message(
        frames_of({"", sig_w, command_frame(command::reply), "cid", "", "hello", "world"})));
    CHECK_FALSE(decode_worker_message(
        frames_of({"", sig_w, command_frame(command::reply), "cid", "", empty_map + "x"})));
  }
  SECTION("malformed REPLY") {
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_w, command_frame(command::reply), "cid", ""})));
    CHECK_FALSE(
        decode_worker_message(frames_of({"", sig_w, command_frame(command::reply), "cid"})));
    CHECK_FALSE(decode_worker_message(
        frames_of({"", sig_w, command_frame(command::reply), "cid", "x", empty_map})));
  }
}

TEST_CASE("REPLY with keep_raw leaves a header raw_map reads encoded", "[codec][worker]") {
  auto reply_with = [](const std::string& head) {
    return frames_of({"", sig_w, command_frame(command::reply), "cid", "", head, "result"});
  };
  SECTION("a small header (its bytes live inside the message_t) survives the moves") {
    const std::string head = encode_json_header({{"request", 3}, {"code", 200}});
    REQUIRE(head.size() < 33);
    decoded<worker_message> m = decode_worker_message(reply_with(head), header_mode::keep_raw);
    REQUIRE(m);
    CHECK_FALSE(m->head);
    CHECK(m->head_frame.to_string() == head);
    raw_map read;
    REQUIRE(read.parse(m->head_frame.data(), m->head_frame.size()));
    CHECK(read.over(m->head_frame.data()).get_uint("request") == 3u);
    CHECK(read.over(m->head_frame.data()).get_uint("code") == 200u);
    REQUIRE(m->body.size() == 1);
    CHECK(m->body[0].to_string() == "result");
    CHECK(m->address.to_string() == "cid");
  }
  SECTION("the map the codec read is handed over, read through the frame where it is now") {
    raw_map read;
    decoded<worker_message> m =
        decode_worker_message(reply_with(encode_json_header({{"request", 3}, {"code", 200}})),
                              header_mode::keep_raw, &read);
    REQUIRE(m);
    REQUIRE(m->head_frame.size() > 0);
    const raw_view now = read.over(m->head_frame.data());
    CHECK(now.get_uint("request") == 3u);
    CHECK(now.get_uint("code") == 200u);
    CHECK((*now.begin()).key.data() > m->head_frame.data<char>());
    CHECK((*now.begin()).key.data() < m->head_frame.data<char>() + m->head_frame.size());
  }
  SECTION("a header raw_map leaves to header::decode is decoded as before") {
    const std::string repeated("\x82\xa1k\x01\xa1k\x02", 7);  // {"k": 1, "k": 2}
    decoded<worker_message> m = decode_worker_message(reply_with(repeated), header_mode::keep_raw);
    REQUIRE(m);
    CHECK(m->head_frame.size() == 0);
    REQUIRE(m->head);
    CHECK(m->head->get_uint("k") == 2u);
    CHECK(m->body.size() == 1);
  }
  SECTION("a stock reply is still all body") {
    decoded<worker_message> m =
        decode_worker_message(frames_of({"", sig_sw, command_frame(command::reply), "cid", "",
                                         encode_json_header({{"request", 3}}), "world"}),
                              header_mode::keep_raw);
    REQUIRE(m);
    CHECK_FALSE(m->head);
    CHECK(m->head_frame.size() == 0);
    CHECK(m->body.size() == 2);
  }
  SECTION("without keep_raw nothing changes") {
    decoded<worker_message> m =
        decode_worker_message(reply_with(encode_json_header({{"request", 3}})));
    REQUIRE(m);
    REQUIRE(m->head);
    CHECK(m->head_frame.size() == 0);
  }
  SECTION("a REQUEST header is kept the same way") {
    auto request_with = [](const std::string& head) {
      return frames_of({"", sig_w, command_frame(command::request), "cid", "", head, "p"});
    };
    raw_map read;
    const std::string head = encode_json_header({{"request", 1}, {"attempt", 2}});
    decoded<worker_message> m =
        decode_worker_message(request_with(head), header_mode::keep_raw, &read);
    REQUIRE(m);
    CHECK_FALSE(m->head);
    CHECK(m->head_frame.to_string() == head);
    CHECK(read.over(m->head_frame.data()).get_uint("request") == 1u);
    CHECK(read.over(m->head_frame.data()).get_uint("attempt") == 2u);
    CHECK(m->address.to_string() == "cid");
    REQUIRE(m->body.size() == 1);
    CHECK(m->body[0].to_string() == "p");
    // One raw_map leaves alone is decoded, and an invalid one refused as before.
    const std::string repeated("\x82\xa1k\x01\xa1k\x02", 7);  // {"k": 1, "k": 2}
    decoded<worker_message> d = decode_worker_message(request_with(repeated), header_mode::keep_raw);
    REQUIRE(d);
    REQUIRE(d->head);
    CHECK(d->head_frame.size() == 0);
    decoded<worker_message> bad = decode_worker_message(request_with("\xc1"), header_mode::keep_raw);
    CHECK_FALSE(bad);
    CHECK(bad.error == decode_worker_message(request_with("\xc1")).error);
  }
}

TEST_CASE("HEARTBEAT round trip", "[codec][worker]") {
  SECTION("bare") {
    zmq::multipart_t frames = encode_heartbeat(dialect::carico);
    CHECK(strings_of(frames) ==
          std::vector<std::string>{"", sig_w, command_frame(command::heartbeat)});
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    REQUIRE(m);
    CHECK(m->cmd == command::heartbeat);
    CHECK_FALSE(m->load);
  }
  SECTION("with a load report") {
    load_report load{worker_state::drain, 2, 1 << 20, 12.5, 80, "disk full"};
    decoded<worker_message> m = decode_worker_message(encode_heartbeat(dialect::carico, &load));
    REQUIRE(m);
    REQUIRE(m->load);
    CHECK(m->load->state == worker_state::drain);
    CHECK(m->load->in_flight == 2);
    CHECK(m->load->rss_bytes == 1u << 20);
    CHECK(m->load->mem_percent == Approx(12.5));
    CHECK(m->load->cpu_percent == Approx(80));
    CHECK(m->load->reason == "disk full");
  }
  SECTION("a stock heartbeat is bare, and a load report makes one malformed") {
    load_report load;
    CHECK(strings_of(encode_heartbeat(dialect::mdp, &load)) ==
          std::vector<std::string>{"", sig_sw, command_frame(command::heartbeat)});
    CHECK_FALSE(decode_worker_message(frames_of({"", sig_sw, command_frame(command::heartbeat),
                                                 encode_json_header({{"state", "ready"}})})));
  }
  SECTION("every state round trips") {
    for (worker_state s : {worker_state::ready, worker_state::overload, worker_state::drain}) {
      load_report load;
      load.state = s;
      decoded<worker_message> m = decode_worker_message(encode_heartbeat(dialect::carico, &load));
      REQUIRE(m);
      CHECK(m->load->state == s);
      CHECK(parse_state(state_name(s)) == s);
    }
  }
  SECTION("integers are accepted for percentages, keys are optional") {
    auto m = decode_worker_message(
        frames_of({"", sig_w, command_frame(command::heartbeat),
                   encode_json_header({{"mem_percent", 3}, {"cpu_percent", -1}})}));
    REQUIRE(m);
    CHECK(m->load->state == worker_state::ready);
    CHECK(m->load->mem_percent == Approx(3));
  }
}

TEST_CASE("an unknown load state counts as overload", "[codec][worker]") {
  CHECK(parse_state("busy") == worker_state::overload);
  CHECK(parse_state("") == worker_state::overload);
  CHECK(parse_state("READY") == worker_state::overload);
  auto m = decode_worker_message(frames_of(
      {"", sig_w, command_frame(command::heartbeat), encode_json_header({{"state", "sleepy"}})}));
  REQUIRE(m);
  REQUIRE(m->load);
  CHECK(m->load->state == worker_state::overload);
}

TEST_CASE("HEARTBEAT with a bad load report is rejected", "[codec][worker]") {
  auto beat = [](const std::string& report) {
    return decode_worker_message(frames_of({"", sig_w, command_frame(command::heartbeat), report}));
  };
  CHECK_FALSE(beat(encode_json_header({{"state", 1}})));
  CHECK_FALSE(beat(encode_json_header({{"in_flight", "1"}})));
  CHECK_FALSE(beat(encode_json_header({{"in_flight", -1}})));
  CHECK_FALSE(beat(encode_json_header({{"rss_bytes", 1.5}})));
  CHECK_FALSE(beat(encode_json_header({{"mem_percent", "high"}})));
  CHECK_FALSE(beat(encode_json_header({{"cpu_percent", nullptr}})));
  CHECK_FALSE(beat(encode_json_header({{"reason", 3}})));
  CHECK_FALSE(beat("not a map"));
  CHECK_FALSE(beat(empty_map + "x"));
  CHECK_FALSE(decode_worker_message(
      frames_of({"", sig_w, command_frame(command::heartbeat), empty_map, "x"})));
}

TEST_CASE("DISCONNECT round trip", "[codec][worker]") {
  zmq::multipart_t frames = encode_disconnect(dialect::carico);
  CHECK(strings_of(frames) ==
        std::vector<std::string>{"", sig_w, command_frame(command::disconnect)});
  CHECK(strings_of(encode_disconnect(dialect::mdp)) ==
        std::vector<std::string>{"", sig_sw, command_frame(command::disconnect)});
  decoded<worker_message> m = decode_worker_message(std::move(frames));
  REQUIRE(m);
  CHECK(m->cmd == command::disconnect);
  CHECK_FALSE(
      decode_worker_message(frames_of({"", sig_w, command_frame(command::disconnect), "x"})));
}

TEST_CASE("malformed worker envelopes are rejected", "[codec][worker]") {
  auto rejects = [](zmq::multipart_t frames) {
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    CHECK_FALSE(m);
    CHECK_FALSE(m.error.empty());
  };
  rejects(zmq::multipart_t());
  rejects(frames_of({""}));
  rejects(frames_of({"", sig_w}));                                // missing command
  rejects(frames_of({"x", sig_w, command_frame(command::heartbeat)}));    // frame 0 not empty
  rejects(frames_of({"", sig_c, command_frame(command::heartbeat)}));     // client signature
  rejects(frames_of({"", sig_sc, command_frame(command::heartbeat)}));    // stock client signature
  rejects(frames_of({"", "MDPW02", command_frame(command::heartbeat)}));  // wrong version
  rejects(frames_of({sig_w, command_frame(command::heartbeat)}));         // no empty frame
  SECTION("bad command byte") {
    rejects(frames_of({"", sig_w, std::string(1, '\0')}));
    rejects(frames_of({"", sig_w, std::string(1, '\x06')}));
    rejects(frames_of({"", sig_w, std::string(1, '\xff')}));
    rejects(frames_of({"", sig_w, ""}));
    rejects(frames_of({"", sig_w, "\x04\x04"}));
    rejects(frames_of({"", sig_w, "HEARTBEAT"}));
  }
}

TEST_CASE("encode_info and encode_load decode back", "[codec][worker]") {
  worker_info info{"n", 3, 9, "h", 0};
  decoded<worker_info> i = decode_info(encode_info(info));
  REQUIRE(i);
  CHECK(i->name == "n");
  CHECK(i->capacity == 3);
  load_report load{worker_state::overload, 1, 2, 3.5, 4.5, {}};
  decoded<load_report> l = decode_load(encode_load(load));
  REQUIRE(l);
  CHECK(l->state == worker_state::overload);
  CHECK(l->rss_bytes == 2);
  CHECK(l->cpu_percent == Approx(4.5));
}

TEST_CASE("command and state names", "[codec]") {
  CHECK(command_name(command::ready) == "READY");
  CHECK(command_name(command::disconnect) == "DISCONNECT");
  CHECK(state_name(worker_state::drain) == "drain");
  CHECK(frame_equals(zmq::message_t(std::string("abc")), "abc"));
  CHECK_FALSE(frame_equals(zmq::message_t(std::string("abc")), "abcd"));
}

TEST_CASE("random frames never throw out of the decoders", "[codec][fuzz]") {
  std::minstd_rand rng(20261127);
  auto random_bytes = [&](std::size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
  };
  // Frames that are often well formed up to some point, then random.
  auto random_frame = [&](std::size_t index) -> std::string {
    switch (rng() % 6) {
      case 0: return random_bytes(40);
      case 1: return index == 0 ? "" : std::vector<std::string>{sig_c, sig_w, sig_sc, sig_sw}[rng() % 4];
      case 2: return std::string(1, static_cast<char>(rng() % 7));
      case 3: return empty_map;
      case 4:
        return encode_json_header(
            {{"state", "ready"}, {"capacity", rng() % 3}, {"request", rng()}});
      default: {
        std::string m = encode_json_header({{"k", random_bytes(8)}});
        if (!m.empty()) m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
        return m;
      }
    }
  };
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::string> parts;
    const std::size_t n = rng() % 9;
    for (std::size_t f = 0; f < n; ++f) parts.push_back(random_frame(f));
    auto frames = [&] {
      zmq::multipart_t out;
      for (const std::string& p : parts) out.addmem(p.data(), p.size());
      return out;
    };
    client_envelope envelope;
    REQUIRE_NOTHROW(accepted += decode_client_request(frames(), &envelope) ? 1 : 0);
    REQUIRE_NOTHROW(accepted += decode_client_reply(frames()) ? 1 : 0);
    REQUIRE_NOTHROW(accepted += decode_worker_message(frames()) ? 1 : 0);
    const std::string bytes = random_bytes(64);
    REQUIRE_NOTHROW(header::decode(bytes.data(), bytes.size()));
  }
  CHECK(accepted > 0);  // the generator reaches valid messages too
}

TEST_CASE("an oversized request header frame is rejected", "[codec][client]") {
  auto header_of_size = [](std::size_t size) {
    // {"k": str16 of the right length}: 1 + 2 + 3 bytes of framing.
    std::string value(size - 6, 'x');
    header h;
    h.set("k", std::string_view(value));
    std::string bytes = h.encode_string();
    REQUIRE(bytes.size() == size);
    return bytes;
  };
  constexpr std::size_t limit = 64 << 10;
  CHECK(decode_client_request(frames_of({"", sig_c, "text", header_of_size(limit), "p"})));
  decoded<client_request> big =
      decode_client_request(frames_of({"", sig_c, "text", header_of_size(limit + 1), "p"}));
  CHECK_FALSE(big);
  CHECK_FALSE(big.error.empty());
}
