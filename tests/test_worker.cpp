// The worker engine against a real broker in one process over inproc://.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "broker/broker.hpp"
#include "tests/support/fake_peers.hpp"
#include "worker/text_handler.hpp"
#include "worker/worker.hpp"

namespace fs = std::filesystem;
using namespace carico;

namespace {

std::string unique(const std::string& tag) {
  static std::atomic<int> n{0};
  return tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// A broker on its own thread with short heartbeats.
struct running_broker {
  // liveness 3 x 50 ms: tests that are not about liveness pass a larger one,
  // so that a loaded machine (ctest -j) cannot make the worker look dead.
  explicit running_broker(zmq::context_t& context, std::string name, long liveness = 3)
      : frontend("inproc://" + name + "-f"),
        backend("inproc://" + name + "-b"),
        b(std::make_unique<broker>(context, broker_options{.frontend = frontend,
                                                            .backend = backend,
                                                            .heartbeat_ms = 50,
                                                            .liveness = liveness})),
        thread([this] { b->run(); }) {}
  ~running_broker() { shutdown(); }
  void shutdown() {
    if (!b) return;
    b->stop();
    thread.join();
    b.reset();
  }
  std::string frontend, backend;
  std::unique_ptr<broker> b;
  std::thread thread;
};

// A worker on its own thread.
struct running_worker {
  running_worker(zmq::context_t& context, worker_options options, service_handler handler)
      : w(context, std::move(options), std::move(handler)), thread([this] { w.run(); }) {}
  ~running_worker() {
    w.stop();
    thread.join();
  }
  worker w;
  std::thread thread;
};

// A raw MDP client: one DEALER, blocking calls with a deadline.
struct raw_client {
  raw_client(zmq::context_t& context, const std::string& endpoint)
      : socket(context, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(const std::string& service, const nlohmann::json& head, const std::string& payload) {
    header_result h = header::from_json(head);
    encode_client_request(service, *h.value, zmq::message_t(payload.data(), payload.size()))
        .send(socket);
  }
  // The next reply header as JSON, or null after timeout_ms.
  nlohmann::json receive(long timeout_ms = 5000) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return nullptr;
    zmq::multipart_t frames(socket);
    decoded<client_reply> reply = decode_client_reply(std::move(frames));
    REQUIRE(reply);
    nlohmann::json out = reply->head.to_json();
    if (!reply->body.empty()) out["body"] = reply->body[0].to_string();
    return out;
  }
  nlohmann::json call(const std::string& service, const nlohmann::json& head,
                      const std::string& payload, long timeout_ms = 5000) {
    send(service, head, payload);
    return receive(timeout_ms);
  }
  zmq::socket_t socket;
};

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / unique("carico-worker-test");
  fs::remove_all(dir);
  return dir;
}

// Polls mmi.workers until pred holds for the workers list, or 3 s pass.
template <class Pred>
bool wait_workers(raw_client& c, Pred pred) {
  const auto until = clock::now() + std::chrono::seconds(3);
  while (clock::now() < until) {
    nlohmann::json r = c.call("mmi.workers", nlohmann::json::object(), "");
    if (!r.is_null() && pred(r["result"]["workers"])) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

worker_options options_for(const running_broker& b, const std::string& name,
                           const std::string& service = "text") {
  return worker_options{
      .connect = b.backend, .service = service, .name = name, .heartbeat_ms = 50, .liveness = 3};
}

}  // namespace

TEST_CASE("a text worker counts, stores and answers") {
  zmq::context_t context;
  running_broker b(context, unique("text"));
  const fs::path dir = temp_dir();
  running_worker w(context, options_for(b, "w1"),
                   text_handler(std::make_shared<document_store>(dir, false), 0));
  raw_client c(context, b.frontend);

  SECTION("a document is stored and counted") {
    nlohmann::json r = c.call("text", {{"id", 1}, {"title", "Banane"}},
                              R"({"titolo": "Banane", "contenuto": "Anna mangia banane"})");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 200);
    CHECK(r["status"] == "ok");
    CHECK(r["id"] == 1);
    CHECK(r["worker"] == "w1");
    CHECK(r["attempts"] == 1);
    CHECK(r["result"]["count_a"] == 6);
    CHECK(r["result"]["title"] == "Banane");
    const std::string stored = r["result"]["stored_as"];
    CHECK(stored == std::to_string(r["request"].get<std::uint64_t>()) + "-Banane.json");
    CHECK(fs::exists(dir / stored));
  }
  SECTION("a bad document is answered 400 and stored nowhere") {
    nlohmann::json r = c.call("text", {{"id", 2}}, "{not json");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 400);
    CHECK(r["status"] == "error");
    CHECK(r["error"].get<std::string>().find("JSON") != std::string::npos);
    CHECK(fs::is_empty(dir));
  }
  SECTION("READY details are visible in mmi.workers") {
    CHECK(wait_workers(c, [](const nlohmann::json& ws) {
      return ws.size() == 1 && ws[0]["name"] == "w1" && ws[0]["capacity"] == 1 &&
             ws[0]["state"] == "ready" && ws[0]["pid"] == ::getpid();
    }));
  }
  fs::remove_all(dir);
}

TEST_CASE("heartbeats flow while a slow request computes") {
  zmq::context_t context;
  running_broker b(context, unique("slow"));
  const fs::path dir = temp_dir();
  // 100 characters x 5 ms = 500 ms of work; the broker's liveness is 150 ms.
  running_worker w(context, options_for(b, "slow"),
                   text_handler(std::make_shared<document_store>(dir, false), 5000));
  raw_client c(context, b.frontend);
  const std::string content(100, 'a');
  nlohmann::json r = c.call("text", {{"id", 1}},
                            R"({"titolo": "lento", "contenuto": ")" + content + "\"}", 5000);
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["attempts"] == 1);  // never declared dead, never re-dispatched
  nlohmann::json stats = c.call("mmi.stats", nlohmann::json::object(), "");
  CHECK(stats["result"]["workers_lost"] == 0);
  CHECK(stats["result"]["redispatched"] == 0);
  fs::remove_all(dir);
}

TEST_CASE("a draining worker finishes what it holds, then leaves") {
  zmq::context_t context;
  running_broker b(context, unique("drain"), 20);
  const fs::path dir = temp_dir();
  worker_options o = options_for(b, "leaver");
  o.liveness = 20;  // about draining, not liveness: a starved second is no failure
  worker w(context, o, text_handler(std::make_shared<document_store>(dir, false), 3000));
  std::thread t([&] { w.run(); });
  raw_client c(context, b.frontend);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws.size() == 1; }));
  c.send("text", {{"id", 7}}, R"({"titolo": "ultimo", "contenuto": ")" + std::string(100, 'x') + "\"}");
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
    return ws.size() == 1 && ws[0]["in_flight"] == 1;
  }));
  w.drain();
  nlohmann::json r = c.receive(5000);
  // mmi replies may be interleaved; skip to the request's reply.
  while (!r.is_null() && !r.contains("request")) r = c.receive(5000);
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["id"] == 7);
  t.join();  // run() returned after DISCONNECT
  CHECK(wait_workers(c, [](const nlohmann::json& ws) { return ws.empty(); }));
  nlohmann::json stats = c.call("mmi.stats", nlohmann::json::object(), "");
  CHECK(stats["result"]["redispatched"] == 0);
  fs::remove_all(dir);
}

TEST_CASE("a forced overload takes the worker out of the ring until lifted") {
  zmq::context_t context;
  running_broker b(context, unique("overload"));
  running_worker w(context, options_for(b, "busy", "echo"), echo_handler());
  raw_client c(context, b.frontend);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws.size() == 1; }));
  w.w.set_overloaded(true);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws[0]["state"] == "overload"; }));
  c.send("echo", {{"id", 1}}, "ping");
  CHECK(c.receive(300).is_null());  // queued, not served
  w.w.set_overloaded(false);
  nlohmann::json r = c.receive(3000);
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["body"] == "ping");
}

TEST_CASE("a worker reconnects when the broker goes away and comes back") {
  zmq::context_t context;
  const std::string name = unique("restart");
  auto b = std::make_unique<running_broker>(context, name);
  running_worker w(context, options_for(*b, "phoenix", "echo"), echo_handler());
  {
    raw_client c(context, b->frontend);
    REQUIRE(c.call("echo", {{"id", 1}}, "one")["code"] == 200);
  }
  b.reset();  // the broker dies
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the worker notices
  b = std::make_unique<running_broker>(context, name);
  raw_client c(context, b->frontend);
  nlohmann::json r = c.call("echo", {{"id", 2}}, "two", 5000);
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["worker"] == "phoenix");
}

TEST_CASE("a worker given several backends registers with the one that accepts it, then the next") {
  zmq::context_t context;
  const std::string f1 = test::free_tcp_endpoint(), b1 = test::free_tcp_endpoint();
  const std::string f2 = test::free_tcp_endpoint(), b2 = test::free_tcp_endpoint();
  auto start = [&](const std::string& frontend, const std::string& backend) {
    return std::make_unique<test::running_broker>(
        context, broker_options{.frontend = frontend, .backend = backend, .heartbeat_ms = 50,
                                .liveness = 10});
  };
  // The second listed is up first: READY goes to it, and to no other.
  auto active = start(f2, b2);
  worker_options o{.connect = b1 + "," + b2, .service = "echo", .name = "nomad",
                   .heartbeat_ms = 50, .liveness = 5};
  running_worker w(context, o, echo_handler());
  {
    raw_client c(context, f2);
    nlohmann::json r = c.call("echo", {{"id", 1}}, "one");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 200);
    CHECK(r["worker"] == "nomad");
  }
  CHECK(w.w.broker() == b2);
  // A broker on the first endpoint comes up: the worker stays where it is
  // registered (it never sent READY there, so it sends nothing there).
  auto other = start(f1, b1);
  {
    raw_client c(context, f1);
    nlohmann::json r = c.call("mmi.workers", nlohmann::json::object(), "");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["result"]["workers"].empty());
  }
  // Its broker dies: it registers with the other one and serves there.
  active.reset();
  raw_client c(context, f1);
  nlohmann::json r = c.call("echo", {{"id", 2}}, "two", 5000);
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["worker"] == "nomad");
  CHECK(w.w.broker() == b1);
}

TEST_CASE("a worker given several backends leaves a broker whose connection closes at once") {
  // A broker that dies (kill -9: its connection closed, no DISCONNECT) is left
  // for the next one without waiting out liveness x heartbeat of silence.
  zmq::context_t context;
  const std::string b1 = test::free_tcp_endpoint();
  const std::string f2 = test::free_tcp_endpoint(), b2 = test::free_tcp_endpoint();
  auto dying = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
  dying->set(zmq::sockopt::linger, 0);
  dying->bind(b1);
  // Silence would take 3 x 500 ms, then the 250 ms reconnect delay.
  worker_options o{.connect = b1 + "," + b2,
                   .service = "echo",
                   .name = "quick",
                   .heartbeat_ms = 500,
                   .liveness = 3};
  running_worker w(context, o, echo_handler());
  zmq::multipart_t ready;
  dying->set(zmq::sockopt::rcvtimeo, 3000);
  REQUIRE(ready.recv(*dying));  // READY went to the only broker up
  test::running_broker next(
      context, broker_options{.frontend = f2, .backend = b2, .heartbeat_ms = 50, .liveness = 10});
  const auto closed = std::chrono::steady_clock::now();
  dying.reset();
  raw_client c(context, f2);
  nlohmann::json r = c.call("echo", {{"id", 1}}, "one", 5000);
  const auto took = std::chrono::steady_clock::now() - closed;
  REQUIRE_FALSE(r.is_null());
  CHECK(r["code"] == 200);
  CHECK(r["worker"] == "quick");
  CHECK(w.w.broker() == b2);
  CHECK(took < std::chrono::milliseconds(1200));
}

TEST_CASE("a worker refuses a malformed backend list") {
  zmq::context_t context;
  worker_options o;
  o.connect = "tcp://127.0.0.1:1,";
  CHECK_THROWS_WITH(worker(context, o, echo_handler()), Catch::Contains("item 2 is empty"));
}

namespace {

// Holds handlers until opened (or 5 s pass, so a failing test cannot hang).
struct gate {
  void open() {
    {
      std::lock_guard lock(mutex);
      opened = true;
    }
    changed.notify_all();
  }
  void wait(const std::atomic<bool>* cancel) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, std::chrono::seconds(5),
                     [&] { return opened || (cancel != nullptr && *cancel); });
  }
  std::mutex mutex;
  std::condition_variable changed;
  bool opened{false};
};

// Polls pred until it holds, or 3 s pass.
template <class Pred>
bool eventually(Pred pred) {
  const auto until = clock::now() + std::chrono::seconds(3);
  while (!pred()) {
    if (clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// The worker named `name` in an mmi.workers list, or null.
nlohmann::json worker_named(const nlohmann::json& ws, const std::string& name) {
  for (const nlohmann::json& w : ws) {
    if (w["name"] == name) return w;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a worker whose store cannot write leaves the ring; its requests go to others") {
  zmq::context_t context;
  running_broker b(context, unique("store"), 20);
  const fs::path base = temp_dir();
  fs::create_directories(base);
  // A file where the store's directory should be: root cannot write there either.
  const fs::path storage = base / "sick";
  auto sick_store = std::make_shared<document_store>(base / "healthy-first", false);
  worker_options sick = options_for(b, "sick");
  sick.health_check = storage_check(sick_store);
  sick.health_check_ms = 50;
  raw_client c(context, b.frontend);
  const std::string doc = R"({"title": "t", "content": "aaa"})";

  SECTION("unwritable at start: it joins as overload with the reason, serves once fixed") {
    std::ofstream(storage) << "in the way";
    auto store = std::make_shared<document_store>(storage, false);
    sick.health_check = storage_check(store);
    running_worker w(context, sick, text_handler(store, 0));
    REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
      return ws.size() == 1 && ws[0]["state"] == "overload" &&
             ws[0]["reason"].get<std::string>().find("cannot create storage directory") !=
                 std::string::npos;
    }));
    c.send("text", {{"id", 1}}, doc);
    CHECK(c.receive(300).is_null());  // queued: nobody ready
    fs::remove(storage);               // the operator fixes the disk
    nlohmann::json r = c.receive(3000);
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 200);
    CHECK(r["worker"] == "sick");
  }
  SECTION("failing while it serves: 503 not executed here, another worker answers 200") {
    const fs::path dir = base / "healthy-first";
    running_worker w(context, sick, text_handler(sick_store, 0));
    REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
      return ws.size() == 1 && ws[0]["state"] == "ready";
    }));
    REQUIRE(c.call("text", {{"id", 1}}, doc)["code"] == 200);
    fs::remove_all(dir);
    std::ofstream(dir) << "the disk went away";
    c.send("text", {{"id", 2}}, doc);
    // The worker answers 503 and says overload; the broker holds the request.
    REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
      return ws.size() == 1 && ws[0]["state"] == "overload" &&
             !ws[0]["reason"].get<std::string>().empty();
    }));
    running_worker other(context, options_for(b, "other"),
                         text_handler(std::make_shared<document_store>(base / "other", false), 0));
    nlohmann::json r = c.receive(3000);
    REQUIRE_FALSE(r.is_null());
    CHECK(r["id"] == 2);
    CHECK(r["code"] == 200);
    CHECK(r["worker"] == "other");
    CHECK(r["attempts"] == 2);
    fs::remove(dir);  // fixed: the sick worker is ready again
    CHECK(wait_workers(c, [](const nlohmann::json& ws) {
      return ws.size() == 2 && ws[0]["state"] == "ready" && ws[1]["state"] == "ready";
    }));
  }
  fs::remove_all(base);
}

TEST_CASE("an inline worker answers on its I/O thread and advertises its capacity") {
  zmq::context_t context;
  running_broker b(context, unique("inline"));
  worker_options options = options_for(b, "quick", "echo");
  options.capacity = 16;
  options.threads = 0;
  std::atomic<bool> off_thread{false};
  std::thread::id io_thread;
  std::mutex io_mutex;
  auto handler = [&, echo = echo_handler()](job& j) {
    {
      std::lock_guard lock(io_mutex);
      if (std::this_thread::get_id() != io_thread) off_thread = true;
    }
    if (j.payload.to_string() == "boom") throw std::runtime_error("boom");
    return echo(j);
  };
  std::unique_lock hold(io_mutex);  // io_thread is set before the handler reads it
  running_worker w(context, options, handler);
  io_thread = w.thread.get_id();
  hold.unlock();
  raw_client c(context, b.frontend);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
    return ws.size() == 1 && ws[0]["capacity"] == 16 && ws[0]["state"] == "ready";
  }));

  SECTION("every request comes back with its own payload") {
    constexpr int n = 200;
    for (int i = 0; i < n; ++i) c.send("echo", {{"id", i}}, "payload-" + std::to_string(i));
    std::set<int> seen;
    for (int i = 0; i < n; ++i) {
      nlohmann::json r = c.receive(5000);
      REQUIRE_FALSE(r.is_null());
      REQUIRE(r["code"] == 200);
      const int id = r["id"];
      CHECK(r["body"] == "payload-" + std::to_string(id));
      CHECK(r["worker"] == "quick");
      seen.insert(id);
    }
    CHECK(seen.size() == n);
    CHECK_FALSE(off_thread);
  }
  SECTION("a handler that throws is answered 500 and the worker goes on") {
    nlohmann::json r = c.call("echo", {{"id", 1}}, "boom");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 500);
    CHECK(r["error"].get<std::string>().find("boom") != std::string::npos);
    r = c.call("echo", {{"id", 2}}, "fine");
    REQUIRE_FALSE(r.is_null());
    CHECK(r["code"] == 200);
    CHECK(r["body"] == "fine");
  }
}

TEST_CASE("an inline worker is given no more than its capacity, and drains what it holds") {
  zmq::context_t context;
  running_broker b(context, unique("inline-cap"));
  worker_options options = options_for(b, "held", "echo");
  options.capacity = 3;
  options.threads = 0;
  gate g;
  std::atomic<int> calls{0};
  worker w(context, options, [&, echo = echo_handler()](job& j) {
    ++calls;
    g.wait(j.cancel);
    return echo(j);
  });
  std::thread t([&] { w.run(); });
  // A failed REQUIRE must not leave the thread joinable (std::terminate).
  std::shared_ptr<void> join_on_exit(nullptr, [&](void*) {
    w.stop();
    g.open();
    if (t.joinable()) t.join();
  });
  raw_client c(context, b.frontend);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws.size() == 1; }));
  for (int i = 0; i < 8; ++i) c.send("echo", {{"id", i}}, "p" + std::to_string(i));
  // The first request blocks the I/O thread; the broker holds the rest back.
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws[0]["in_flight"] == 3; }));
  REQUIRE(eventually([&] { return calls == 1; }));  // the worker holds the first
  nlohmann::json stats = c.call("mmi.stats", nlohmann::json::object(), "");
  CHECK(stats["result"]["queued"] == 5);
  CHECK(stats["result"]["in_flight"] == 3);
  CHECK(calls.load() == 1);

  w.drain();
  g.open();
  std::set<int> answered;
  for (nlohmann::json r = c.receive(5000); !r.is_null(); r = c.receive(500)) {
    if (!r.contains("request")) continue;  // an mmi reply
    CHECK(r["code"] == 200);
    answered.insert(r["id"].get<int>());
  }
  t.join();  // run() returned after DISCONNECT
  CHECK(answered == std::set<int>{0, 1, 2});  // the three it held, nothing more
  CHECK(calls.load() == 3);
  CHECK(wait_workers(c, [](const nlohmann::json& ws) { return ws.empty(); }));
  stats = c.call("mmi.stats", nlohmann::json::object(), "");
  CHECK(stats["result"]["redispatched"] == 0);
  CHECK(stats["result"]["queued"] == 5);  // left for the next worker
}

TEST_CASE("a pool with fewer threads than capacity queues without calling itself overloaded") {
  zmq::context_t context;
  running_broker b(context, unique("pool"));
  worker_options options = options_for(b, "pool", "echo");
  options.capacity = 4;
  options.threads = 1;
  gate g;
  std::atomic<int> running{0}, most{0}, calls{0};
  running_worker w(context, options, [&, echo = echo_handler()](job& j) {
    ++calls;
    const int now = ++running;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    g.wait(j.cancel);
    --running;
    return echo(j);
  });
  raw_client c(context, b.frontend);
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) {
    return ws.size() == 1 && ws[0]["capacity"] == 4;
  }));
  for (int i = 0; i < 6; ++i) c.send("echo", {{"id", i}}, "p" + std::to_string(i));
  REQUIRE(wait_workers(c, [](const nlohmann::json& ws) { return ws[0]["in_flight"] == 4; }));
  REQUIRE(eventually([&] { return calls == 1; }));
  // Let a few heartbeats (50 ms) carry the worker's state.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  nlohmann::json ws = c.call("mmi.workers", nlohmann::json::object(), "")["result"]["workers"];
  CHECK(worker_named(ws, "pool")["state"] == "ready");
  CHECK(calls.load() == 1);  // one thread: the other three wait in the worker
  g.open();
  std::set<int> answered;
  while (answered.size() < 6) {
    nlohmann::json r = c.receive(5000);
    REQUIRE_FALSE(r.is_null());
    if (!r.contains("request")) continue;
    CHECK(r["code"] == 200);
    answered.insert(r["id"].get<int>());
  }
  CHECK(most.load() == 1);
}

// The worker reads a batch to the end and then sleeps at once; a state change
// the batch caused must still reach the broker before that sleep. The fake
// broker here sends nothing back and the heartbeat interval is long, so only
// the immediate report arrives within the deadline.
TEST_CASE("a worker given more than its capacity says overload at once") {
  zmq::context_t context;
  const std::string endpoint = "inproc://" + unique("over-capacity");
  zmq::socket_t fake_broker(context, zmq::socket_type::router);
  fake_broker.set(zmq::sockopt::linger, 0);
  fake_broker.bind(endpoint);
  worker_options options{.connect = endpoint, .service = "echo", .name = "over",
                         .heartbeat_ms = 10000, .liveness = 3};
  options.capacity = 1;
  options.threads = 1;
  gate g;
  running_worker w(context, options, [&, echo = echo_handler()](job& j) {
    g.wait(j.cancel);
    return echo(j);
  });
  std::shared_ptr<void> open_on_exit(nullptr, [&](void*) { g.open(); });

  // Reads the worker's next message, or nothing after timeout_ms.
  auto next = [&](long timeout_ms) -> std::optional<std::pair<std::string, worker_message>> {
    zmq::pollitem_t item{fake_broker.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::nullopt;
    zmq::multipart_t frames(fake_broker);
    std::string identity = frames.pop().to_string();
    decoded<worker_message> m = decode_worker_message(std::move(frames));
    REQUIRE(m);
    return std::make_pair(std::move(identity), std::move(*m));
  };
  auto ready = next(5000);
  REQUIRE(ready);
  REQUIRE(ready->second.cmd == command::ready);
  const std::string identity = ready->first;

  // Two requests to a worker of capacity 1: the second comes when the worker
  // has read the first and sleeps again.
  for (std::uint64_t n = 1; n <= 2; ++n) {
    if (n == 2) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    header head;
    head.set("request", n);
    head.set("attempt", std::uint64_t{1});
    std::vector<zmq::message_t> body;
    body.emplace_back(std::string("payload"));
    zmq::multipart_t request = encode_request(dialect::carico, zmq::message_t(std::string("client")),
                                              head, std::move(body));
    request.pushstr(identity);
    request.send(fake_broker);
  }
  // Well under the loop's longest sleep (1 s, see poll_timeout).
  std::optional<worker_state> reported;
  const auto until = clock::now() + std::chrono::milliseconds(500);
  while (clock::now() < until && reported != worker_state::overload) {
    auto m = next(100);
    if (m && m->second.cmd == command::heartbeat && m->second.load) reported = m->second.load->state;
  }
  CHECK(reported == worker_state::overload);
}

TEST_CASE("a handler reads the request header when it asks for it, inline and on a pool") {
  zmq::context_t context;
  running_broker b(context, unique("head"), 20);
  // The handler answers with what head() gives and the numbers the worker
  // read, whether the header was still encoded when it was asked for, and
  // the size of its frame.
  auto handler = [](job& j) {
    job_result r;
    const bool decoded_before = j.decoded_head.has_value();
    const std::size_t frame_bytes = j.head_frame != nullptr ? j.head_frame->size() : 0;
    const header& h = j.head();
    r.result = {{"title", std::string(h.get_string("title").value_or("-"))},
                {"id", h.get_uint("id").value_or(0)},
                {"head_request", h.get_uint("request").value_or(0)},
                {"request", j.request},
                {"attempt", j.attempt},
                {"decoded_before", decoded_before},
                {"frame_bytes", frame_bytes}};
    return r;
  };
  for (std::uint64_t threads : {0, 2}) {
    DYNAMIC_SECTION("threads " << threads) {
      worker_options options = options_for(b, "w-head", "head");
      options.threads = threads;
      options.capacity = 2;
      running_worker w(context, options, handler);
      raw_client c(context, b.frontend);
      // A header of more than 33 bytes, and a small one (its bytes live inside
      // the message_t and move with it between the codec and the handler).
      for (const std::string& title : {std::string(80, 't'), std::string("s")}) {
        nlohmann::json r = c.call("head", {{"id", 41}, {"title", title}}, "p");
        REQUIRE_FALSE(r.is_null());
        REQUIRE(r["code"] == 200);
        const nlohmann::json& got = r["result"];
        CHECK(got["title"] == title);
        CHECK(got["id"] == 41);
        CHECK(got["request"] == r["request"]);
        CHECK(got["head_request"] == r["request"]);
        CHECK(got["attempt"] == 1);
        CHECK(got["decoded_before"] == false);  // left encoded until asked for
        // Both sides of ZeroMQ's 33 bytes kept inside a message_t.
        if (title.size() == 1) {
          CHECK(got["frame_bytes"] <= 33);
        } else {
          CHECK(got["frame_bytes"] > 33);
        }
      }
    }
  }
}
