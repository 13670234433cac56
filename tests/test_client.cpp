// carico::client against a fake broker (a ROUTER on inproc:// driven by the
// test thread), against the real broker with fake workers, and the pieces of
// carico-client: documents, batch_sender, report formatting.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "client/batch_sender.hpp"
#include "client/client.hpp"
#include "client/document.hpp"
#include "client/mmi_report.hpp"
#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A request as the fake broker saw it.
struct seen_request {
  std::string routing_id;  // the client's DEALER
  std::string service;     // frame 2
  json head;               // frame 3
  std::string payload;     // frame 4
};

// The broker side of the contract, by hand: a ROUTER the test thread drives.
class fake_broker {
 public:
  // endpoint: where to bind (a restarted broker binds where the first was);
  // empty for a fresh inproc one.
  explicit fake_broker(zmq::context_t& context, int rcvhwm = 1000, std::string endpoint = "")
      : endpoint_(endpoint.empty() ? unique_endpoint("client-broker") : std::move(endpoint)),
        router_(context, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::rcvhwm, rcvhwm);
    // ZeroMQ closes a socket's listener in the background: a broker restarted
    // on the same tcp port may find it still taken for a moment.
    for (int tries = 0;; ++tries) {
      try {
        router_.bind(endpoint_);
        break;
      } catch (const zmq::error_t& e) {
        if (e.num() != EADDRINUSE || tries >= 200) throw;
        std::this_thread::sleep_for(10ms);
      }
    }
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next request, or nothing within timeout. Fails the test on a message
  // that does not follow the contract.
  std::optional<seen_request> recv(milliseconds timeout = 2000ms) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, timeout);
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::multipart_t frames(router_);
    REQUIRE(frames.size() == 6);
    seen_request r;
    r.routing_id = frames.popstr();
    zmq::multipart_t rest;
    while (!frames.empty()) rest.add(frames.pop());
    auto decoded = decode_client_request(std::move(rest));
    REQUIRE(decoded);
    REQUIRE(decoded->from == dialect::carico);
    r.service = decoded->service;
    r.head = decoded->head.to_json();
    r.payload = decoded->payload.to_string();
    return r;
  }

  // Receives exactly n requests (each within the timeout).
  std::vector<seen_request> recv_n(std::size_t n, milliseconds timeout = 2000ms) {
    std::vector<seen_request> out;
    while (out.size() < n) {
      auto r = recv(timeout);
      REQUIRE(r);
      out.push_back(std::move(*r));
    }
    return out;
  }

  // Answers r per the contract: its id echoed, code, a result echoing the payload.
  void answer(const seen_request& r, std::uint64_t code = 200,
              std::vector<std::string> body = {}) {
    json head = {{"id", r.head["id"]},
                 {"code", code},
                 {"status", code == 200 ? "ok" : "error"},
                 {"request", next_request_++},
                 {"worker", "w1"},
                 {"attempts", 1},
                 {"result", {{"echo", r.payload}, {"count_a", 3}}}};
    if (code != 200) head["error"] = "failed on purpose";
    std::vector<std::string> frames = {"", sig_c, r.service, encode_json_header(head)};
    for (std::string& b : body) frames.push_back(std::move(b));
    send_raw(r.routing_id, frames);
  }

  // Exactly these frames to the client at routing_id.
  void send_raw(const std::string& routing_id, const std::vector<std::string>& frames) {
    zmq::multipart_t out;
    out.addstr(routing_id);
    for (const std::string& f : frames) out.addmem(f.data(), f.size());
    REQUIRE(out.send(router_));
  }

 private:
  std::string endpoint_;           // endpoint the client connects to
  zmq::socket_t router_;           // the frontend
  std::uint64_t next_request_{1};  // `request` of the next answer
};

// No resends (retries 0): these tests are about one attempt and its timeout.
client_options options_for(const fake_broker& broker, long timeout_ms = 5000) {
  client_options o;
  o.endpoint = broker.endpoint();
  o.name = "tester";
  o.timeout_ms = timeout_ms;
  o.retries = 0;
  return o;
}

bool ready(std::future<reply>& f, milliseconds wait = 2000ms) {
  return f.wait_for(wait) == std::future_status::ready;
}

// A scratch folder removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() /
           ("carico-test-client-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("client: pipelined requests are matched to their futures in any order") {
  zmq::context_t context;
  fake_broker broker(context);
  client c(context, options_for(broker));

  constexpr std::size_t n = 50;
  std::vector<std::future<reply>> futures;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string number = std::to_string(i);
    futures.push_back(c.submit("text", {{"title", "t" + number}}, "doc-" + number));
  }
  std::vector<seen_request> seen = broker.recv_n(n);
  CHECK(c.outstanding() == n);

  std::set<std::uint64_t> ids;
  for (const seen_request& r : seen) {
    CHECK(r.service == "text");
    CHECK(r.head["client"] == "tester");
    REQUIRE(r.head["id"].is_number_unsigned());
    ids.insert(r.head["id"].get<std::uint64_t>());
    CHECK(r.head["title"] == "t" + r.payload.substr(4));
  }
  CHECK(ids.size() == n);

  // Answer in reverse order, interleaving evens first.
  for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
    if (std::stoi(it->payload.substr(4)) % 2 == 0) broker.answer(*it);
  }
  for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
    if (std::stoi(it->payload.substr(4)) % 2 == 1) broker.answer(*it);
  }
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(ready(futures[i]));
    reply r = futures[i].get();
    CHECK(r.code == 200);
    CHECK(r.ok());
    CHECK_FALSE(r.local);
    CHECK(r.head["result"]["echo"] == "doc-" + std::to_string(i));
    CHECK(r.head["worker"] == "w1");
    CHECK(r.latency.count() > 0);
  }
  CHECK(c.outstanding() == 0);
  CHECK(c.counters().replies == n);
  CHECK(c.counters().sent == n);
}

TEST_CASE("client: a caller's id and client are kept - body frames come back") {
  zmq::context_t context;
  fake_broker broker(context);
  client c(context, options_for(broker));

  auto f = c.submit("mmi.service", {{"id", "abc"}, {"client", "me"}}, "text");
  auto r = broker.recv();
  REQUIRE(r);
  CHECK(r->head["id"] == "abc");
  CHECK(r->head["client"] == "me");
  CHECK(r->payload == "text");

  SECTION("a second request with an outstanding id is refused locally") {
    auto dup = c.submit("text", {{"id", "abc"}}, "x");
    REQUIRE(ready(dup));
    reply d = dup.get();
    CHECK(d.code == 400);
    CHECK(d.local);
    CHECK(d.error().find("already outstanding") != std::string::npos);
  }

  broker.answer(*r, 200, {"200", "second"});
  REQUIRE(ready(f));
  reply got = f.get();
  CHECK(got.code == 200);
  CHECK(got.head["id"] == "abc");
  CHECK(got.body == std::vector<std::string>{"200", "second"});

  SECTION("a header that is not an object is refused locally") {
    auto bad = c.submit("text", json::array({1, 2}), "x");
    REQUIRE(ready(bad));
    CHECK(bad.get().code == 400);
  }
}

TEST_CASE("client: a request without a reply times out with 504 - the late reply is dropped") {
  zmq::context_t context;
  fake_broker broker(context);
  client c(context, options_for(broker));

  const time_point start = clock::now();
  auto f = c.submit("text", json::object(), "slow", 100ms);
  auto r = broker.recv();
  REQUIRE(r);
  REQUIRE(ready(f));
  reply timed_out = f.get();
  CHECK(clock::now() - start >= 100ms);
  CHECK(timed_out.code == 504);
  CHECK(timed_out.local);
  CHECK(timed_out.error() == "timeout: no reply from broker in 100 ms");
  CHECK(timed_out.head["id"] == r->head["id"]);
  CHECK(timed_out.latency >= 100ms);
  CHECK(c.counters().timeouts == 1);

  broker.answer(*r);  // too late
  auto next = c.submit("text", json::object(), "fast");
  auto r2 = broker.recv();
  REQUIRE(r2);
  broker.answer(*r2);
  REQUIRE(ready(next));
  reply ok = next.get();
  CHECK(ok.code == 200);
  CHECK(ok.head["result"]["echo"] == "fast");
  CHECK(eventually([&] { return c.counters().late == 1; }));
  CHECK(c.counters().replies == 1);
}

TEST_CASE("client: malformed broker replies are dropped and the client goes on") {
  zmq::context_t context;
  fake_broker broker(context);
  client c(context, options_for(broker));

  auto f = c.submit("text", json::object(), "doc");
  auto r = broker.recv();
  REQUIRE(r);
  const std::string good_head = encode_json_header({{"id", r->head["id"]}, {"code", 200}});
  const std::string trailing = good_head + "x";
  const std::vector<std::vector<std::string>> malformed = {
      {""},                                                  // no signature
      {"", sig_c},                                           // no service, no header
      {"", "MDPC02", "text", good_head},                     // wrong signature
      {"junk", sig_c, "text", good_head},                    // frame 0 not empty
      {"", sig_c, "text"},                                   // no header
      {"", sig_c, "text", "\xc1\xc1 not msgpack"},           // not MessagePack
      {"", sig_c, "text", encode_json_header(json::object()) + "\x93"},  // map + trailing bytes
      {"", sig_c, "text", trailing},                         // trailing bytes
      {"", sig_c, "text", std::string("\x92\x01\x02", 3)},   // an array, not a map
      {"", sig_c, "text", encode_json_header({{"code", 200}})},      // no id: cannot be matched
      {"", std::string(client_signature), "text", good_head},  // a stock reply: not ours
  };
  for (const auto& frames : malformed) broker.send_raw(r->routing_id, frames);
  broker.send_raw(r->routing_id, {"", sig_c, "text", encode_json_header({{"id", 999999}, {"code", 200}})});
  CHECK(f.wait_for(100ms) == std::future_status::timeout);
  broker.answer(*r);
  REQUIRE(ready(f));
  reply got = f.get();
  CHECK(got.code == 200);
  CHECK(got.head["result"]["echo"] == "doc");
  CHECK(c.counters().malformed == malformed.size());
  CHECK(c.counters().late == 1);

  SECTION("a reply without a code is taken as a failure") {
    auto g = c.submit("text", json::object(), "doc2");
    auto r2 = broker.recv();
    REQUIRE(r2);
    broker.send_raw(r2->routing_id, {"", sig_c, "text", encode_json_header({{"id", r2->head["id"]}})});
    REQUIRE(ready(g));
    CHECK(g.get().code == 500);
  }
}

TEST_CASE("client: callbacks run once per request, a throwing one harms nothing") {
  zmq::context_t context;
  fake_broker broker(context);
  client c(context, options_for(broker));

  std::mutex mutex;
  std::map<std::string, int> calls;  // payload echoed -> times called
  std::atomic<int> done{0};
  constexpr int n = 20;
  for (int i = 0; i < n; ++i) {
    c.submit("text", json::object(), "cb-" + std::to_string(i), [&](reply r) {
      std::lock_guard lock(mutex);
      ++calls[r.head["result"]["echo"].get<std::string>()];
      ++done;
      if (r.head["result"]["echo"] == "cb-0") throw std::runtime_error("callback failure");
    });
  }
  for (const seen_request& r : broker.recv_n(n)) broker.answer(r);
  REQUIRE(eventually([&] { return done.load() == n; }));
  {
    std::lock_guard lock(mutex);
    CHECK(calls.size() == static_cast<std::size_t>(n));
    for (const auto& [payload, times] : calls) CHECK(times == 1);
  }

  // The loop survived the throwing callback; a callback may submit again.
  std::promise<reply> second;
  c.submit("text", json::object(), "first", [&](reply) {
    c.submit("text", json::object(), "second", [&](reply r) { second.set_value(std::move(r)); });
  });
  auto r1 = broker.recv();
  REQUIRE(r1);
  broker.answer(*r1);
  auto r2 = broker.recv();
  REQUIRE(r2);
  CHECK(r2->payload == "second");
  broker.answer(*r2);
  auto f = second.get_future();
  REQUIRE(ready(f));
  CHECK(f.get().code == 200);
}

TEST_CASE("client: close() completes every outstanding request with 503") {
  zmq::context_t context;
  fake_broker broker(context);

  SECTION("close()") {
    client c(context, options_for(broker));
    std::vector<std::future<reply>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(c.submit("text", json::object(), "x"));
    broker.recv_n(10);
    c.close();
    for (auto& f : futures) {
      REQUIRE(f.wait_for(0ms) == std::future_status::ready);
      reply r = f.get();
      CHECK(r.code == 503);
      CHECK(r.local);
      CHECK(r.error() == "client closed");
    }
    CHECK(c.outstanding() == 0);
    auto after = c.submit("text", json::object(), "late");
    REQUIRE(after.wait_for(0ms) == std::future_status::ready);
    CHECK(after.get().code == 503);
    c.close();  // idempotent
  }

  SECTION("the destructor") {
    std::vector<std::future<reply>> futures;
    {
      client c(context, options_for(broker));
      for (int i = 0; i < 5; ++i) futures.push_back(c.submit("text", json::object(), "x"));
    }
    for (auto& f : futures) {
      REQUIRE(f.wait_for(0ms) == std::future_status::ready);
      CHECK(f.get().code == 503);
    }
  }
}

TEST_CASE("client: with retries an unanswered request is sent again with the same id") {
  zmq::context_t context;
  fake_broker broker(context);
  client_options o = options_for(broker, 100);
  o.retries = 2;
  client c(context, o);

  auto f = c.submit("text", json::object(), "again");
  auto first = broker.recv();
  auto second = broker.recv();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(second->head["id"] == first->head["id"]);
  CHECK(second->head["client"] == first->head["client"]);
  CHECK(second->payload == "again");
  broker.answer(*second);
  REQUIRE(ready(f));
  CHECK(f.get().code == 200);
  CHECK(c.counters().resends == 1);
  broker.answer(*first);  // the duplicate answer is dropped
  CHECK(eventually([&] { return c.counters().late == 1; }));
}

TEST_CASE("client: a broker restarted on its endpoint gets every unanswered request at once") {
  zmq::context_t context;
  const std::string endpoint = free_tcp_endpoint();
  auto broker = std::make_unique<fake_broker>(context, 1000, endpoint);
  client_options o;
  o.endpoint = endpoint;
  o.name = "phoenix";
  o.timeout_ms = 30000;  // the resend must not wait for it
  client c(context, o);  // default retries
  REQUIRE(o.retries > 0);

  auto warm = c.submit("text", json::object(), "warm");
  auto first = broker->recv();
  REQUIRE(first);
  broker->answer(*first);
  REQUIRE(ready(warm));

  auto one = c.submit("text", json::object(), "one");
  auto two = c.submit("text", json::object(), "two");
  std::set<json> ids;
  for (const seen_request& r : broker->recv_n(2)) ids.insert(r.head["id"]);
  broker.reset();  // dies with both unanswered
  std::this_thread::sleep_for(300ms);  // the client sees the connection go
  // Sent while the broker is down: it goes when the broker is back.
  auto three = c.submit("text", json::object(), "three");
  std::this_thread::sleep_for(100ms);
  const time_point restarted = clock::now();
  broker = std::make_unique<fake_broker>(context, 1000, endpoint);

  // Each unanswered request arrives again (a copy ZeroMQ still held when the
  // connection went may arrive too: the broker's (client, id) key makes a
  // duplicate harmless, and the client drops its second reply).
  std::set<json> ids_again;
  std::set<std::string> payloads;
  while (payloads.size() < 3) {
    auto r = broker->recv(5000ms);
    REQUIRE(r);
    CHECK(r->head["client"] == "phoenix");
    payloads.insert(r->payload);
    if (r->payload != "three") ids_again.insert(r->head["id"]);
    broker->answer(*r);
  }
  CHECK(ids_again == ids);
  for (auto* f : {&one, &two, &three}) {
    REQUIRE(ready(*f, 5000ms));
    CHECK(f->get().code == 200);
  }
  CHECK(clock::now() - restarted < 5s);  // not at the 30 s timeout
  CHECK(c.counters().reconnects >= 1);
  CHECK(c.counters().resends >= 2);
  CHECK(c.counters().timeouts == 0);
}

TEST_CASE("client: with several endpoints, the broker that takes over gets every unanswered request") {
  zmq::context_t context;
  const std::string first_endpoint = free_tcp_endpoint();
  const std::string second_endpoint = free_tcp_endpoint();
  auto active = std::make_unique<fake_broker>(context, 1000, first_endpoint);
  client_options o;
  o.endpoint = first_endpoint + ", " + second_endpoint;  // the second binds nothing yet: a standby
  o.name = "follower";
  o.timeout_ms = 30000;
  client c(context, o);
  CHECK(c.endpoints() == std::vector<std::string>{first_endpoint, second_endpoint});

  auto warm = c.submit("text", json::object(), "warm");
  auto first = active->recv();
  REQUIRE(first);
  active->answer(*first);
  REQUIRE(ready(warm));
  CHECK(c.broker() == first_endpoint);

  auto one = c.submit("text", json::object(), "one");
  REQUIRE(active->recv());
  active.reset();  // the active dies holding it
  REQUIRE(eventually([&] { return c.broker().empty(); }, 3000ms));
  auto two = c.submit("text", json::object(), "two");  // sent while no broker is up
  const time_point took_over = clock::now();
  fake_broker standby(context, 1000, second_endpoint);

  std::set<std::string> payloads;
  while (payloads.size() < 2) {
    auto r = standby.recv(5000ms);
    REQUIRE(r);
    CHECK(r->head["client"] == "follower");
    payloads.insert(r->payload);
    standby.answer(*r);
  }
  CHECK(payloads == std::set<std::string>{"one", "two"});
  for (auto* f : {&one, &two}) {
    REQUIRE(ready(*f, 5000ms));
    CHECK(f->get().code == 200);
  }
  CHECK(clock::now() - took_over < 5s);  // not at the 30 s timeout
  CHECK(c.broker() == second_endpoint);
  CHECK(c.counters().reconnects == 1);
  CHECK(c.counters().timeouts == 0);
}

TEST_CASE("client: a malformed endpoint list is refused at construction") {
  zmq::context_t context;
  client_options o;
  o.endpoint = "tcp://127.0.0.1:1,,tcp://127.0.0.1:2";
  CHECK_THROWS_WITH(client(context, o), Catch::Contains("item 2 is empty"));
  o.endpoint = "tcp://127.0.0.1:1,tcp://127.0.0.1:1";
  CHECK_THROWS_WITH(client(context, o), Catch::Contains("listed twice"));
}

TEST_CASE("client: with no broker at the endpoint, requests fail with 503 fast, not at their timeout") {
  zmq::context_t context;
  const std::string endpoint = free_tcp_endpoint();
  client_options o;
  o.endpoint = endpoint;
  o.timeout_ms = 20000;
  o.no_broker_ms = 300;
  SECTION("carico") {}
  SECTION("mdp") { o.protocol = dialect::mdp; }
  client c(context, o);

  const time_point start = clock::now();
  auto f = c.submit("mmi.stats", json::object(), "");
  REQUIRE(ready(f, 3000ms));
  reply r = f.get();
  CHECK(clock::now() - start >= 300ms);
  CHECK(r.code == 503);
  CHECK(r.local);
  CHECK(r.error() == "no broker at " + endpoint + ": nothing answered in 300 ms");
  // Once that is known, the next request fails at once.
  auto g = c.submit("mmi.stats", json::object(), "");
  REQUIRE(ready(g, 100ms));
  CHECK(g.get().code == 503);
  CHECK(c.counters().no_broker == 2);
  CHECK(c.counters().timeouts == 0);

  if (o.protocol == dialect::carico) {
    // A broker that comes later is used as soon as the socket reaches it.
    fake_broker broker(context, 1000, endpoint);
    std::optional<std::future<reply>> served;
    REQUIRE(eventually([&] {
      auto h = c.submit("text", json::object(), "late");
      if (h.wait_for(50ms) == std::future_status::ready) return false;  // not connected yet
      served.emplace(std::move(h));
      return true;
    }, 3000ms));
    auto seen = broker.recv();
    REQUIRE(seen);
    broker.answer(*seen);
    REQUIRE(ready(*served));
    CHECK(served->get().code == 200);
  }
}

TEST_CASE("client: a full DEALER never blocks the I/O thread - timeouts still fire") {
  zmq::context_t context;
  fake_broker broker(context, /*rcvhwm=*/1);
  client_options o = options_for(broker, 200);
  o.send_hwm = 1;
  client c(context, o);

  // The broker reads nothing: most requests stay in the client's backlog.
  std::vector<std::future<reply>> futures;
  for (int i = 0; i < 300; ++i) futures.push_back(c.submit("text", json::object(), "stuck"));
  for (auto& f : futures) {
    REQUIRE(ready(f));
    CHECK(f.get().code == 504);
  }
  CHECK(c.counters().sent < 300);

  // Once the broker reads again, a new request goes through.
  auto last = c.submit("text", json::object(), "last", 2000ms);
  std::optional<seen_request> r;
  while ((r = broker.recv()) && r->payload != "last") {
  }
  REQUIRE(r);
  broker.answer(*r);
  REQUIRE(ready(last));
  CHECK(last.get().code == 200);
}

TEST_CASE("client: end to end through the broker with three fake workers") {
  zmq::context_t context;
  running_broker broker(context);
  fake_client mmi(context, broker.frontend());
  std::vector<std::unique_ptr<fake_worker>> workers;
  for (const char* name : {"A", "B", "C"}) {
    workers.push_back(std::make_unique<fake_worker>(
        context, fake_worker_options{.endpoint = broker.backend(), .name = name}));
  }
  REQUIRE(wait_for_workers(mmi, 3).size() == 3);

  client c(context, {.endpoint = broker.frontend(), .name = "e2e", .timeout_ms = 5000});
  std::vector<std::future<reply>> futures;
  for (int i = 0; i < 30; ++i) {
    futures.push_back(c.submit("text", {{"title", "doc"}}, "payload-" + std::to_string(i)));
  }
  std::map<std::string, int> per_worker;
  for (int i = 0; i < 30; ++i) {
    REQUIRE(ready(futures[i], 5000ms));
    reply r = futures[i].get();
    REQUIRE(r.code == 200);
    CHECK(r.head["result"]["payload"] == "payload-" + std::to_string(i));
    CHECK(r.head["attempts"] == 1);
    ++per_worker[r.head["worker"].get<std::string>()];
  }
  CHECK(per_worker.size() == 3);

  reply stats = c.call("mmi.stats", json::object(), "");
  CHECK(stats.code == 200);
  CHECK(stats.head["result"]["done"] == 30);
  reply listed = c.call("mmi.workers", json::object(), "");
  CHECK(listed.head["result"]["workers"].size() == 3);
  CHECK(format_workers(listed.head["result"]).find("\nA ") != std::string::npos);
  reply unknown = c.call("mmi.nothing", json::object(), "");
  CHECK(unknown.code == 501);
  CHECK_FALSE(unknown.local);
}

TEST_CASE("batch_sender: one line per reply, window respected, exit status") {
  zmq::context_t context;
  temp_dir dir;
  std::vector<std::shared_ptr<const document>> docs;
  for (int i = 0; i < 6; ++i) {
    auto d = load_document(dir.write("d" + std::to_string(i) + ".json",
                                     json{{"titolo", "T" + std::to_string(i)}, {"contenuto", "aaa"}}.dump()));
    REQUIRE(d);
    docs.push_back(d.value);
  }

  SECTION("at most window requests are outstanding") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    std::ostringstream out;
    batch_sender sender(c, {.window = 2}, out);
    std::future<batch_result> running =
        std::async(std::launch::async, [&] { return sender.send(docs); });
    for (int round = 0; round < 3; ++round) {
      std::vector<seen_request> seen = broker.recv_n(2);
      CHECK_FALSE(broker.recv(50ms));  // a third would break the window
      for (const seen_request& r : seen) {
        CHECK(r.head["title"].get<std::string>().front() == 'T');
        broker.answer(r);
      }
    }
    REQUIRE(running.wait_for(2000ms) == std::future_status::ready);
    batch_result result = running.get();
    CHECK(result.sent == 6);
    CHECK(result.ok == 6);
    CHECK(result.all_ok());
    // The REPL's closing summary, for `carico-client send` to print.
    CHECK_THAT(result.summary, Catch::StartsWith("6 documents in "));
    CHECK_THAT(result.summary, Catch::Contains(": 6 ok, 0 failed\n"));
    CHECK_THAT(result.summary, Catch::Contains("  codes     200 x6\n"));
    std::istringstream lines(out.str());
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
      ++count;
      CHECK(line.rfind("200 request=", 0) == 0);
      CHECK(line.find(" worker=w1 attempts=1 count_a=3 echo=") != std::string::npos);
      CHECK(line.find(".json") == line.size() - 5);
    }
    CHECK(count == 6);
  }

  SECTION("--json lines and a failed reply") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    std::ostringstream out;
    batch_sender sender(c, {.window = 0, .json = true}, out);
    std::future<batch_result> running =
        std::async(std::launch::async, [&] { return sender.send(docs); });
    std::vector<seen_request> seen = broker.recv_n(6);
    for (std::size_t i = 0; i < seen.size(); ++i) broker.answer(seen[i], i == 0 ? 500 : 200);
    REQUIRE(running.wait_for(2000ms) == std::future_status::ready);
    batch_result result = running.get();
    CHECK(result.ok == 5);
    CHECK(result.failed == 1);
    CHECK_FALSE(result.all_ok());
    std::istringstream lines(out.str());
    std::string line;
    std::set<std::string> files;
    while (std::getline(lines, line)) {
      json j = json::parse(line);
      files.insert(j["file"].get<std::string>());
      CHECK(j.contains("request"));
      CHECK(j.contains("code"));
    }
    CHECK(files.size() == 6);
  }

  SECTION("a stop sends nothing more and waits stop_grace for replies in flight") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    std::ostringstream out;
    std::atomic<bool> stop{false};
    batch_sender sender(c, {.window = 2, .stop = [&stop] { return stop.load(); }, .stop_grace = 300ms},
                        out);
    std::future<batch_result> running =
        std::async(std::launch::async, [&] { return sender.send(docs); });
    std::vector<seen_request> seen = broker.recv_n(2);
    stop = true;
    broker.answer(seen[0]);
    CHECK_FALSE(broker.recv(150ms));  // the window has room, but nothing more is sent
    REQUIRE(running.wait_for(2000ms) == std::future_status::ready);
    batch_result result = running.get();
    CHECK(result.stopped);
    CHECK(result.sent == 2);
    CHECK(result.ok == 1);
    CHECK(result.failed == 0);
    CHECK(result.interrupted == 5);  // 4 never sent, 1 unanswered after 300 ms
    const std::string lines = out.str();
    CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
    broker.answer(seen[1]);  // too late: dropped, and send()'s frame is long gone
  }

  SECTION("driven from an event loop: replies posted back, to the hook, then on_finished") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    // The event loop's queue: closures posted from the client's I/O thread, run here.
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<std::function<void()>> posted;
    auto post = [&](std::function<void()> event) {
      std::lock_guard lock(mutex);
      posted.push_back(std::move(event));
      arrived.notify_one();
    };
    auto run_posted = [&] {  // what arrives within 2 s, run on this thread; how many
      std::deque<std::function<void()>> events;
      {
        std::unique_lock lock(mutex);
        arrived.wait_for(lock, 2000ms, [&] { return !posted.empty(); });
        events.swap(posted);
      }
      for (auto& e : events) e();
      return events.size();
    };
    std::vector<std::string> files;
    std::optional<batch_result> finished;
    batch_sender sender(c, {.window = 2}, [&](const reply& r, const document& d) {
      CHECK(r.ok());
      files.push_back(d.path);
    });
    sender.start(docs, post, [&](const batch_result& r) { finished = r; });
    CHECK(sender.total() == 6);
    CHECK(sender.outstanding() == 2);
    std::vector<seen_request> first = broker.recv_n(2);
    CHECK_FALSE(broker.recv(50ms));
    broker.answer(first[0]);
    REQUIRE(run_posted() == 1);  // counted, reported, and the window topped up
    CHECK(files == std::vector<std::string>{docs[0]->path});
    CHECK(sender.progress().done() == 1);
    CHECK(sender.outstanding() == 2);
    std::vector<seen_request> third = broker.recv_n(1);
    CHECK(third[0].head["title"] == "T2");
    sender.stop();  // Ctrl-C: nothing more is sent, the two in flight still count
    CHECK(sender.stopped());
    CHECK_FALSE(finished);
    broker.answer(first[1]);
    broker.answer(third[0]);
    while (!finished && run_posted() > 0) {
    }
    REQUIRE(finished);
    CHECK(finished->stopped);
    CHECK(finished->sent == 3);
    CHECK(finished->ok == 3);
    CHECK(finished->interrupted == 3);
    CHECK(files.size() == 3);
    CHECK_THAT(finished->summary, Catch::StartsWith("3 documents in "));
    CHECK_FALSE(broker.recv(100ms));  // nothing sent after the stop

    // No documents: finished at once.
    std::optional<batch_result> empty;
    sender.start({}, post, [&](const batch_result& r) { empty = r; });
    REQUIRE(empty);
    CHECK(empty->sent == 0);
    CHECK_FALSE(empty->all_ok());
  }

  SECTION("a reply posted after the sender is gone does nothing") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<std::function<void()>> posted;
    int hooked = 0, finished = 0;
    {
      batch_sender sender(c, {.window = 1}, [&](const reply&, const document&) { ++hooked; });
      sender.start(
          {docs[0]},
          [&](std::function<void()> e) {
            std::lock_guard lock(mutex);
            posted.push_back(std::move(e));
            arrived.notify_one();
          },
          [&](const batch_result&) { ++finished; });
      broker.answer(broker.recv_n(1)[0]);
      std::unique_lock lock(mutex);
      arrived.wait_for(lock, 2000ms, [&] { return !posted.empty(); });
    }  // the sender goes with the reply still posted
    std::lock_guard lock(mutex);
    REQUIRE(posted.size() == 1);
    posted.front()();
    CHECK(hooked == 0);
    CHECK(finished == 0);
  }

  SECTION("a late reply of an abandoned batch does not count in the next one") {
    fake_broker broker(context);
    client c(context, options_for(broker));
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<std::function<void()>> posted;
    auto post = [&](std::function<void()> e) {
      std::lock_guard lock(mutex);
      posted.push_back(std::move(e));
      arrived.notify_one();
    };
    auto take_posted = [&] {
      std::unique_lock lock(mutex);
      arrived.wait_for(lock, 2000ms, [&] { return !posted.empty(); });
      std::deque<std::function<void()>> out;
      out.swap(posted);
      return out;
    };
    std::vector<std::string> files;
    std::vector<batch_result> finished;
    batch_sender sender(c, {.window = 1}, [&](const reply&, const document& d) { files.push_back(d.path); });
    auto done = [&](const batch_result& r) { finished.push_back(r); };
    sender.start({docs[0]}, post, done);
    broker.answer(broker.recv_n(1)[0]);
    std::deque<std::function<void()>> late = take_posted();  // not run yet
    REQUIRE(late.size() == 1);
    sender.start({docs[1]}, post, done);  // the first batch is abandoned
    broker.answer(broker.recv_n(1)[0]);
    late.front()();  // the first batch's reply: dropped
    CHECK(files.empty());
    CHECK(sender.outstanding() == 1);
    for (auto& e : take_posted()) e();
    CHECK(files == std::vector<std::string>{docs[1]->path});
    REQUIRE(finished.size() == 1);
    CHECK(finished[0].sent == 1);
    CHECK(finished[0].ok == 1);
  }

  SECTION("no broker: every request times out with 504") {
    client_options o;
    o.endpoint = unique_endpoint("nobody");  // inproc: no monitor, no early 503
    o.timeout_ms = 100;
    o.retries = 0;
    client c(context, o);
    std::ostringstream out;
    batch_result result = batch_sender(c, {}, out).send(docs);
    CHECK(result.failed == 6);
    CHECK_FALSE(result.all_ok());
    CHECK(out.str().rfind("504 error=\"timeout: no reply from broker in 100 ms\"", 0) == 0);
  }
}

TEST_CASE("reply lines and reports") {
  reply r;
  r.code = 200;
  r.head = {{"id", 4},     {"request", 17}, {"worker", "w1"}, {"attempts", 1}, {"code", 200},
            {"status", "ok"}, {"result", {{"title", "foo"}, {"stored_as", "17-foo.json"}, {"bytes", 9}, {"count_a", 12}}}};
  r.latency = std::chrono::microseconds(3240);
  CHECK(format_reply_line(r, "files/foo.json") ==
        "200 request=17 worker=w1 attempts=1 count_a=12 stored_as=17-foo.json 3.2ms  files/foo.json");
  json j = reply_json(r, "files/foo.json");
  CHECK(j["file"] == "files/foo.json");
  CHECK(j["request"] == 17);

  reply e;
  e.code = 503;
  e.head = {{"code", 503}, {"error", "queue full"}};
  CHECK(format_reply_line(e, "x.json") == "503 error=\"queue full\" 0.0ms  x.json");

  json workers = {{"workers",
                   {{{"name", "w1"}, {"service", "text"}, {"state", "ready"}, {"in_flight", 0}, {"capacity", 2}},
                    {{"name", "worker-long-name"}, {"service", "text"}, {"state", "overload"}}}}};
  std::string table = format_workers(workers);
  CHECK(table.rfind("NAME              STATE     IN FLIGHT  MEMORY  LAST HEARTBEAT  SERVICE  PROTOCOL  HOST  PID\n",
                    0) == 0);
  CHECK(table.find("\nw1                ready     0 / 2      -       -               text     -         -     -\n") !=
        std::string::npos);
  // The dialect with its heartbeat interval, and why a worker is not ready.
  std::string v2 = format_workers({{"workers",
                                    {{{"name", "s"}, {"state", "overload"}, {"reason", "storage full"},
                                      {"dialect", "mdp"}, {"heartbeat_ms", 2500}}}}});
  CHECK(v2.find("overload (storage full)") != std::string::npos);
  CHECK(v2.find("mdp 2500ms") != std::string::npos);
  CHECK(format_workers({{"workers", json::array()}}) == "no workers\n");
  // A name with an escape sequence or a newline cannot reach the terminal as such.
  std::string hostile = format_workers({{"workers", {{{"name", "a\x1b[2J\nb"}, {"host", "h\r"}}}}});
  CHECK(hostile.find('\x1b') == std::string::npos);
  CHECK(hostile.find("a?[2J?b") != std::string::npos);
  CHECK(hostile.find("h?") != std::string::npos);
  CHECK(format_stats({{"services", {{"t\x07", {{"queued", 0}}}}}}) == "services.t?.queued  0\n");
  CHECK(format_stats({{"done", 3}, {"services", {{"text", {{"queued", 0}}}}}}) ==
        "done                  3\nservices.text.queued  0\n");
}

TEST_CASE("status N: the journal's times as local date and time, durations in words") {
  const std::int64_t received = 1700000000123;  // 2023-11-14 22:13:20.123 UTC
  const std::string text = format_request({{"request", 17},
                                           {"state", "done"},
                                           {"received_ms", received},
                                           {"dispatched_ms", received + 2},
                                           {"completed_ms", received + 1500},
                                           {"age_ms", 250000}});
  INFO(text);
  CHECK(text.find("_ms") == std::string::npos);
  CHECK(text.find("1700000000") == std::string::npos);
  CHECK(text.find("received    " + format_epoch_ms(received) + "\n") != std::string::npos);
  CHECK(text.find("dispatched  " + format_epoch_ms(received + 2) + " (+2.0 ms)\n") != std::string::npos);
  CHECK(text.find("completed   " + format_epoch_ms(received + 1500) + " (+1.50 s)\n") != std::string::npos);
  CHECK(text.find("age         4 min\n") != std::string::npos);
  CHECK(text.find("request     17\n") != std::string::npos);
  // "YYYY-MM-DD HH:MM:SS.mmm", whatever the time zone.
  const std::string when = format_epoch_ms(received);
  REQUIRE(when.size() == 23);
  CHECK(when.substr(19) == ".123");
  CHECK(when[4] == '-');
  CHECK(when[13] == ':');
  // Not an object: shown as it is, not a crash.
  CHECK(format_request(json("odd")) == "  odd\n");
}

TEST_CASE("documents: titles, folders and unreadable files") {
  temp_dir dir;
  const std::string a = dir.write("a.json", R"({"titolo": "Titolo", "contenuto": "x"})");
  const std::string b = dir.write("b.json", R"({"title": "Title", "titolo": "ignored", "content": "x"})");
  const std::string c = dir.write("c.json", "not json at all");
  dir.write("d.txt", "{}");
  fs::create_directory(dir.path / "e.json");  // a folder named like a document

  CHECK(load_document(a).value->title == "Titolo");
  CHECK(load_document(b).value->title == "Title");
  CHECK(load_document(c).value->title == "c.json");
  CHECK(load_document(c).value->payload == "not json at all");
  CHECK(load_document(a).value->path == a);
  CHECK(document_title(R"({"titolo": 5})") == std::nullopt);

  document_result missing = load_document((dir.path / "missing.json").string());
  CHECK_FALSE(missing);
  CHECK(missing.error.find("missing.json") != std::string::npos);
  CHECK_FALSE(load_document((dir.path / "e.json").string()));

  // A bare name is found in the files folder, as the REPL and `send` look it up.
  document_result named = load_named_document("a.json", dir.path.string());
  REQUIRE(named);
  CHECK(named.value->path == a);
  CHECK(load_named_document(a, "/nowhere").value->path == a);
  document_result nowhere = load_named_document("zz.json", dir.path.string());
  CHECK_FALSE(nowhere);
  CHECK(nowhere.error == "no such file: zz.json (looked in . and " + dir.path.string() + "/)");
  CHECK(load_named_document("e.json", dir.path.string()).error.rfind("cannot read ", 0) == 0);

  std::string error;
  CHECK(list_documents(dir.path.string(), error) == std::vector<std::string>{a, b, c});
  CHECK(error.empty());
  CHECK(list_documents((dir.path / "none").string(), error).empty());
  CHECK_FALSE(error.empty());
  fs::create_directory(dir.path / "empty");
  error.clear();
  CHECK(list_documents((dir.path / "empty").string(), error).empty());
  CHECK(error.find("no *.json") != std::string::npos);
}

TEST_CASE("document picker: send N draws from the folder, send FILE... loads each once") {
  temp_dir dir;
  const std::string a = dir.write("a.json", R"({"titolo": "A"})");
  const std::string b = dir.write("b.json", R"({"titolo": "B"})");
  const std::string c = dir.write("c.json", R"({"titolo": "C"})");

  SECTION("N drawn uniformly with repeats, the same for the same seed, each file read once") {
    document_batch first = pick_documents(dir.path.string(), 300, 7);
    REQUIRE(first);
    REQUIRE(first.documents.size() == 300);
    std::map<std::string, std::set<const document*>> by_path;  // one object per file
    for (const auto& d : first.documents) by_path[d->path].insert(d.get());
    CHECK(by_path.size() == 3);  // 300 draws from 3 files: each drawn
    CHECK((by_path.count(a) == 1 && by_path.count(b) == 1 && by_path.count(c) == 1));
    for (const auto& [path, objects] : by_path) CHECK(objects.size() == 1);
    document_batch again = pick_documents(dir.path.string(), 300, 7);
    document_batch other = pick_documents(dir.path.string(), 300, 8);
    auto paths = [](const document_batch& x) {
      std::vector<std::string> out;
      for (const auto& d : x.documents) out.push_back(d->path);
      return out;
    };
    CHECK(paths(again) == paths(first));
    CHECK(paths(other) != paths(first));
    CHECK(pick_documents(dir.path.string(), 0, 7).documents.empty());
  }

  SECTION("a folder without documents, or an unreadable draw, is an error") {
    document_batch none = pick_documents((dir.path / "none").string(), 3, 1);
    CHECK_FALSE(none);
    CHECK(none.documents.empty());
    CHECK(none.error.rfind("cannot pick documents: " + (dir.path / "none").string() + ": ", 0) == 0);
    fs::create_directory(dir.path / "odd");
    dir.write("odd/x.json", "{}");
    fs::permissions(dir.path / "odd" / "x.json", fs::perms::none);
    if (!std::ifstream(dir.path / "odd" / "x.json")) {  // root reads it anyway
      document_batch unreadable = pick_documents((dir.path / "odd").string(), 2, 1);
      CHECK_FALSE(unreadable);
      CHECK(unreadable.error.rfind("cannot read " + (dir.path / "odd" / "x.json").string(), 0) == 0);
    }
  }

  SECTION("names in order, bare ones found in the folder, a repeated name read once") {
    document_batch named = load_named_documents({"b.json", a, "b.json"}, dir.path.string());
    REQUIRE(named);
    REQUIRE(named.documents.size() == 3);
    CHECK(named.documents[0]->path == b);
    CHECK(named.documents[1]->path == a);
    CHECK(named.documents[2] == named.documents[0]);
    document_batch missing = load_named_documents({"a.json", "zz.json"}, dir.path.string());
    CHECK_FALSE(missing);
    CHECK(missing.documents.empty());
    CHECK(missing.error == "no such file: zz.json (looked in . and " + dir.path.string() + "/)");
  }
}

TEST_CASE("files/: the shipped samples are documents in the original format") {
  const fs::path folder = fs::path(__FILE__).parent_path().parent_path() / "files";
  std::string error;
  std::vector<std::string> paths = list_documents(folder.string(), error);
  REQUIRE(paths.size() >= 20);
  bool escaping = false, non_ascii = false, large = false, one_line = false;
  for (const std::string& path : paths) {
    document_result d = load_document(path);
    REQUIRE(d);
    json j = json::parse(d.value->payload);
    INFO(path);
    REQUIRE(j["titolo"].is_string());
    REQUIRE(j["contenuto"].is_string());
    const std::string title = j["titolo"];
    escaping |= title.find("../") != std::string::npos;
    non_ascii |= std::any_of(title.begin(), title.end(), [](char ch) { return ch & 0x80; });
    large |= d.value->payload.size() > 1000000 && d.value->payload.size() < 1100000;
    one_line |= d.value->payload.size() < 64;
  }
  CHECK(escaping);
  CHECK(non_ascii);
  CHECK(large);
  CHECK(one_line);
}
