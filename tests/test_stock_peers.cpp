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
const std::string msgpack_code_404(
    "\x81\xa4"
    "code"
    "\xcd\x01\x94",
    9);
// {} and a frame of bytes that are no valid anything.
const std::string msgpack_empty_map("\x80", 1);
const std::string binary_bytes("\x00\xff\x01\xc1", 4);

std::string command_byte(int c) {
  return std::string(1, static_cast<char>(c));
}

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

bool has_requests(const stock_worker& w, std::size_t n, std::chrono::milliseconds timeout = 3s) {
  return w.wait_for([n](const stock_worker_events& e) { return e.requests.size() >= n; }, timeout);
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
  carico::test::stock_broker broker(
      context, {.endpoint = carico::test::unique_endpoint("stock"), .heartbeat = 100ms});
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
    carico::test::send_frames(router,
                              {(*request)[0], "", "MDPC01", "echo", msgpack_code_404, "body"});
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
        {id, "", "MDPW01", command_byte(2), "client", "",
         msgpack_code_404},  // fine: body is opaque
        {id, "", "MDPW01", command_byte(2), "client", msgpack_code_404, "",
         "body"},                                               // header before ""
        {id, "", "MDPW01", command_byte(2), "client", ""},      // no body
        {id, "", "MDPWX1", command_byte(4)},                    // carico's signature
        {id, "", "MDPW01", command_byte(4), msgpack_code_404},  // heartbeat with a load report
        {id, "", "MDPW01", command_byte(9)},                    // no such command
        {id, "MDPW01", command_byte(4)},                        // no empty frame 0
    };
    for (const frames& m : malformed) carico::test::send_frames(router, m);
    CHECK(w.wait_for(
        [&](const stock_worker_events& e) { return e.violations.size() == malformed.size() - 1; }));
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

// ================================================================ carico's broker
// Contract version 2: MDPC01/MDPW01 are plain MDP/0.1, whatever the other side speaks.

namespace {

// A carico worker on its own thread.
struct running_worker {
  running_worker(zmq::context_t& context, carico::worker_options options,
                 carico::service_handler handler)
      : w(context, std::move(options), std::move(handler)), thread([this] { w.run(); }) {}
  ~running_worker() {
    w.stop();
    thread.join();
  }
  carico::worker w;
  std::thread thread;
};

carico::worker_options carico_worker_options(const std::string& backend, const std::string& service,
                                             const std::string& name) {
  return {.connect = backend,
          .service = service,
          .name = name,
          .capacity = 1,
          .threads = 0,
          .heartbeat_ms = 50,
          .liveness = 3};
}

// Asks mmi.service (as a stock client) until the answer is exactly [want];
// returns the last answer seen, printed by describe() (or why there was none).
std::string mmi_service_until(stock_client& c, const std::string& service,
                              const std::string& want) {
  std::string last;
  carico::test::eventually(
      [&] {
        try {
          const frames body = c.call("mmi.service", {service}, std::nullopt, 1s);
          last = carico::test::describe(body);
          return body == frames{want};
        } catch (const mdp_violation& e) {
          last = e.what();
          return false;
        }
      },
      3s);
  return last;
}

fs::path temp_dir(const std::string& tag) {
  static std::atomic<int> n{0};
  fs::path dir =
      fs::temp_directory_path() /
      ("carico-stock-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::remove_all(dir);
  return dir;
}

}  // namespace

TEST_CASE("stock client and stock worker through carico's broker: bodies byte for byte",
          "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_worker w(context, {.endpoint = broker.backend(), .service = "stock"});
  stock_client c(context, broker.frontend());
  REQUIRE(mmi_service_until(c, "stock", "200") == R"(["200"])");

  SECTION("the worker gets the client's body; the client gets the worker's body") {
    const std::vector<frames> bodies = {{"one"},
                                        {"part1", "part2"},
                                        {msgpack_code_404, "x", ""},
                                        {msgpack_empty_map},
                                        {"", binary_bytes, msgpack_code_404}};
    for (const frames& body : bodies) {
      INFO("body " << carico::test::describe(body));
      CHECK(c.call("stock", body, body) == body);  // echoed: nothing added on either leg
      CHECK(w.events().requests.back().body == body);
    }
    CHECK(w.events().requests.size() == bodies.size());
  }

  SECTION("a reply body that looks like a carico header is still just a body") {
    stock_worker_options options{.endpoint = broker.backend(), .service = "looks-like-header"};
    options.handler = [](const frames&) { return frames{msgpack_code_404, "x"}; };
    stock_worker h(context, options);
    REQUIRE(mmi_service_until(c, "looks-like-header", "200") == R"(["200"])");
    CHECK(c.call("looks-like-header", {"q"}, frames{msgpack_code_404, "x"}).size() == 2);
    CHECK(h.events().requests.back().body == frames{"q"});
    require_clean(h);
  }
  require_clean(w);
}

TEST_CASE("a stock client served by a carico worker", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_client c(context, broker.frontend());

  SECTION("echo: the payload frame comes back alone") {
    running_worker cw(context, carico_worker_options(broker.backend(), "echo", "cw-echo"),
                      carico::echo_handler());
    REQUIRE(mmi_service_until(c, "echo", "200") == R"(["200"])");
    CHECK(c.call("echo", {"hello"}, frames{"hello"}) == frames{"hello"});
    CHECK(c.call("echo", {msgpack_code_404}, frames{msgpack_code_404}) == frames{msgpack_code_404});
    // echo answers with the body frames as they came, however many.
    const frames three{msgpack_code_404, "", "third"};
    CHECK(c.call("echo", three, three) == three);
  }

  SECTION("the carico worker sees a header of just request and attempt, and the body") {
    std::mutex mutex;
    nlohmann::json seen_head;
    std::string seen_payload;
    running_worker cw(context, carico_worker_options(broker.backend(), "peek", "cw-peek"),
                      [&](carico::job& j) {
                        std::lock_guard lock(mutex);
                        seen_head = j.head().to_json();
                        seen_payload = j.payload.to_string();
                        carico::job_result r;
                        r.body.emplace_back(std::string_view("seen"));
                        return r;
                      });
    REQUIRE(mmi_service_until(c, "peek", "200") == R"(["200"])");
    CHECK(c.call("peek", {msgpack_code_404}, frames{"seen"}) == frames{"seen"});
    std::lock_guard lock(mutex);
    INFO("header " << seen_head.dump());
    REQUIRE(seen_head.is_object());
    CHECK(seen_head.size() == 2);
    CHECK(seen_head.value("attempt", 0) == 1);
    CHECK(seen_head.contains("request"));
    CHECK(seen_payload == msgpack_code_404);
  }

  SECTION("text: the result as one frame of JSON text") {
    const fs::path dir = temp_dir("text");
    running_worker cw(context, carico_worker_options(broker.backend(), "text", "cw-text"),
                      carico::text_handler(std::make_shared<carico::document_store>(dir, true), 0));
    REQUIRE(mmi_service_until(c, "text", "200") == R"(["200"])");
    const frames body = c.call("text", {R"({"title": "Banana", "content": "banana bread"})"});
    REQUIRE(body.size() == 1);
    const nlohmann::json result = nlohmann::json::parse(body[0], nullptr, false);
    INFO("body " << body[0]);
    REQUIRE(result.is_object());
    CHECK(result.value("title", "") == "Banana");
    CHECK(result.value("count_a", 0) == 4);
    CHECK(result.value("bytes", 0) > 0);
    CHECK(fs::exists(dir / result.value("stored_as", "missing")));
    fs::remove_all(dir);
  }

  SECTION("no payload and no result: one empty frame") {
    running_worker cw(context, carico_worker_options(broker.backend(), "nothing", "cw-nothing"),
                      [](carico::job&) { return carico::job_result{}; });
    REQUIRE(mmi_service_until(c, "nothing", "200") == R"(["200"])");
    CHECK(c.call("nothing", {"x"}, frames{""}) == frames{""});
  }

  SECTION("a failed request is not sent to a stock client") {
    running_worker cw(context, carico_worker_options(broker.backend(), "fails", "cw-fails"),
                      [](carico::job& j) {
                        carico::job_result r;
                        if (j.payload.to_string() == "fail") {
                          r.code = 500;
                          r.error = "asked to fail";
                        } else {
                          r.body.push_back(std::move(j.payload));
                        }
                        return r;
                      });
    REQUIRE(mmi_service_until(c, "fails", "200") == R"(["200"])");
    c.send("fails", {"fail"});
    CHECK_NOTHROW(c.expect_silence(300ms));
    CHECK(c.call("fails", {"fine"}, frames{"fine"}) == frames{"fine"});
  }
}

TEST_CASE("a carico client served by a stock worker", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_worker_options options{.endpoint = broker.backend(), .service = "stock"};
  options.handler = [](const frames&) { return frames{msgpack_code_404, "x", ""}; };
  stock_worker w(context, options);
  stock_client probe(context, broker.frontend());
  REQUIRE(mmi_service_until(probe, "stock", "200") == R"(["200"])");
  carico::client_options client_options;
  client_options.endpoint = broker.frontend();
  client_options.timeout_ms = 3000;
  carico::client client(context, client_options);

  SECTION("a reply header with code 200, then the worker's body frames") {
    const carico::reply r = client.call("stock", {{"title", "t"}}, msgpack_code_404);
    INFO("head " << r.head.dump());
    CHECK(r.code == 200);
    CHECK(r.head.value("status", "") == "ok");
    CHECK(r.head.contains("id"));
    CHECK(r.head.contains("request"));
    CHECK(r.head.value("attempts", 0) == 1);
    CHECK(r.head.value("worker", "") != "");
    CHECK(r.body == frames{msgpack_code_404, "x", ""});
    REQUIRE(has_requests(w, 1));
    CHECK(w.events().requests.back().body ==
          frames{msgpack_code_404});  // header stays at the broker
  }

  SECTION("no payload reaches the stock worker as one empty frame") {
    const carico::reply r = client.call("stock", nlohmann::json::object(), "");
    CHECK(r.code == 200);
    REQUIRE(has_requests(w, 1));
    CHECK(w.events().requests.back().body == frames{""});
  }
  require_clean(w);
}

TEST_CASE("mmi from a stock client gets one frame (RFC 8)", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_worker w(context, {.endpoint = broker.backend(), .service = "stock"});
  stock_client c(context, broker.frontend());
  REQUIRE(mmi_service_until(c, "stock", "200") == R"(["200"])");
  CHECK(c.call("mmi.service", {"stock"}, frames{"200"}) == frames{"200"});
  CHECK(c.call("mmi.service", {"nobody-serves-this"}, frames{"404"}) == frames{"404"});
  CHECK(c.call("mmi.foo", {"x"}, frames{"501"}) == frames{"501"});
  CHECK(c.call("mmi.workers", {"x"}, frames{"501"}) ==
        frames{"501"});  // carico's, not a stock client's
  require_clean(w);
}

TEST_CASE("a stock worker at the reference 2500 ms heartbeat stays for 10 s", "[contract-v2]") {
  zmq::context_t context;
  // The broker's defaults (what users run), on fresh inproc endpoints.
  carico::broker_options options;
  options.frontend = carico::test::unique_endpoint("frontend");
  options.backend = carico::test::unique_endpoint("backend");
  carico::test::running_broker broker(context, options);
  stock_worker w(context, {.endpoint = broker.backend(), .service = "slow-beat"});
  stock_client c(context, broker.frontend());
  REQUIRE(mmi_service_until(c, "slow-beat", "200") == R"(["200"])");
  CHECK_FALSE(w.wait_for(
      [](const stock_worker_events& e) {
        return e.disconnects > 0 || e.broker_deaths > 0 || e.readies > 1;
      },
      10s));
  CHECK(w.events().heartbeats >= 3);  // the broker heartbeats it too (RFC 7)
  CHECK(c.call("slow-beat", {"still here"}, frames{"still here"}) == frames{"still here"});
  require_clean(w);
}

TEST_CASE("a stock worker has capacity 1", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_worker w(context, {.endpoint = broker.backend(), .service = "one", .auto_reply = false});
  stock_client a(context, broker.frontend());
  stock_client b(context, broker.frontend());
  REQUIRE(mmi_service_until(a, "one", "200") == R"(["200"])");
  a.send("one", {"a"});
  b.send("one", {"b"});
  REQUIRE(has_requests(w, 1));
  CHECK_FALSE(has_requests(w, 2, 500ms));  // the second stays queued meanwhile
  REQUIRE(w.release());
  REQUIRE(has_requests(w, 2));
  REQUIRE(w.release());
  std::optional<frames> ra = a.receive();
  std::optional<frames> rb = b.receive();
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK(carico::test::check_client_reply(*ra, "one", frames{"a"}) == "");
  CHECK(carico::test::check_client_reply(*rb, "one", frames{"b"}) == "");
  require_clean(w);
}

TEST_CASE("RFC 7/8 violations by a stock worker get DISCONNECT", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_client c(context, broker.frontend());

  SECTION("READY for mmi.x") {
    stock_worker w(context, {.endpoint = broker.backend(), .service = "mmi.x", .reconnect = false});
    CHECK(has_disconnect(w));
  }

  SECTION("a REPLY for a request the worker does not hold") {
    stock_worker w(context, {.endpoint = broker.backend(), .service = "stock", .reconnect = false});
    REQUIRE(mmi_service_until(c, "stock", "200") == R"(["200"])");
    REQUIRE(w.send_raw({"", "MDPW01", command_byte(3), "no-such-client", "", "x"}));
    CHECK(has_disconnect(w));
    CHECK(mmi_service_until(c, "stock", "404") == R"(["404"])");  // forgotten
  }

  SECTION("a second READY") {
    stock_worker w(context, {.endpoint = broker.backend(), .service = "stock", .reconnect = false});
    REQUIRE(mmi_service_until(c, "stock", "200") == R"(["200"])");
    REQUIRE(w.send_raw({"", "MDPW01", command_byte(1), "stock"}));
    CHECK(has_disconnect(w));
  }

  SECTION("a HEARTBEAT from a worker that never said READY") {
    zmq::socket_t raw(context, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 0);
    raw.connect(broker.backend());
    carico::test::send_frames(raw, {"", "MDPW01", command_byte(4)});
    std::optional<frames> answer = carico::test::receive_frames(raw, 3s);
    REQUIRE(answer);
    CHECK(*answer == frames{"", "MDPW01", command_byte(5)});
  }
}

TEST_CASE("a malformed stock request is dropped and the broker goes on", "[contract-v2]") {
  zmq::context_t context;
  carico::test::running_broker broker(context);
  stock_worker w(context, {.endpoint = broker.backend(), .service = "stock"});
  stock_client c(context, broker.frontend());
  REQUIRE(mmi_service_until(c, "stock", "200") == R"(["200"])");
  c.send_raw({"", "MDPC01", "stock"});  // no body frame
  CHECK_NOTHROW(c.expect_silence(300ms));
  CHECK(c.call("stock", {"after"}, frames{"after"}) == frames{"after"});
  CHECK(w.events().requests.size() == 1);
  require_clean(w);
}
