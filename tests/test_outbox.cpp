// outbox: frames held until flush(), refused messages dropped whole and reported.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <zmq_addon.hpp>

#include "broker/outbox.hpp"
#include "shared/codec.hpp"

using namespace carico;

namespace {

constexpr auto more = zmq::send_flags::sndmore;
constexpr auto last = zmq::send_flags::none;

// A ROUTER with ROUTER_MANDATORY and a DEALER peer named "peer", connected.
struct router_pair {
  zmq::context_t context;
  zmq::socket_t router{context, zmq::socket_type::router};
  zmq::socket_t peer{context, zmq::socket_type::dealer};

  explicit router_pair(int peer_hwm = 1000) {
    router.set(zmq::sockopt::router_mandatory, true);
    router.set(zmq::sockopt::sndhwm, peer_hwm);
    router.bind("inproc://test-outbox");
    peer.set(zmq::sockopt::routing_id, "peer");
    peer.set(zmq::sockopt::rcvhwm, peer_hwm);
    peer.connect("inproc://test-outbox");
    // The ROUTER learns the peer's name from its first message.
    peer.send(zmq::str_buffer("hello"), last);
    zmq::multipart_t hello;
    REQUIRE(hello.recv(router));
  }

  // The next message the peer has, frame by frame; empty when there is none.
  std::vector<std::string> next() {
    zmq::multipart_t frames;
    std::vector<std::string> out;
    if (!frames.recv(peer, ZMQ_DONTWAIT)) return out;
    for (auto& f : frames) out.push_back(f.to_string());
    return out;
  }
};

}  // namespace

TEST_CASE("outbox sends nothing until flush, then every frame in order") {
  router_pair p;
  outbox out(p.router);
  zmq::message_t moved("payload", 7);
  out.send(zmq::str_buffer("peer"), more);
  out.send(zmq::str_buffer("one"), more);
  out.send(moved, last);
  out.send(zmq::str_buffer("peer"), more);
  out.send(zmq::str_buffer("two"), last);
  CHECK(moved.size() == 0);  // moved into the outbox, as a socket send would
  CHECK_FALSE(out.empty());
  CHECK(p.next().empty());

  CHECK(out.flush() == 5);
  CHECK(out.empty());
  CHECK(p.next() == std::vector<std::string>{"one", "payload"});
  CHECK(p.next() == std::vector<std::string>{"two"});
  CHECK(out.flush() == 0);
}

TEST_CASE("outbox drops a message its socket refuses, reports it, and sends the next") {
  std::vector<std::pair<std::string, int>> refused;
  auto note = [&refused](std::string_view first, int error) {
    refused.emplace_back(std::string(first), error);
  };

  SECTION("no such peer") {
    router_pair p;
    outbox out(p.router, note);
    out.send(zmq::str_buffer("nobody"), more | zmq::send_flags::dontwait);
    out.send(zmq::str_buffer("lost"), more);
    out.send(zmq::str_buffer("lost too"), last);
    out.send(zmq::str_buffer("peer"), more | zmq::send_flags::dontwait);
    out.send(zmq::str_buffer("kept"), last);
    out.flush();
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].first == "nobody");
    CHECK(refused[0].second == EHOSTUNREACH);
    CHECK(p.next() == std::vector<std::string>{"kept"});
    CHECK(p.next().empty());
  }

  SECTION("no such peer, the address a frame moved in") {
    router_pair p;
    outbox out(p.router, note);
    zmq::message_t nobody(std::string_view("nobody, with a routing id longer than 33 bytes"));
    out.send(std::move(nobody), more | zmq::send_flags::dontwait);
    out.send(zmq::message_t(std::string_view("lost")), last);
    out.send(zmq::str_buffer("peer"), more | zmq::send_flags::dontwait);
    out.send(zmq::message_t(std::string_view("kept")), last);
    CHECK(out.flush() == 4);
    CHECK(out.empty());
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].first == "nobody, with a routing id longer than 33 bytes");
    CHECK(refused[0].second == EHOSTUNREACH);
    CHECK(p.next() == std::vector<std::string>{"kept"});
    CHECK(p.next().empty());
  }

  SECTION("the peer's queue is full") {
    router_pair p(2);
    outbox out(p.router, note);
    for (int i = 0; i < 50; ++i) {
      out.send(zmq::str_buffer("peer"), more | zmq::send_flags::dontwait);
      out.send(zmq::const_buffer(&i, sizeof i), last);
    }
    out.flush();
    REQUIRE_FALSE(refused.empty());
    CHECK(refused.size() < 50);
    for (const auto& [first, error] : refused) {
      CHECK(first == "peer");
      CHECK(error == EAGAIN);
    }
    // What was taken arrives whole: one frame per message, in order.
    std::size_t received = 0;
    int previous = -1;
    for (auto m = p.next(); !m.empty(); m = p.next()) {
      REQUIRE(m.size() == 1);
      int value = 0;
      REQUIRE(m[0].size() == sizeof value);
      std::memcpy(&value, m[0].data(), sizeof value);
      CHECK(value > previous);
      previous = value;
      ++received;
    }
    CHECK(received + refused.size() == 50);
  }
}

TEST_CASE("outbox throws a fault that is not a refusal, and drops what it held") {
  zmq::context_t context;
  zmq::socket_t pull(context, zmq::socket_type::pull);  // cannot send at all
  outbox out(pull, [](std::string_view, int) { FAIL("not a refusal"); });
  out.send(zmq::str_buffer("a"), more);
  out.send(zmq::message_t(std::string_view("b")), last);
  try {
    out.flush();
    FAIL("flush did not throw");
  } catch (const zmq::error_t& e) {
    CHECK(e.num() == ENOTSUP);
  }
  CHECK(out.empty());
  CHECK(out.flush() == 0);
}

TEST_CASE("send_addressed works on an outbox as on a socket") {
  router_pair p;
  outbox out(p.router);
  zmq::message_t head("H", 1), body("B", 1);
  REQUIRE(send_addressed(out, "peer", dialect::carico, command::request, "client", &head, &body, 1));
  CHECK(p.next().empty());
  out.flush();
  CHECK(p.next() ==
        std::vector<std::string>{"", "MDPWX1", std::string(1, '\x02'), "client", "", "H", "B"});
}
