// Contract v2's deadlines and worker intervals: a request waits at most its
// timeout_ms (or the broker's queue timeout) and is never dispatched after it;
// a carico worker's 503 is given to another worker; each worker is held to the
// interval it announced; services nobody uses any more are forgotten.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "shared/codec.hpp"
#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;

TEST_CASE("a request past its timeout_ms is answered 504 and never dispatched", "[expiry]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());

  const time_point sent = clock::now();
  client.send("late", {{"id", 1}, {"timeout_ms", 150}}, "doc");
  std::optional<client_view> r = client.recv(2000ms);
  REQUIRE(r);
  const auto waited = std::chrono::duration_cast<milliseconds>(clock::now() - sent);
  CHECK(r->code() == 504);
  CHECK(r->head["id"] == 1);
  CHECK(r->head["attempts"] == 0);
  CHECK_THAT(r->head["error"].get<std::string>(), Catch::Contains("within 150 ms"));
  CHECK(waited >= 140ms);
  CHECK(waited < 1000ms);

  // A worker for the service joins afterwards: it is given nothing.
  auto workers = start_workers(context, broker, client, {"L"}, [] {
    fake_worker_options o;
    o.service = "late";
    return o;
  }());
  CHECK_FALSE(workers[0]->wait_requests(1, 300ms));
  CHECK(mmi_stats(client)["expired"] == 1);
}

TEST_CASE("without timeout_ms the broker's queue timeout applies, to stock clients too",
          "[expiry][mdp]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.queue_timeout_ms = 200;
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());
  fake_client stock(context, broker.frontend());

  client.send("nobody", {{"id", 7}}, "doc");
  stock.send_plain("nobody", "doc");
  std::optional<client_view> r = client.recv(2000ms);
  REQUIRE(r);
  CHECK(r->code() == 504);
  // MDP/0.1 has no error reply: the stock client hears nothing, and it is counted.
  CHECK_FALSE(stock.recv_raw(300ms));
  json stats = mmi_stats(client);
  CHECK(stats["expired"] == 2);
  CHECK(stats["mdp_dropped"] == 1);
}

TEST_CASE("a keyed request that expired unseen is not remembered: a resend is new",
          "[expiry]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  const json head = {{"id", 3}, {"client", "c1"}, {"timeout_ms", 100}};
  std::optional<client_view> first = client.call("later", head, "doc");
  REQUIRE(first);
  CHECK(first->code() == 504);

  fake_worker_options o;
  o.service = "later";
  auto workers = start_workers(context, broker, client, {"W"}, o);
  json again = head;
  again["timeout_ms"] = 2000;
  std::optional<client_view> second = client.call("later", again, "doc");
  REQUIRE(second);
  CHECK(second->code() == 200);
  CHECK(second->head["request"] != first->head["request"]);
  CHECK(workers[0]->requests().size() == 1);
}

TEST_CASE("a re-dispatched request keeps its first deadline", "[expiry]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  fake_worker_options silent;
  silent.silent_on_request = true;  // takes the request, then falls silent: lost
  auto workers = start_workers(context, broker, client, {"S"}, silent);
  client.send("text", {{"id", 1}, {"timeout_ms", 200}}, "doc");
  REQUIRE(workers[0]->wait_requests(1));
  // Lost after its deadline (liveness 5 x 50 ms): it is not queued again but answered 504.
  std::optional<client_view> r = client.recv(3000ms);
  REQUIRE(r);
  CHECK(r->code() == 504);
  CHECK(r->head["attempts"] == 1);
}

TEST_CASE("a carico worker's 503 is given to another worker, never forwarded", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client client(context, broker.frontend());
  auto workers = holding_workers(context, broker, client, {"A", "B"});

  client.send("text", {{"id", 1}}, "doc");
  REQUIRE(workers[0]->wait_requests(1));
  const received_request first = workers[0]->requests()[0];
  workers[0]->reply(first.number, code::queue_full);  // not executed here
  REQUIRE(workers[1]->wait_requests(1));
  const received_request second = workers[1]->requests()[0];
  CHECK(second.number == first.number);
  CHECK(second.attempt == 2);
  CHECK_FALSE(client.recv(100ms));  // the 503 did not reach the client
  workers[1]->reply(second.number);
  std::optional<client_view> r = client.recv();
  REQUIRE(r);
  CHECK(r->code() == 200);
  CHECK(worker_of(*r) == "B");
  CHECK(r->head["attempts"] == 2);
  CHECK(workers[0]->disconnects() == 0);  // a 503 is no protocol error

  SECTION("answered 503 by every worker it may try: 504, out of attempts") {
    client.send("text", {{"id", 2}}, "doc");
    // Round robin: A, B, then A again (each already had request 1).
    const std::size_t seen[] = {2, 2, 3};
    for (std::size_t attempt = 0; attempt < 3; ++attempt) {
      fake_worker& w = attempt % 2 == 0 ? *workers[0] : *workers[1];
      REQUIRE(w.wait_requests(seen[attempt]));
      CHECK(w.requests().back().attempt == attempt + 1);
      w.reply(w.requests().back().number, code::queue_full);
    }
    std::optional<client_view> out = client.recv();
    REQUIRE(out);
    CHECK(out->code() == 504);
    CHECK(out->head["attempts"] == 3);
    CHECK_THAT(out->head["error"].get<std::string>(), Catch::Contains("out of attempts"));
  }
}

TEST_CASE("a carico worker is held to the heartbeat_ms it announced", "[broker]") {
  zmq::context_t context;
  running_broker broker(context);  // 50 ms x liveness 5: 250 ms for workers that say nothing
  fake_client client(context, broker.frontend());
  fake_worker_options slow;
  slow.announce_heartbeat_ms = 400;
  slow.heartbeat = 300ms;  // beats slower than the broker's own 250 ms of liveness
  auto workers = start_workers(context, broker, client, {"SLOW"}, slow);

  json entry = worker_entry(client, "SLOW");
  CHECK(entry["heartbeat_ms"] == 400);
  CHECK(entry["dialect"] == "carico");
  const std::size_t before = workers[0]->heartbeats();
  std::this_thread::sleep_for(1200ms);
  CHECK(workers[0]->disconnects() == 0);
  CHECK_FALSE(worker_entry(client, "SLOW").is_null());
  // The broker beats it at its interval too: about 3 in 1.2 s, not 24.
  const std::size_t beats = workers[0]->heartbeats() - before;
  CHECK(beats >= 2);
  CHECK(beats <= 5);
}

TEST_CASE("services nobody serves or waits for are forgotten; workers always join",
          "[broker]") {
  zmq::context_t context;
  broker_options options = fast_broker_options();
  options.max_services = 20;
  running_broker broker(context, options);
  fake_client client(context, broker.frontend());

  for (int i = 0; i < 20; ++i) {
    client.send("unserved-" + std::to_string(i), {{"id", i}, {"timeout_ms", 100}}, "d");
  }
  // Over the cap while those wait: refused, and a worker may still join.
  std::optional<client_view> refused = client.call("one-too-many", {{"id", 99}}, "d");
  REQUIRE(refused);
  CHECK(refused->code() == 503);
  fake_worker_options o;
  o.service = "fresh";
  auto workers = start_workers(context, broker, client, {"F"}, o);
  int expired = 0;
  for (int i = 0; i < 20; ++i) {
    std::optional<client_view> r = client.recv(2000ms);
    REQUIRE(r);
    if (r->code() == 504) ++expired;
  }
  CHECK(expired == 20);
  CHECK(eventually([&] { return mmi_stats(client)["services_known"] == 1; }));
  std::optional<client_view> served = client.call("fresh", {{"id", 100}}, "d");
  REQUIRE(served);
  CHECK(served->code() == 200);
  // mmi.stats stays answerable and small however many names were used.
  json stats = mmi_stats(client);
  CHECK(stats["services"].size() == 1);
}

TEST_CASE("5000 requests for services nobody serves: all 504 quickly, then a worker joins",
          "[broker][expiry]") {
  zmq::context_t context;
  running_broker broker(context);  // default caps: 10000 services
  fake_client client(context, broker.frontend());
  constexpr int n = 5000;
  const time_point start = clock::now();
  for (int i = 0; i < n; ++i) {
    client.send("nobody-" + std::to_string(i), {{"id", i}, {"timeout_ms", 200}}, "d");
  }
  int expired = 0;
  for (int i = 0; i < n; ++i) {
    std::optional<client_view> r = client.recv(5000ms);
    REQUIRE(r);
    if (r->code() == 504) ++expired;
  }
  CHECK(expired == n);
  INFO("all answered in " << std::chrono::duration_cast<milliseconds>(clock::now() - start).count()
                          << " ms");
  // Forgotten, and mmi.stats answerable with all of them gone.
  CHECK(eventually([&] { return mmi_stats(client)["services_known"] == 0; }));
  fake_worker_options o;
  o.service = "new-service";
  auto workers = start_workers(context, broker, client, {"N"}, o);
  std::optional<client_view> served = client.call("new-service", {{"id", "x"}}, "d");
  REQUIRE(served);
  CHECK(served->code() == 200);
}
