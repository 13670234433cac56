// The broker in one process: fake workers and clients speaking raw frames
// over inproc://, a 50 ms heartbeat, liveness 5.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;

namespace {



}  // namespace

TEST_CASE("three workers share nine sequential requests in strict rotation", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A", "B", "C"});

  std::string order;
  std::set<std::uint64_t> numbers;
  for (int i = 0; i < 9; ++i) {
    std::optional<client_view> r =
        client.call("text", {{"id", i}, {"title", "t"}}, "doc-" + std::to_string(i));
    REQUIRE(r);
    CHECK(r->service == "text");
    CHECK(r->code() == 200);
    CHECK(r->head["status"] == "ok");
    CHECK(r->head["id"] == i);
    CHECK(r->head["attempts"] == 1);
    CHECK(r->head["result"]["payload"] == "doc-" + std::to_string(i));
    CHECK_FALSE(r->head.contains("attempt"));
    numbers.insert(r->head["request"].get<std::uint64_t>());
    order += worker_of(*r);
  }
  CHECK(order == "ABCABCABC");
  CHECK(numbers.size() == 9);
  for (auto& w : workers) {
    std::vector<received_request> got = w->requests();
    REQUIRE(got.size() == 3);
    for (const received_request& r : got) {
      CHECK(r.attempt == 1);
      CHECK(r.head["title"] == "t");  // the client's keys are forwarded
      CHECK(numbers.count(r.number) == 1);
    }
  }
}

TEST_CASE("the broker heartbeats its workers", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});
  CHECK(workers[0]->wait_heartbeats(3, 1000ms));
  CHECK(workers[0]->invalid() == 0);
}

TEST_CASE("an overloaded worker is skipped and rejoins when ready", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A", "B", "C"});

  workers[1]->set_state(worker_state::overload);
  REQUIRE(worker_state_is(client, "B", "overload"));
  std::string order;
  for (int i = 0; i < 4; ++i) {
    std::optional<client_view> r = client.call("text", {{"id", i}}, "d");
    REQUIRE(r);
    CHECK(r->code() == 200);
    order += worker_of(*r);
  }
  CHECK(order == "ACAC");
  CHECK(workers[1]->requests().empty());

  workers[1]->set_state(worker_state::ready);
  REQUIRE(worker_state_is(client, "B", "ready"));
  order.clear();
  for (int i = 0; i < 3; ++i) {
    std::optional<client_view> r = client.call("text", {{"id", i}}, "d");
    REQUIRE(r);
    order += worker_of(*r);
  }
  CHECK(order == "ABC");
  CHECK(workers[1]->requests().size() == 1);

  SECTION("a request waits while every worker is overloaded") {
    for (auto& w : workers) w->set_state(worker_state::overload);
    for (const char* n : {"A", "B", "C"}) REQUIRE(worker_state_is(client, n, "overload"));
    fake_client other(context, broker.frontend());
    other.send("text", {{"id", "waits"}}, "d");
    CHECK(eventually([&] { return mmi_stats(client)["queued"] == 1; }));
    CHECK_FALSE(other.recv(100ms));
    workers[2]->set_state(worker_state::ready);
    std::optional<client_view> r = other.recv();
    REQUIRE(r);
    CHECK(r->head["id"] == "waits");
    CHECK(worker_of(*r) == "C");
  }
  SECTION("an unknown state counts as overload") {
    workers[0]->set_state("sleepy");
    REQUIRE(worker_state_is(client, "A", "overload"));
    order.clear();
    for (int i = 0; i < 2; ++i) {
      std::optional<client_view> r = client.call("text", {{"id", i}}, "d");
      REQUIRE(r);
      order += worker_of(*r);
    }
    CHECK(order == "BC");
  }
}

TEST_CASE("a worker that dies holding a request: another answers with attempt 2", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options dies;
  dies.silent_on_request = true;
  auto a = start_workers(context, broker, client, {"A"}, dies);
  auto b = start_workers(context, broker, client, {"B"});

  client.send("text", {{"id", "x1"}}, "doc");
  REQUIRE(a[0]->wait_requests(1));
  const received_request first = a[0]->requests()[0];
  CHECK(first.attempt == 1);

  std::optional<client_view> r = client.recv(3000ms);
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(r->head["id"] == "x1");
  CHECK(r->head["attempts"] == 2);
  CHECK(worker_of(*r) == "B");
  CHECK(r->head["request"] == first.number);
  REQUIRE(b[0]->requests().size() == 1);
  CHECK(b[0]->requests()[0].attempt == 2);
  CHECK(b[0]->requests()[0].number == first.number);
  CHECK(b[0]->requests()[0].payload == "doc");

  // The broker told the silent worker it is forgotten.
  CHECK(a[0]->wait_disconnects(1));
  CHECK(wait_for_workers(client, 1).size() == 1);

  // Its late reply is dropped: the client sees exactly one reply.
  a[0]->reply(first.number);
  CHECK(a[0]->wait_disconnects(2));  // anything but READY from a forgotten worker
  CHECK_FALSE(client.recv(200ms));

  json stats = mmi_stats(client);
  CHECK(stats["redispatched"] == 1);
  CHECK(stats["done"] == 1);
  CHECK(stats["workers"] == 1);
}

TEST_CASE("a request lost by max-attempts workers gets 504", "[broker]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.max_attempts = 2;
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());
  fake_worker_options dies;
  dies.silent_on_request = true;
  auto workers = start_workers(context, broker, client, {"A", "B"}, dies);

  client.send("text", {{"id", 5}}, "doc");
  std::optional<client_view> r = client.recv(3000ms);
  REQUIRE(r);
  CHECK(r->code() == 504);
  CHECK(r->head["status"] == "error");
  CHECK(r->head["id"] == 5);
  CHECK(r->service == "text");
  CHECK(workers[0]->requests().size() == 1);
  CHECK(workers[1]->requests().size() == 1);
  CHECK(workers[1]->requests()[0].attempt == 2);
  CHECK_FALSE(client.recv(100ms));
  json stats = mmi_stats(client);
  CHECK(stats["expired"] == 1);
  CHECK(stats["redispatched"] == 1);
}

TEST_CASE("pipelined requests of three clients come back to their own client", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client mmi(context, broker.frontend());
  fake_worker_options slow;
  slow.reply_delay = 3ms;
  auto workers = start_workers(context, broker, mmi, {"A", "B", "C"}, slow);

  constexpr int per_client = 8;
  std::vector<std::unique_ptr<fake_client>> clients;
  for (int c = 0; c < 3; ++c) clients.push_back(std::make_unique<fake_client>(context, broker.frontend()));
  for (int i = 0; i < per_client; ++i) {
    for (int c = 0; c < 3; ++c) {
      const std::string id = "c" + std::to_string(c) + "-" + std::to_string(i);
      clients[c]->send("text", {{"id", id}}, id);
    }
  }
  std::map<std::string, int> per_worker;
  for (int c = 0; c < 3; ++c) {
    std::set<std::string> ids;
    for (int i = 0; i < per_client; ++i) {
      std::optional<client_view> r = clients[c]->recv(3000ms);
      REQUIRE(r);
      CHECK(r->code() == 200);
      const std::string id = r->head["id"];
      CHECK(id.rfind("c" + std::to_string(c) + "-", 0) == 0);
      CHECK(r->head["result"]["payload"] == id);
      ids.insert(id);
      ++per_worker[worker_of(*r)];
    }
    CHECK(ids.size() == per_client);
    CHECK_FALSE(clients[c]->recv(50ms));
  }
  CHECK(per_worker.size() == 3);
}

TEST_CASE("a full queue answers 503", "[broker]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.max_queue = 2;
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());

  for (int i = 1; i <= 3; ++i) client.send("text", {{"id", i}}, "doc");
  std::optional<client_view> r = client.recv();
  REQUIRE(r);
  CHECK(r->code() == 503);
  CHECK(r->head["id"] == 3);
  CHECK(r->head["status"] == "error");
  CHECK(r->head.contains("error"));
  CHECK(r->service == "text");
  CHECK_FALSE(client.recv(100ms));

  fake_client mmi(context, broker.frontend());
  json stats = mmi_stats(mmi);
  CHECK(stats["refused"] == 1);
  CHECK(stats["queued"] == 2);

  // The two queued requests are served once a worker comes.
  auto workers = start_workers(context, broker, mmi, {"A"});
  std::set<int> ids;
  for (int i = 0; i < 2; ++i) {
    std::optional<client_view> ok = client.recv();
    REQUIRE(ok);
    CHECK(ok->code() == 200);
    ids.insert(ok->head["id"].get<int>());
  }
  CHECK(ids == std::set<int>{1, 2});
}

TEST_CASE("mmi services", "[broker][mmi]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options holds;
  holds.capacity = 2;
  auto workers = start_workers(context, broker, client, {"A"}, holds);

  SECTION("mmi.service") {
    std::optional<client_view> r = client.call("mmi.service", {{"id", 1}}, "text");
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->service == "mmi.service");
    CHECK(r->head["id"] == 1);
    CHECK(r->body == std::vector<std::string>{"200"});
    r = client.call("mmi.service", json::object(), "nope");
    REQUIRE(r);
    CHECK(r->body == std::vector<std::string>{"404"});
    // Any state counts as served.
    workers[0]->set_state(worker_state::overload);
    REQUIRE(worker_state_is(client, "A", "overload"));
    r = client.call("mmi.service", json::object(), "text");
    REQUIRE(r);
    CHECK(r->body == std::vector<std::string>{"200"});
  }
  SECTION("mmi.workers") {
    json list = wait_for_workers(client, 1);
    REQUIRE(list.size() == 1);
    const json& w = list[0];
    CHECK(w["name"] == "A");
    CHECK(w["service"] == "text");
    CHECK(w["state"] == "ready");
    CHECK(w["in_flight"] == 0);
    CHECK(w["capacity"] == 2);
    CHECK(w["pid"] == 4242);
    CHECK(w["host"] == "test-host");
  }
  SECTION("mmi.stats") {
    REQUIRE(client.call("text", {{"id", 1}}, "a"));
    workers[0]->set_auto_reply(false);
    client.send("text", {{"id", 2}}, "b");
    REQUIRE(workers[0]->wait_requests(2));
    workers[0]->reply(workers[0]->requests()[1].number, 500);
    std::optional<client_view> failed = client.recv();
    REQUIRE(failed);
    CHECK(failed->code() == 500);
    CHECK(failed->head["status"] == "error");
    CHECK(failed->head["id"] == 2);

    json stats = mmi_stats(client);
    CHECK(stats["received"] == 2);
    CHECK(stats["done"] == 1);
    CHECK(stats["failed"] == 1);
    CHECK(stats["redispatched"] == 0);
    CHECK(stats["queued"] == 0);
    CHECK(stats["workers"] == 1);
  }
  SECTION("unknown mmi. service: 501") {
    std::optional<client_view> r = client.call("mmi.x", {{"id", "q"}}, "");
    REQUIRE(r);
    CHECK(r->code() == 501);
    CHECK(r->service == "mmi.x");
    CHECK(r->head["id"] == "q");
    CHECK(r->head["status"] == "error");
    // mmi names never reach a worker.
    CHECK(workers[0]->requests().empty());
  }
}

TEST_CASE("malformed carico client messages get 400 and the broker keeps serving", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});
  const std::string map = header().encode_string();

  struct bad_case {
    std::string what;                 // description
    std::vector<std::string> frames;  // as the DEALER sends them
    std::string echoed;               // frame 2 of the 400 reply
  };
  const std::vector<bad_case> cases = {
      {"missing service", {"", sig_c}, ""},
      {"missing header", {"", sig_c, "text"}, "text"},
      {"frame 0 not empty", {"x", sig_c, "text", map, "p"}, "text"},
      {"empty service", {"", sig_c, "", map, "p"}, ""},
      {"header not msgpack", {"", sig_c, "text", "garbage", "p"}, "text"},
      {"header empty", {"", sig_c, "text", "", "p"}, "text"},
      {"header trailing bytes", {"", sig_c, "text", map + "x", "p"}, "text"},
      {"header an array", {"", sig_c, "text", "\x92\x01\x02", "p"}, "text"},
      {"header int keys", {"", sig_c, "text", "\x81\x01\x02", "p"}, "text"},
      {"three body frames", {"", sig_c, "text", map, "p", "q"}, "text"},
      {"mmi with three body frames", {"", sig_c, "mmi.stats", map, "p", "q"}, "mmi.stats"},
  };
  for (const bad_case& c : cases) {
    INFO(c.what);
    client.send_raw(c.frames);
    std::optional<std::vector<std::string>> raw = client.recv_raw();
    REQUIRE(raw);
    REQUIRE(raw->size() == 4);
    CHECK((*raw)[0].empty());
    CHECK((*raw)[1] == sig_c);
    CHECK((*raw)[2] == c.echoed);
    header_result h = header::decode((*raw)[3].data(), (*raw)[3].size());
    REQUIRE(h);
    CHECK(h.value->get_uint("code") == 400u);
    CHECK(h.value->get_string("status") == "error");
    CHECK(h.value->get_string("error").value_or("").size() > 0);

    std::optional<client_view> ok = client.call("text", {{"id", c.what}}, "d");
    REQUIRE(ok);
    CHECK(ok->code() == 200);
    CHECK(ok->head["id"] == c.what);
  }
  json stats = mmi_stats(client);
  CHECK(stats["malformed"] == cases.size());
  CHECK(stats["done"] == cases.size());
}

// MDP/0.1 has no error reply, and a message in neither client dialect is not
// a client's: each is dropped (and counted), and the broker goes on serving.
TEST_CASE("malformed stock and unsigned client messages are dropped without a reply",
          "[broker][mdp]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});
  const std::string map = header().encode_string();
  const std::vector<std::vector<std::string>> cases = {
      {""},                                        // only an empty frame
      {"hello"},                                   // no signature
      {"", "MDPC02", "text", map, "p"},            // wrong signature
      {"", sig_w, "text", map, "p"},               // a worker's signature
      {"", sig_sc, ""},                            // a stock request, empty service
      {"x", sig_sc, "text", "p"},                  // a stock request, frame 0 not empty
      {"", sig_sc, std::string(256, 's'), "p"},    // a stock request, service too long
  };
  for (const auto& frames : cases) {
    client.send_raw(frames);
    CHECK_FALSE(client.recv_raw(100ms));
    std::optional<client_view> ok = client.call("text", {{"id", 1}}, "d");
    REQUIRE(ok);
    CHECK(ok->code() == 200);
  }
  json stats = mmi_stats(client);
  CHECK(stats["malformed"] == cases.size());
}

TEST_CASE("a worker that breaks the protocol is sent DISCONNECT", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());

  SECTION("registered worker, bad command byte") {
    auto workers = start_workers(context, broker, client, {"A"});
    workers[0]->send_raw({"", sig_w, "\x09"});
    CHECK(workers[0]->wait_disconnects(1));
    CHECK(wait_for_workers(client, 0).empty());
  }
  SECTION("registered worker, bad load report") {
    auto workers = start_workers(context, broker, client, {"A"});
    workers[0]->send_raw({"", sig_w, "\x04", "\x81\xa5state\x01"});
    CHECK(workers[0]->wait_disconnects(1));
    CHECK(wait_for_workers(client, 0).empty());
  }
  SECTION("registered worker sends READY again") {
    auto workers = start_workers(context, broker, client, {"A"});
    workers[0]->send_raw({"", sig_w, "\x01", "text"});
    CHECK(workers[0]->wait_disconnects(1));
    CHECK(wait_for_workers(client, 0).empty());
  }
  SECTION("READY with bad info") {
    fake_worker_options o;
    o.endpoint = broker.backend();
    o.name = "U";
    o.send_ready = false;
    o.heartbeat = 10000ms;
    fake_worker w(context, o);
    w.send_raw({"", sig_w, "\x01", "text", header::from_json({{"capacity", "many"}}).value->encode_string()});
    CHECK(w.wait_disconnects(1));
    CHECK(wait_for_workers(client, 0).empty());
  }
  SECTION("a worker that never said READY") {
    fake_worker_options o;
    o.endpoint = broker.backend();
    o.name = "U";
    o.send_ready = false;  // heartbeats only
    fake_worker w(context, o);
    CHECK(w.wait_disconnects(1));
    CHECK(w.requests().empty());
    CHECK(wait_for_workers(client, 0).empty());
  }
  SECTION("its request goes to another worker") {
    auto a = holding_workers(context, broker, client, {"A"});
    auto b = start_workers(context, broker, client, {"B"});
    client.send("text", {{"id", 1}}, "d");
    REQUIRE(a[0]->wait_requests(1));
    a[0]->send_raw({"", sig_w, "\x03", "only-an-address"});
    CHECK(a[0]->wait_disconnects(1));
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->head["attempts"] == 2);
    CHECK(worker_of(*r) == "B");
  }
  // The broker keeps serving.
  auto spare = start_workers(context, broker, client, {"S"});
  std::optional<client_view> r = client.call("text", {{"id", "after"}}, "d");
  REQUIRE(r);
  CHECK(r->code() == 200);
}

TEST_CASE("a worker DISCONNECT re-dispatches its requests", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto a = holding_workers(context, broker, client, {"A"}, 2);
  auto b = start_workers(context, broker, client, {"B"});

  // Rotation gives A, B, A: B answers at once, A holds requests 1 and 3.
  for (int i = 1; i <= 3; ++i) client.send("text", {{"id", i}}, "d" + std::to_string(i));
  REQUIRE(a[0]->wait_requests(2));
  std::optional<client_view> first = client.recv();
  REQUIRE(first);
  CHECK(worker_of(*first) == "B");
  CHECK(first->head["id"] == 2);

  a[0]->send_disconnect();
  // Both go to the front of the queue, oldest first; B takes one at a time.
  std::vector<int> ids;
  for (int i = 0; i < 2; ++i) {
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(worker_of(*r) == "B");
    CHECK(r->head["attempts"] == 2);
    ids.push_back(r->head["id"].get<int>());
  }
  CHECK(ids == std::vector<int>{1, 3});
  CHECK_FALSE(client.recv(100ms));
  CHECK(wait_for_workers(client, 1).size() == 1);
  CHECK(a[0]->disconnects() == 0);  // it left on its own: nothing to tell it
}

TEST_CASE("a stock MDP/0.1 client on a REQ socket", "[broker][mdp]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client mmi(context, broker.frontend());
  auto workers = start_workers(context, broker, mmi, {"A"});
  fake_client req(context, broker.frontend(), zmq::socket_type::req);

  // The carico worker's reply has no payload frames: the stock client gets
  // its `result` as one frame of JSON text, and nothing else.
  for (int i = 0; i < 2; ++i) {
    req.send_plain("text", "hello-" + std::to_string(i));
    std::optional<std::vector<std::string>> raw = req.recv_raw();
    REQUIRE(raw);
    REQUIRE(raw->size() == 4);
    CHECK((*raw)[1] == sig_sc);
    CHECK((*raw)[2] == "text");
    const json result = json::parse((*raw)[3]);
    CHECK(result["payload"] == "hello-" + std::to_string(i));
    CHECK(result["worker"] == "A");
  }
  // The worker saw the broker's two keys and nothing of a client header.
  const received_request seen = workers[0]->requests().back();
  CHECK(seen.head.size() == 2);
  CHECK(seen.head.contains("request"));
  CHECK(seen.head["attempt"] == 1);
  SECTION("and mmi.service") {
    req.send_plain("mmi.service", "text");
    std::optional<std::vector<std::string>> r = req.recv_raw();
    REQUIRE(r);
    CHECK(*r == std::vector<std::string>{"", sig_sc, "mmi.service", "200"});
    req.send_plain("mmi.service", "nobody");
    r = req.recv_raw();
    REQUIRE(r);
    CHECK(*r == std::vector<std::string>{"", sig_sc, "mmi.service", "404"});
  }
  SECTION("any other mmi. name answers 501 (RFC 8)") {
    req.send_plain("mmi.stats", "");
    std::optional<std::vector<std::string>> r = req.recv_raw();
    REQUIRE(r);
    CHECK(*r == std::vector<std::string>{"", sig_sc, "mmi.stats", "501"});
  }
}

TEST_CASE("a stock MDP/0.1 worker: plain reply frames come back as frames 4...", "[broker][mdp]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.stock_heartbeat_ms = 50;  // the fake beats every 20 ms; the test need not wait 2.5 s
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());
  fake_worker_options plain;
  plain.plain_mdp = true;
  auto workers = start_workers(context, broker, client, {"P"}, plain);
  json list = wait_for_workers(client, 1);
  CHECK(list[0]["name"] == workers[0]->broker_name());
  CHECK(list[0]["capacity"] == 1);

  for (int i = 0; i < 2; ++i) {
    std::optional<client_view> r = client.call("text", {{"id", i}}, "doc" + std::to_string(i));
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->head["status"] == "ok");
    CHECK(r->head["id"] == i);
    CHECK(r->head["attempts"] == 1);
    CHECK(r->head.contains("request"));
    CHECK(worker_of(*r) == workers[0]->broker_name());
    CHECK(r->body == std::vector<std::string>{"plain:doc" + std::to_string(i), "second"});
  }
  // Bare heartbeats keep it alive.
  CHECK(workers[0]->wait_heartbeats(4));
  CHECK(wait_for_workers(client, 1).size() == 1);
  CHECK(workers[0]->disconnects() == 0);
}

TEST_CASE("a draining worker gets nothing new but its reply is delivered", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto a = holding_workers(context, broker, client, {"A"});
  auto b = start_workers(context, broker, client, {"B"});

  client.send("text", {{"id", 1}}, "held");
  REQUIRE(a[0]->wait_requests(1));
  a[0]->set_state(worker_state::drain);
  REQUIRE(worker_state_is(client, "A", "drain"));
  for (int i = 2; i <= 4; ++i) {
    std::optional<client_view> r = client.call("text", {{"id", i}}, "d");
    REQUIRE(r);
    CHECK(r->head["id"] == i);
    CHECK(worker_of(*r) == "B");
  }
  CHECK(a[0]->requests().size() == 1);

  a[0]->reply(a[0]->requests()[0].number);
  std::optional<client_view> r = client.recv();
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(r->head["id"] == 1);
  CHECK(worker_of(*r) == "A");
  CHECK(r->head["attempts"] == 1);

  a[0]->send_disconnect();
  CHECK(wait_for_workers(client, 1).size() == 1);
  CHECK(mmi_stats(client)["redispatched"] == 0);
}

TEST_CASE("a worker with capacity 2 holds two requests, the third waits", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto a = holding_workers(context, broker, client, {"A"}, 2);

  for (int i = 1; i <= 3; ++i) client.send("text", {{"id", i}}, "d");
  REQUIRE(a[0]->wait_requests(2));
  fake_client mmi(context, broker.frontend());
  CHECK(eventually([&] { return mmi_stats(mmi)["queued"] == 1; }));
  CHECK(worker_entry(mmi, "A")["in_flight"] == 2);
  CHECK(a[0]->requests().size() == 2);

  a[0]->reply(a[0]->requests()[0].number);
  REQUIRE(a[0]->wait_requests(3));
  a[0]->reply(a[0]->requests()[1].number);
  a[0]->reply(a[0]->requests()[2].number);
  std::set<int> ids;
  for (int i = 0; i < 3; ++i) {
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    ids.insert(r->head["id"].get<int>());
  }
  CHECK(ids == std::set<int>{1, 2, 3});
}

TEST_CASE("replies in any order free the worker's places one by one", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto a = holding_workers(context, broker, client, {"A"}, 3);
  fake_worker& w = *a[0];

  for (int i = 1; i <= 4; ++i) client.send("text", {{"id", i}}, "d");
  REQUIRE(w.wait_requests(3));
  fake_client mmi(context, broker.frontend());
  // The middle one first, then the newest, then the oldest: each reply frees
  // the place of its own request, wherever it is in the worker's list.
  const std::vector<std::size_t> order = {1, 2, 0};
  std::set<int> ids;
  for (std::size_t k = 0; k < order.size(); ++k) {
    w.reply(w.requests()[order[k]].number);
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->head["request"] == w.requests()[order[k]].number);
    ids.insert(r->head["id"].get<int>());
    // The freed place goes to the waiting request at once, then stays free.
    const std::size_t held = k == 0 ? 3 : 3 - k;
    CHECK(eventually([&] { return worker_entry(mmi, "A")["in_flight"] == held; }));
  }
  REQUIRE(w.wait_requests(4));
  w.reply(w.requests()[3].number);
  std::optional<client_view> last = client.recv();
  REQUIRE(last);
  ids.insert(last->head["id"].get<int>());
  CHECK(ids == std::set<int>{1, 2, 3, 4});
  CHECK(eventually([&] { return worker_entry(mmi, "A")["in_flight"] == 0; }));
}

TEST_CASE("a slow worker that keeps heartbeating is not declared dead", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options slow;
  slow.reply_delay = 600ms;  // well past liveness x heartbeat = 250 ms
  auto workers = start_workers(context, broker, client, {"A"}, slow);
  auto spare = start_workers(context, broker, client, {"B"});
  client.send("text", {{"id", 1}}, "d");
  std::optional<client_view> r = client.recv(3000ms);
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(worker_of(*r) == "A");
  CHECK(r->head["attempts"] == 1);
  CHECK(spare[0]->requests().empty());
  CHECK(workers[0]->disconnects() == 0);
}

TEST_CASE("a silent idle worker is forgotten", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});
  workers[0]->go_silent();
  CHECK(workers[0]->wait_disconnects(1));
  CHECK(wait_for_workers(client, 0).empty());
  std::optional<client_view> r = client.call("mmi.service", json::object(), "text");
  REQUIRE(r);
  CHECK(r->body == std::vector<std::string>{"404"});
}

TEST_CASE("a reply for a request the worker does not hold gets DISCONNECT (RFC 7)", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});
  std::optional<client_view> r = client.call("text", {{"id", 1}}, "d");
  REQUIRE(r);
  const std::uint64_t number = r->head["request"];
  SECTION("a second reply to a request it answered") {
    workers[0]->reply(number);
  }
  SECTION("a request it never had") {
    workers[0]->send_raw({"", sig_w, "\x03", std::to_string(number + 1000), "",
                          header::from_json({{"request", number + 1000}}).value->encode_string()});
  }
  SECTION("an address that is no token of the broker's") {
    workers[0]->send_raw({"", sig_w, "\x03", "not-a-number", "",
                          header::from_json({{"request", number}}).value->encode_string()});
  }
  CHECK_FALSE(client.recv(150ms));
  CHECK(workers[0]->wait_disconnects(1));
  CHECK(eventually([&] { return mmi_stats(client)["late_replies"] == 1; }));
  CHECK(wait_for_workers(client, 0).empty());
}

TEST_CASE("a client that leaves before its reply does not disturb the broker", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client mmi(context, broker.frontend());
  auto workers = holding_workers(context, broker, mmi, {"A"});
  {
    fake_client gone(context, broker.frontend());
    gone.send("text", {{"id", 1}}, "d");
    REQUIRE(workers[0]->wait_requests(1));
  }
  workers[0]->reply(workers[0]->requests()[0].number);
  workers[0]->set_auto_reply(true);
  std::optional<client_view> r = mmi.call("text", {{"id", 2}}, "d");
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(mmi_stats(mmi)["done"] == 2);
}

TEST_CASE("a reply from a worker already given up on counts as late", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = holding_workers(context, broker, client, {"A"});
  client.send("text", {{"id", 1}}, "doc");
  REQUIRE(workers[0]->wait_requests(1));
  workers[0]->go_silent();
  REQUIRE(eventually([&] { return mmi_stats(client)["workers_lost"] == 1; }));
  REQUIRE(workers[0]->wait_disconnects(1));  // given up on
  workers[0]->reply(workers[0]->requests()[0].number);  // too late: A is forgotten
  CHECK(workers[0]->wait_disconnects(2));
  CHECK(eventually([&] { return mmi_stats(client)["late_replies"] == 1; }));
  CHECK(mmi_stats(client)["done"] == 0);
}

TEST_CASE("a DISCONNECT from an unknown worker is answered with DISCONNECT", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options o;
  o.endpoint = broker.backend();
  o.name = "U";
  o.send_ready = false;
  o.heartbeat = 10000ms;
  fake_worker w(context, o);
  w.send_disconnect();
  CHECK(w.wait_disconnects(1));
}

TEST_CASE("each service has its own ring and queue", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options text;
  auto t = start_workers(context, broker, client, {"T1", "T2"}, text);
  fake_worker_options echo;
  echo.service = "echo";
  auto e = start_workers(context, broker, client, {"E1"}, echo);

  std::string order;
  for (int i = 0; i < 4; ++i) {
    std::optional<client_view> r = client.call(i % 2 ? "echo" : "text", {{"id", i}}, "d");
    REQUIRE(r);
    CHECK(r->service == (i % 2 ? "echo" : "text"));
    order += worker_of(*r) + " ";
  }
  CHECK(order == "T1 E1 T2 E1 ");
  // No worker for "nobody": the request waits, and the others are not blocked.
  client.send("nobody", {{"id", "lost"}}, "d");
  std::optional<client_view> r = client.call("echo", {{"id", "x"}}, "d");
  REQUIRE(r);
  CHECK(r->head["id"] == "x");
  CHECK(mmi_stats(client)["services"]["nobody"]["queued"] == 1);
}

TEST_CASE("a client that never reads costs at most client_send_hwm replies", "[broker][limits]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.client_send_hwm = 10;
  running_broker broker(context, options);
  fake_client flood(context, broker.frontend());
  fake_client watcher(context, broker.frontend());
  // mmi.service is answered at once: 3000 replies owed, none read yet. Over
  // inproc ZeroMQ adds the client's own receive HWM (1000) to the broker's 10.
  constexpr std::size_t sent = 3000;
  for (std::size_t i = 0; i < sent; ++i) flood.send("mmi.service", json{{"id", i}}, "text");
  REQUIRE(eventually([&] { return mmi_stats(watcher)["unread_dropped"] > 0; }));
  // Now read: every reply was either kept for the client or counted as dropped.
  std::size_t got = 0;
  std::size_t dropped = 0;
  std::optional<std::uint64_t> last_id;
  CHECK(eventually(
      [&] {
        while (auto r = flood.recv(10ms)) {
          ++got;
          const std::uint64_t id = r->head["id"].get<std::uint64_t>();
          if (last_id) CHECK(id > *last_id);  // what was kept arrives in order
          last_id = id;
        }
        dropped = mmi_stats(watcher)["unread_dropped"].get<std::size_t>();
        return got + dropped == sent;
      },
      10s));
  CHECK(got >= 10);
  CHECK(dropped > 0);
  // Once it reads again the client is served as before.
  auto again = flood.call("mmi.service", json{{"id", 1}}, "text");
  REQUIRE(again);
  CHECK(again->code() == 200);
}

TEST_CASE("replies to a client that is gone are dropped quietly", "[broker][limits]") {
  zmq::context_t context;
  running_broker broker(context, fast_broker_options());
  fake_worker w(context, {.endpoint = broker.backend(), .name = "w1", .auto_reply = false});
  fake_client watcher(context, broker.frontend());
  REQUIRE(wait_for_workers(watcher, 1).size() == 1);
  {
    fake_client leaving(context, broker.frontend());
    leaving.send("text", json{{"id", 1}}, "doc");
    REQUIRE(w.wait_requests(1));
  }  // the client's socket is closed before its reply exists
  std::this_thread::sleep_for(50ms);  // let ZeroMQ notice the closed pipe
  w.reply(w.requests()[0].number);
  CHECK(eventually([&] { return mmi_stats(watcher)["done"] == 1; }));
  auto still = watcher.call("mmi.service", json{{"id", 2}}, "text");
  REQUIRE(still);  // the broker is still serving
  CHECK(mmi_stats(watcher)["unread_dropped"] == 0);
}

TEST_CASE("random frames on both sockets neither crash nor stall the broker", "[broker][fuzz]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = start_workers(context, broker, client, {"A"});

  std::minstd_rand rng(7);
  auto random_bytes = [&](std::size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
  };
  const std::string map = header().encode_string();
  auto random_message = [&](const std::string& signature) {
    std::vector<std::string> frames;
    const std::size_t n = 1 + rng() % 7;
    for (std::size_t f = 0; f < n; ++f) {
      switch (rng() % 5) {
        case 0: frames.push_back(f == 0 ? "" : signature); break;
        case 1: frames.push_back(std::string(1, static_cast<char>(rng() % 7))); break;
        case 2: frames.push_back(map); break;
        default: frames.push_back(random_bytes(24));
      }
    }
    return frames;
  };
  fake_client noise(context, broker.frontend());
  zmq::socket_t backend_noise(context, zmq::socket_type::dealer);
  backend_noise.set(zmq::sockopt::linger, 0);
  backend_noise.connect(broker.backend());
  for (int i = 0; i < 500; ++i) {
    noise.send_raw(random_message(sig_c));
    std::vector<std::string> frames = random_message(sig_w);
    zmq::multipart_t out;
    for (const std::string& p : frames) out.addmem(p.data(), p.size());
    out.send(backend_noise);
  }
  // Drain the answers (400s, and 503s or nothing for accidental requests).
  std::optional<std::vector<std::string>> raw;
  while ((raw = noise.recv_raw(200ms))) {
  }
  std::optional<client_view> r = client.call("text", {{"id", "still"}}, "d");
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(r->head["id"] == "still");
}

namespace {

// A broker under test that parks the waiting requests past the first `after`.
broker_options parking(std::size_t after) {
  broker_options options = fast_broker_options();
  options.park_after = after;
  return options;
}

}  // namespace

TEST_CASE("requests past park_after wait packed and are served in arrival order", "[broker][park]") {
  zmq::context_t context;
  running_broker broker(context, parking(2));
  fake_client client(context, broker.frontend());

  // Payloads of every shape: empty, small, one kept as a frame (over 8 KiB).
  std::vector<std::string> payloads;
  for (int i = 1; i <= 12; ++i) {
    payloads.push_back(i == 5 ? std::string() : i == 7 ? std::string(20000, 'L') : "doc-" + std::to_string(i));
  }
  for (int i = 1; i <= 12; ++i) {
    json head = {{"id", i}, {"title", "t" + std::to_string(i)}};
    if (i == 9) head["request"] = 777;  // a client's own `request` is not forwarded
    client.send("text", head, payloads[i - 1]);
  }
  fake_client mmi(context, broker.frontend());
  REQUIRE(eventually([&] { return mmi_stats(mmi)["queued"] == 12; }));
  json stats = mmi_stats(mmi);
  CHECK(stats["in_flight"] == 0);
  CHECK(stats["services"]["text"]["queued"] == 12);

  // A parked request is visible to mmi.request and mmi.history like any other.
  std::optional<client_view> found = mmi.call("mmi.request", {{"of_request", 7}}, "");
  REQUIRE(found);
  REQUIRE(found->code() == 200);
  CHECK(found->head["result"]["request"] == 7);
  CHECK(found->head["result"]["state"] == "queued");
  CHECK(found->head["result"]["bytes"] == 20000);
  CHECK(found->head["result"]["title"] == "t7");
  std::optional<client_view> missing = mmi.call("mmi.request", {{"of_request", 13}}, "");
  REQUIRE(missing);
  CHECK(missing->code() == 404);
  std::optional<client_view> history = mmi.call("mmi.history", {{"last", 5}}, "");
  REQUIRE(history);
  std::vector<std::uint64_t> listed;
  for (const json& r : history->head["result"]["requests"]) listed.push_back(r["request"]);
  CHECK(listed == std::vector<std::uint64_t>{12, 11, 10, 9, 8});

  auto workers = start_workers(context, broker, mmi, {"A"});
  for (int i = 1; i <= 12; ++i) {
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->head["id"] == i);
    CHECK(r->head["request"] == i);
    CHECK(r->head["result"]["payload"] == payloads[i - 1]);
  }
  std::vector<received_request> seen = workers[0]->requests();
  REQUIRE(seen.size() == 12);
  CHECK(seen[8].number == 9);
  CHECK(seen[8].head["request"] == 9);
  CHECK(seen[8].head["attempt"] == 1);
  CHECK(seen[8].head["title"] == "t9");
  CHECK(mmi_stats(mmi)["queued"] == 0);
}

TEST_CASE("a parked keyed request sent again is executed once and answered to both", "[broker][park]") {
  zmq::context_t context;
  running_broker broker(context, parking(1));
  fake_client first(context, broker.frontend());
  fake_client second(context, broker.frontend());
  for (int i = 1; i <= 3; ++i) first.send("text", {{"client", "c1"}, {"id", i}}, "doc");
  fake_client mmi(context, broker.frontend());
  REQUIRE(eventually([&] { return mmi_stats(mmi)["queued"] == 3; }));
  first.send("text", {{"client", "c1"}, {"id", 3}}, "doc");   // the same socket: no second reply
  second.send("text", {{"client", "c1"}, {"id", 3}}, "doc");  // another socket: a waiter
  second.send("text", {{"client", "c1"}, {"id", 3}}, "doc");  // counted once
  REQUIRE(eventually([&] { return mmi_stats(mmi)["resends"] == 3; }));
  CHECK(mmi_stats(mmi)["queued"] == 3);

  auto workers = start_workers(context, broker, mmi, {"A"});
  for (int i = 1; i <= 3; ++i) {
    std::optional<client_view> r = first.recv();
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->head["id"] == i);
  }
  std::optional<client_view> again = second.recv();
  REQUIRE(again);
  CHECK(again->head["id"] == 3);
  CHECK(again->head["request"] == 3);
  CHECK_FALSE(first.recv(100ms));
  CHECK_FALSE(second.recv(50ms));
  CHECK(workers[0]->requests().size() == 3);
}

TEST_CASE("re-dispatched requests go before parked ones", "[broker][park]") {
  zmq::context_t context;
  running_broker broker(context, parking(1));
  fake_client client(context, broker.frontend());
  fake_client mmi(context, broker.frontend());
  auto lost = holding_workers(context, broker, mmi, {"A"});
  for (int i = 1; i <= 4; ++i) client.send("text", {{"id", i}}, "doc");
  REQUIRE(lost[0]->wait_requests(1));
  REQUIRE(eventually([&] { return mmi_stats(mmi)["queued"] == 3; }));
  lost[0]->send_disconnect();  // request 1 goes to the front, before the parked 2..4
  REQUIRE(eventually([&] { return mmi_stats(mmi)["redispatched"] == 1; }));
  auto workers = start_workers(context, broker, mmi, {"B"});
  for (int i = 1; i <= 4; ++i) {
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->head["id"] == i);
    CHECK(r->head["attempts"] == (i == 1 ? 2 : 1));
  }
}

namespace {

// The reply header as the broker made it before it read worker headers in
// place: the worker's header decoded, edited and encoded again.
std::string edited_reply_head(const std::string& worker_head, const std::string& id,
                              std::uint64_t number, std::string_view worker,
                              std::uint64_t attempts) {
  header_result decoded = header::decode(worker_head.data(), worker_head.size());
  header head = decoded ? std::move(*decoded.value) : header();
  std::uint64_t result_code = code::ok;
  if (const msgpack::object* c = head.find("code")) {
    result_code = c->type == msgpack::type::POSITIVE_INTEGER && c->via.u64 >= 100 && c->via.u64 < 1000
                      ? c->via.u64
                      : code::worker_failed;
  }
  head.erase("attempt");
  head.erase("id");
  head.set_encoded("id", id);
  head.set("request", number);
  head.set("code", result_code);
  head.set("status", result_code == code::ok ? "ok" : "error");
  if (result_code != code::ok && !head.contains("error")) head.set("error", "worker failed");
  head.set("worker", worker);
  head.set("attempts", attempts);
  return head.encode_string();
}

std::string packed(const json& j) {
  std::vector<std::uint8_t> bytes = json::to_msgpack(j);
  return std::string(bytes.begin(), bytes.end());
}

// The keys of an encoded map in wire order (header::to_json sorts them).
std::vector<std::string> keys_in_order(const std::string& map) {
  raw_map m;
  REQUIRE(m.parse(map.data(), map.size()));
  std::vector<std::string> out;
  for (const raw_view::entry& e : m.over(map.data())) out.emplace_back(e.key);
  return out;
}

}  // namespace

TEST_CASE("the client gets the worker's reply header with the broker's entries", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = holding_workers(context, broker, client, {"A"});
  fake_worker& w = *workers[0];

  // Each worker header has "request": 0 replaced by the request's number.
  struct reply_case {
    const char* what;
    json client_head;     // the request's header
    json worker_head;     // the reply's header, request number filled in
    std::string raw_tail; // bytes appended inside the map (its count adjusted), for odd encodings
    std::size_t raw_entries = 0;
  };
  std::vector<reply_case> cases = {
      {"the usual reply", {{"id", 7}}, {{"request", 0}, {"code", 200}, {"status", "ok"}}, "", 0},
      {"no client id", json::object(), {{"request", 0}, {"code", 200}}, "", 0},
      {"a string id, a result", {{"id", "abc"}},
       {{"request", 0}, {"result", {{"count_a", 3}, {"stored_as", "x"}}}}, "", 0},
      {"the worker sets the broker's keys itself", {{"id", 1}},
       {{"status", "mine"}, {"attempt", 3}, {"id", "w"}, {"worker", "spoof"}, {"attempts", 9},
        {"extra", {1, 2}}, {"error", "x"}, {"code", 200}, {"request", 0}},
       "", 0},
      {"code 404 without error", {{"id", 2}}, {{"request", 0}, {"code", 404}}, "", 0},
      {"code 500 with an error", {{"id", 2}}, {{"request", 0}, {"code", 500}, {"error", "disk"}}, "", 0},
      {"code not a number", {{"id", 3}}, {{"request", 0}, {"code", "bad"}}, "", 0},
      {"code 99", {{"id", 3}}, {{"request", 0}, {"code", 99}}, "", 0},
      {"code 1000", {{"id", 3}}, {{"request", 0}, {"code", 1000}}, "", 0},
      {"code negative", {{"id", 3}}, {{"request", 0}, {"code", -200}}, "", 0},
      {"code as a float", {{"id", 3}}, {{"request", 0}, {"code", 200.0}}, "", 0},
      // {"code": 200 as int16}: a positive integer to msgpack-c.
      {"code in a signed encoding", {{"id", 4}}, {{"request", 0}}, std::string("\xa4" "code\xd1\x00\xc8", 8), 1},
      // {"code": 404} after {"code": 200}: the last one wins (header::decode's path).
      {"a repeated key", {{"id", 5}}, {{"request", 0}, {"code", 200}}, std::string("\xa4" "code\xcd\x01\x94", 8), 1},
      // An ext value: left to header::decode, passed through.
      {"an ext value", {{"id", 6}}, {{"request", 0}}, std::string("\xa1q\xd4\x01\x02", 5), 1},
  };
  json many = {{"request", 0}};
  for (int i = 0; i < 40; ++i) many["k" + std::to_string(i)] = i;
  cases.push_back({"more entries than raw_map reads", {{"id", 8}}, many, "", 0});

  std::size_t received = 0;
  for (const reply_case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      client.send("text", c.client_head, "p");
      REQUIRE(w.wait_requests(++received));
      const received_request got = w.requests().back();
      json head = c.worker_head;
      head["request"] = got.number;
      std::string bytes = packed(head);
      if (!c.raw_tail.empty()) {
        // nlohmann writes maps under 16 entries as a fixmap: bump its count.
        REQUIRE((static_cast<unsigned char>(bytes[0]) & 0xf0) == 0x80);
        bytes[0] = static_cast<char>(bytes[0] + c.raw_entries);
        bytes += c.raw_tail;
      }
      w.send_raw({"", sig_w, "\x03", got.address, "", bytes, "body"});
      std::optional<std::vector<std::string>> raw = client.recv_raw();
      REQUIRE(raw);
      REQUIRE(raw->size() == 5);
      CHECK((*raw)[4] == "body");
      const std::string id = c.client_head.contains("id") ? packed(c.client_head["id"]) : "";
      const std::string expected = edited_reply_head(bytes, id, got.number, "A", 1);
      INFO("reply header " << hex_id((*raw)[3]) << ", before: " << hex_id(expected));
      header_result mine = header::decode((*raw)[3].data(), (*raw)[3].size());
      header_result theirs = header::decode(expected.data(), expected.size());
      REQUIRE(mine);
      REQUIRE(theirs);
      CHECK(mine.value->to_json() == theirs.value->to_json());
      // The same keys in the same order (where raw_map reads the map)...
      if (raw_map().parse(expected.data(), expected.size())) {
        CHECK(keys_in_order((*raw)[3]) == keys_in_order(expected));
      }
      // ... and the same bytes: every value the worker sent was minimally encoded.
      CHECK((*raw)[3] == expected);
    }
  }
}

// At warn, with no journal, the broker reads a client's header in place
// (header_mode::keep_raw) and decodes it only for a key or an error reply: the
// same frames must come out as on the decoded path the other tests take.
TEST_CASE("with info logging off, a client's header read in place gives the same results",
          "[broker]") {
  zmq::context_t context;
  auto quiet =
      std::make_shared<spdlog::logger>("quiet", std::make_shared<spdlog::sinks::null_sink_mt>());
  quiet->set_level(spdlog::level::warn);
  broker_options options = fast_broker_options();
  options.max_payload_bytes = 16;
  options.max_queue = 1;
  running_broker broker(context, options, quiet);
  fake_client client(context, broker.frontend());
  auto workers = holding_workers(context, broker, client, {"A"});
  fake_worker& w = *workers[0];

  SECTION("request and attempt are the broker's; id and the rest go through") {
    client.send("text", {{"id", "abc"}, {"request", 7}, {"attempt", 2}, {"n", 1}}, "doc");
    REQUIRE(w.wait_requests(1));
    const received_request got = w.requests().back();
    CHECK(got.number != 7);
    CHECK(got.attempt == 1);
    CHECK(got.head["id"] == "abc");
    CHECK(got.head["n"] == 1);
    w.reply(got.number);
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->code() == 200);
    CHECK(r->head["id"] == "abc");
    CHECK(r->head["request"] == got.number);
  }
  SECTION("a plain header goes to the worker as it came, plus request and attempt") {
    client.send("text", {{"id", 5}, {"title", "t"}}, "doc");
    REQUIRE(w.wait_requests(1));
    const received_request got = w.requests().back();
    CHECK(got.head == json({{"id", 5}, {"title", "t"}, {"request", got.number}, {"attempt", 1}}));
    w.reply(got.number);
    std::optional<client_view> r = client.recv();
    REQUIRE(r);
    CHECK(r->head["id"] == 5);
  }
  SECTION("a keyed request is still deduplicated") {
    client.send("text", {{"client", "c1"}, {"id", 9}}, "doc");
    REQUIRE(w.wait_requests(1));
    w.reply(w.requests().back().number);
    std::optional<client_view> first = client.recv();
    REQUIRE(first);
    client.send("text", {{"client", "c1"}, {"id", 9}}, "doc");
    std::optional<client_view> again = client.recv();
    REQUIRE(again);
    CHECK(again->head["id"] == 9);
    CHECK(again->head["request"] == first->head["request"]);
    CHECK(w.requests().size() == 1);
  }
  SECTION("error replies carry the id") {
    client.send("text", {{"id", 11}}, "a payload over sixteen bytes");
    std::optional<client_view> big = client.recv();
    REQUIRE(big);
    CHECK(big->code() == 413);
    CHECK(big->head["id"] == 11);
    client.send("text", {{"id", 12}}, "held");    // the worker holds it
    REQUIRE(w.wait_requests(1));
    client.send("text", {{"id", 13}}, "queued");  // the queue's one place
    client.send("text", {{"id", 14}}, "refused");
    std::optional<client_view> full = client.recv();
    REQUIRE(full);
    CHECK(full->code() == 503);
    CHECK(full->head["id"] == 14);
  }
}

// The broker reads the clock once per receive batch (mark_batch): a request's
// times must still be those of the turn that handled it, even after the loop
// slept, and not the time of some earlier turn.
TEST_CASE("a request's times are those of the batch that handled it", "[broker]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.heartbeat_ms = 2000;  // no tick, and so no turn, while the test waits
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());
  fake_worker_options quiet;
  quiet.auto_reply = false;
  quiet.heartbeat = 1000ms;
  auto workers = start_workers(context, broker, client, {"A"}, quiet);
  fake_worker& w = *workers[0];

  std::this_thread::sleep_for(300ms);  // the loop sleeps; its last clock reading ages
  const std::int64_t before = unix_ms();
  client.send("text", {{"id", 1}}, "d");
  REQUIRE(w.wait_requests(1));
  const std::int64_t after = unix_ms();
  std::optional<client_view> found =
      client.call("mmi.request", {{"of_request", w.requests()[0].number}}, "");
  REQUIRE(found);
  const json record = found->head["result"];
  INFO(record.dump());
  CHECK(record["received_ms"].get<std::int64_t>() >= before);
  CHECK(record["received_ms"].get<std::int64_t>() <= after);
  CHECK(record["dispatched_ms"].get<std::int64_t>() >= record["received_ms"].get<std::int64_t>());
  CHECK(record["dispatched_ms"].get<std::int64_t>() <= after);
  CHECK(record["age_ms"].get<std::int64_t>() <= after - before + 50);
}
