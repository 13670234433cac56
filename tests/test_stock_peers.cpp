// Stock Majordomo peers (tests/support/stock_*.hpp, written from RFC 7 and 8,
// not from carico's codec): first against themselves and the minimal stock
// broker, then against carico's broker under contract version 2, where a peer
// that says MDPC01 or MDPW01 gets plain MDP/0.1 frame for frame.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/stock_broker.hpp"
#include "tests/support/stock_mdp.hpp"
#include "tests/support/stock_worker.hpp"
#include "worker/text_handler.hpp"
#include "worker/worker.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using carico::test::frames;
using carico::test::mdp_violation;
using carico::test::stock_client;
using carico::test::stock_worker;
using carico::test::stock_worker_events;
using carico::test::stock_worker_options;

namespace {

// {"code": 404} as MessagePack: a body frame that looks like a carico header.
const std::string msgpack_code_404("\x81\xa4" "code" "\xcd\x01\x94", 9);
// {} and a frame of bytes that are no valid anything.
const std::string msgpack_empty_map("\x80", 1);
const std::string binary_bytes("\x00\xff\x01\xc1", 4);

std::string command_byte(int c) { return std::string(1, static_cast<char>(c)); }

// The worker has had no DISCONNECT, no broker death, no second READY, and every
// broker message had the RFC 7 shape.
void require_clean(const stock_worker& w) {
  const stock_worker_events e = w.events();
  INFO("violations: " << (e.violations.empty() ? "" : e.violations.front()));
  CHECK(e.violations.empty());
  CHECK(e.disconnects == 0);
  CHECK(e.broker_deaths == 0);
  CHECK(e.readies == 1);
  CHECK(e.reconnects == 0);
}

bool has_requests(const stock_worker& w, std::size_t n) {
  return w.wait_for([n](const stock_worker_events& e) { return e.requests.size() >= n; });
}

bool has_disconnect(const stock_worker& w, std::chrono::milliseconds timeout = 3s) {
  return w.wait_for([](const stock_worker_events& e) { return e.disconnects >= 1; }, timeout);
}

}  // namespace

// ================================================================ stock peers
// Against the minimal stock broker (tests/support/stock_broker.hpp): the peers
// themselves must be right before they judge carico.

TEST_CASE("stock peers against the minimal stock broker") {
  zmq::context_t context;
  carico::test::stock_broker broker(context, {.endpoint = carico::test::unique_endpoint("stock"),
                                              .heartbeat = 100ms});
  broker.start();
  const stock_worker_options fast{.endpoint = broker.endpoint(),
                                  .service = "echo",
                                  .heartbeat = 100ms,
                                  .reconnect_delay = 100ms};

  SECTION("1-, 2- and 3-frame bodies pass byte for byte, both ways") {
    stock_worker w(context, fast);
    stock_client c(context, broker.endpoint());
    const std::vector<frames> bodies = {{"one"},
                                        {"part1", "part2"},
                                        {msgpack_code_404, "x", ""},
                                        {"", binary_bytes, msgpack_empty_map}};
    for (const frames& body : bodies) {
      CHECK(c.call("echo", body, body) == body);
    }
    REQUIRE(w.events().requests.size() == bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) CHECK(w.events().requests[i].body == bodies[i]);
    require_clean(w);
    CHECK(broker.violations().empty());
  }

  SECTION("requests go round robin over the workers of a service") {
    stock_worker a(context, fast);
    stock_worker b(context, fast);
    REQUIRE(carico::test::eventually([&] { return broker.workers() == 2; }));
    stock_client c(context, broker.endpoint());
    for (int i = 0; i < 4; ++i) c.call("echo", {std::to_string(i)}, frames{std::to_string(i)});
    CHECK(a.events().requests.size() == 2);
    CHECK(b.events().requests.size() == 2);
  }

  SECTION("a worker's reply body replaces the request body, unchanged") {
    stock_worker_options options = fast;
    options.handler = [](const frames&) { return frames{msgpack_code_404, "x"}; };
    stock_worker w(context, options);
    stock_client c(context, broker.endpoint());
    CHECK(c.call("echo", {"anything"}, frames{msgpack_code_404, "x"}).size() == 2);
  }

  SECTION("heartbeats both ways keep a worker registered") {
    stock_worker w(context, fast);
    // 10 intervals: a broker that never heartbeat would be dead to it after 3.
    CHECK_FALSE(w.wait_for([](const stock_worker_events& e) { return e.broker_deaths > 0; }, 1s));
    CHECK(w.events().heartbeats >= 5);
    require_clean(w);
    CHECK(broker.workers() == 1);
  }

  SECTION("READY for an mmi. service gets DISCONNECT (RFC 8)") {
    stock_worker_options options = fast;
    options.service = "mmi.x";
    options.reconnect = false;
    stock_worker w(context, options);
    CHECK(has_disconnect(w));
    CHECK(broker.workers() == 0);
  }

  SECTION("a REPLY for a request the worker does not hold gets DISCONNECT (RFC 7)") {
    stock_worker_options options = fast;
    options.reconnect = false;
    stock_worker w(context, options);
    REQUIRE(carico::test::eventually([&] { return broker.workers() == 1; }));
    REQUIRE(w.send_raw({"", "MDPW01", command_byte(3), "no-such-client", "", "x"}));
    CHECK(has_disconnect(w));
    CHECK(broker.workers() == 0);
  }

  SECTION("a worker reconnects with a new READY after a DISCONNECT") {
    stock_worker w(context, fast);
    REQUIRE(carico::test::eventually([&] { return broker.workers() == 1; }));
    REQUIRE(w.send_raw({"", "MDPW01", command_byte(1), "echo"}));  // a second READY
    CHECK(has_disconnect(w));
    CHECK(w.wait_for([](const stock_worker_events& e) { return e.readies == 2; }));
    stock_client c(context, broker.endpoint());
    CHECK(c.call("echo", {"again"}, frames{"again"}) == frames{"again"});
  }

  SECTION("the broker drops a request with no body and goes on serving") {
    stock_worker w(context, fast);
    stock_client c(context, broker.endpoint());
    c.send_raw({"", "MDPC01", "echo"});
    CHECK_NOTHROW(c.expect_silence(200ms));
    CHECK(broker.violations().size() == 1);
    CHECK(c.call("echo", {"ok"}, frames{"ok"}) == frames{"ok"});
  }
}

TEST_CASE("the strict checks catch every extra or missing frame") {
  using carico::test::check_client_reply;

  SECTION("a client REPLY") {
    CHECK(check_client_reply({"", "MDPC01", "echo", "body"}, "echo", frames{"body"}).empty());
    CHECK(check_client_reply({"", "MDPC01", "echo", msgpack_code_404, "body"}, "echo",
                             frames{"body"}) != "");
    CHECK(check_client_reply({"", "MDPC01", "echo"}, "echo") != "");
    CHECK(check_client_reply({"", "MDPCX1", "echo", "body"}, "echo") != "");
    CHECK(check_client_reply({"x", "MDPC01", "echo", "body"}, "echo") != "");
    CHECK(check_client_reply({"", "MDPC01", "other", "body"}, "echo") != "");
    CHECK(check_client_reply({"", "MDPC01", "echo", "a", "b"}, "echo", frames{"a"}) != "");
  }

  SECTION("the client throws on a reply with an extra frame") {
    zmq::context_t context;
    const std::string endpoint = carico::test::unique_endpoint("raw-broker");
    zmq::socket_t router(context, zmq::socket_type::router);
    router.bind(endpoint);
    stock_client c(context, endpoint);
    c.send("echo", {"body"});
    std::optional<frames> request = carico::test::receive_frames(router, 2s);
    REQUIRE(request);
    CHECK(frames(request->begin() + 1, request->end()) == frames{"", "MDPC01", "echo", "body"});
    carico::test::send_frames(router, {(*request)[0], "", "MDPC01", "echo", msgpack_code_404, "body"});
    std::optional<frames> reply = c.receive(2s);
    REQUIRE(reply);
    CHECK(check_client_reply(*reply, "echo", frames{"body"}) != "");
  }

  SECTION("the worker records every malformed broker message") {
    zmq::context_t context;
    const std::string endpoint = carico::test::unique_endpoint("raw-broker");
    zmq::socket_t router(context, zmq::socket_type::router);
    router.bind(endpoint);
    stock_worker w(context, {.endpoint = endpoint, .service = "svc", .heartbeat = 5s});
    std::optional<frames> ready = carico::test::receive_frames(router, 2s);
    REQUIRE(ready);
    const std::string id = (*ready)[0];
    CHECK(frames(ready->begin() + 1, ready->end()) == frames{"", "MDPW01", command_byte(1), "svc"});

    const std::vector<frames> malformed = {
        {id, "", "MDPW01", command_byte(2), "client", "", msgpack_code_404},  // fine: body is opaque
        {id, "", "MDPW01", command_byte(2), "client", msgpack_code_404, "", "body"},  // header before ""
        {id, "", "MDPW01", command_byte(2), "client", ""},                  // no body
        {id, "", "MDPWX1", command_byte(4)},                                // carico's signature
        {id, "", "MDPW01", command_byte(4), msgpack_code_404},              // heartbeat with a load report
        {id, "", "MDPW01", command_byte(9)},                                // no such command
        {id, "MDPW01", command_byte(4)},                                    // no empty frame 0
    };
    for (const frames& m : malformed) carico::test::send_frames(router, m);
    CHECK(w.wait_for([&](const stock_worker_events& e) {
      return e.violations.size() == malformed.size() - 1;
    }));
    // The well-formed one was answered exactly.
    std::optional<frames> reply = carico::test::receive_frames(router, 2s);
    REQUIRE(reply);
    CHECK(*reply == frames{id, "", "MDPW01", command_byte(3), "client", "", msgpack_code_404});
    CHECK(w.events().requests.size() == 1);
  }

  SECTION("the worker reconnects when the broker falls silent") {
    zmq::context_t context;
    const std::string endpoint = carico::test::unique_endpoint("silent-broker");
    zmq::socket_t router(context, zmq::socket_type::router);
    router.bind(endpoint);
    stock_worker w(context, {.endpoint = endpoint, .heartbeat = 30ms, .reconnect_delay = 30ms});
    CHECK(w.wait_for([](const stock_worker_events& e) { return e.reconnects >= 1; }));
    CHECK(w.events().broker_deaths >= 1);
    CHECK(w.events().readies >= 2);
  }
}
