// Hostile traffic against a real broker over tcp://127.0.0.1:*: malformed and
// abusive client and worker messages, floods and thousands of connections. For
// each, the broker answers (400/413/501/503) or sends DISCONNECT as the contract
// says, logs it, keeps serving a real echo worker, and its memory stays bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "broker/broker.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/log_capture.hpp"
#include "worker/worker.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;

namespace {

const std::string ready_byte = command_frame(command::ready);
const std::string reply_byte = command_frame(command::reply);
const std::string heartbeat_byte = command_frame(command::heartbeat);
const std::string disconnect_byte = command_frame(command::disconnect);

constexpr std::size_t test_max_message = 1 << 20;   // 1 MiB frames and messages
constexpr std::size_t test_max_payload = 256 << 10;  // 256 KiB payloads, then 413
constexpr std::size_t test_inflight = 5;             // requests in flight per client
constexpr std::size_t test_services = 32;            // distinct services

broker_options hostile_options() {
  broker_options o;
  o.frontend = "tcp://127.0.0.1:*";
  o.backend = "tcp://127.0.0.1:*";
  o.heartbeat_ms = 50;
  o.liveness = 20;  // floods must not make the test's own worker look dead
  o.limits.max_message_bytes = test_max_message;
  o.limits.max_frames = 16;
  o.max_payload_bytes = test_max_payload;
  o.max_inflight_per_client = test_inflight;
  o.max_services = test_services;
  return o;
}

// A broker on its own thread, logging into a capture; endpoints resolved.
struct hostile_broker {
  log_capture logs;
  std::unique_ptr<broker> b;
  std::string frontend;
  std::string backend;
  std::thread thread;

  hostile_broker(zmq::context_t& context, broker_options options = hostile_options())
      : b(std::make_unique<broker>(context, std::move(options), logs.logger())),
        frontend(b->frontend_endpoint()),
        backend(b->backend_endpoint()),
        thread([this] { b->run(); }) {}
  ~hostile_broker() {
    b->stop();
    thread.join();
  }
};

// Resident memory of this process (broker included), from /proc/self/statm.
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::string packed(const json& j) { return header::from_json(j).value->encode_string(); }

// A map nested depth times: {"a": {"a": ... 0}}.
std::string deep_map(int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) out += "\x81\xa1" "a";
  out += '\0';
  return out;
}

// A map16 with n entries "k": 0 (keys repeat; the count is what matters).
std::string wide_map(std::uint16_t n) {
  std::string out = "\xde";
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n & 0xff);
  for (std::uint16_t i = 0; i < n; ++i) out += std::string("\xa1k\x00", 3);
  return out;
}

// {"k": <str32 of n bytes>}.
std::string big_header(std::size_t n) {
  std::string out = "\x81\xa1k\xdb";
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  out += std::string(n, 'x');
  return out;
}

// A raw DEALER on the backend with a chosen routing id.
struct raw_worker {
  zmq::socket_t socket;
  raw_worker(zmq::context_t& context, const std::string& endpoint, const std::string& id)
      : socket(context, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::routing_id, id);
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    zmq::multipart_t m;
    for (const std::string& f : frames) m.addstr(f);
    m.send(socket);
  }
  // Waits for a DISCONNECT, skipping heartbeats.
  bool wait_disconnect(milliseconds timeout = 3000ms) {
    const time_point deadline = clock::now() + timeout;
    while (clock::now() < deadline) {
      zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, milliseconds(poll_timeout(deadline)));
      zmq::multipart_t m;
      while (m.recv(socket, ZMQ_DONTWAIT)) {
        if (m.size() == 3 && m[2].to_string() == disconnect_byte) return true;
        m.clear();
      }
    }
    return false;
  }
};

// A real carico worker running the echo service, drained on destruction.
struct echo_worker {
  worker w;
  std::thread thread;
  echo_worker(zmq::context_t& context, const std::string& backend)
      : w(context, {.connect = backend, .service = "echo", .name = "echo-1"}, echo_handler()),
        thread([this] { w.run(); }) {}
  ~echo_worker() {
    w.drain();
    thread.join();
  }
};

struct client_case {
  std::string kind;                 // what is wrong with it
  std::vector<std::string> frames;  // as sent by a DEALER
  std::uint64_t code;               // the broker's answer; 0: dropped, no reply
  std::string logged;               // a piece of the broker's log line
};

struct worker_case {
  std::string kind;                 // what is wrong with it
  bool register_first;              // send a valid READY before it
  std::vector<std::string> frames;  // as sent
  std::string logged;               // a piece of the broker's log line
};

// The echo worker answers a valid request: the broker still serves.
void require_still_serving(fake_client& client, const std::string& payload) {
  std::optional<client_view> r = client.call("echo", {{"id", payload}}, payload, 5000ms);
  REQUIRE(r);
  CHECK(r->code() == 200);
  REQUIRE(r->body.size() == 1);
  CHECK(r->body[0] == payload);
}

}  // namespace

TEST_CASE("receive_bounded can keep the routing id apart from the frames", "[hostile][limits]") {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  const std::string endpoint = unique_endpoint("bounded");
  router.bind(endpoint);
  dealer.set(zmq::sockopt::routing_id, "peer");
  dealer.connect(endpoint);
  auto send = [&](const std::vector<std::string>& frames) {
    zmq::multipart_t m;
    for (const std::string& f : frames) m.addstr(f);
    m.send(dealer);
  };
  auto strings = [](const zmq::multipart_t& m) {
    std::vector<std::string> out;
    for (const zmq::message_t& f : m) out.push_back(f.to_string());
    return out;
  };
  auto receive = [&](zmq::multipart_t& frames, const message_limits& limits, std::size_t& seen,
                     zmq::message_t& id) {
    receive_status status = receive_status::none;
    REQUIRE(eventually([&] {
      status = receive_bounded(router, frames, limits, &seen, &id);
      return status != receive_status::none;
    }));
    return status;
  };
  message_limits limits;
  zmq::multipart_t frames;  // reused, as the broker does
  SECTION("whole messages, one after another into the same multipart") {
    for (int i = 0; i < 20; ++i) {
      const std::vector<std::string> sent(static_cast<std::size_t>(1 + i % 8), std::to_string(i));
      send(sent);
      std::size_t seen = 0;
      zmq::message_t id;
      REQUIRE(receive(frames, limits, seen, id) == receive_status::ok);
      CHECK(id.to_string() == "peer");
      CHECK(strings(frames) == sent);
      CHECK(seen == sent.size() + 1);
    }
  }
  SECTION("over the frame cap the id still counts, and is still apart") {
    limits.max_frames = 3;
    send({"a", "b", "c"});
    std::size_t seen = 0;
    zmq::message_t id;
    REQUIRE(receive(frames, limits, seen, id) == receive_status::too_many_frames);
    CHECK(id.to_string() == "peer");
    CHECK(strings(frames) == std::vector<std::string>{"a", "b"});
    CHECK(seen == 4);
  }
  SECTION("with no routing_id argument, the id is the first frame, as before") {
    send({"a"});
    std::size_t seen = 0;
    REQUIRE(eventually([&] {
      return receive_bounded(router, frames, limits, &seen) != receive_status::none;
    }));
    CHECK(strings(frames) == std::vector<std::string>{"peer", "a"});
  }
}

TEST_CASE("malformed and oversized client messages are answered and logged", "[hostile]") {
  zmq::context_t context;
  hostile_broker hb(context);
  echo_worker echo(context, hb.backend);
  fake_client good(context, hb.frontend);
  REQUIRE(wait_for_workers(good, 1, 5000ms).size() == 1);

  const std::string doc = R"({"title":"t","content":"a"})";
  const std::string map_ok = packed({{"id", 1}});
  std::vector<std::string> too_many_frames = {"", sig_c, "echo"};
  for (int i = 0; i < 17; ++i) too_many_frames.push_back("x");
  std::vector<std::string> empty_frames(8, "");
  const std::vector<client_case> cases = {
      // Neither client signature: not a client's message, dropped with a log line.
      {"one empty frame", {""}, 0, "no protocol signature"},
      {"truncated signature", {"", "MDPC0", "echo", map_ok, doc}, 0, "frame 1 must be MDPC01 or MDPCX1"},
      {"wrong signature", {"", "MDPC02", "echo", map_ok, doc}, 0, "frame 1 must be MDPC01 or MDPCX1"},
      {"worker signature on the frontend", {"", sig_w, ready_byte, "echo"}, 0, "frame 1 must be MDPC01"},
      {"empty frames everywhere", empty_frames, 0, "frame 1 must be MDPC01"},
      // A stock client's malformed request: MDP/0.1 has no error reply.
      {"stock request, frame 0 not empty", {"x", std::string(client_signature), "echo", doc}, 0, "frame 0 must be empty"},
      {"stock request, empty service", {"", std::string(client_signature), "", doc}, 0, "service name is empty"},
      {"frame 0 not empty", {"x", sig_c, "echo", map_ok, doc}, 400, "frame 0 must be empty"},
      {"no service frame", {"", sig_c}, 400, "no service frame"},
      {"empty service name", {"", sig_c, "", map_ok, doc}, 400, "service name is empty"},
      {"service name of 256 bytes", {"", sig_c, std::string(256, 's'), map_ok, doc}, 400, "longer than 255"},
      {"no header frame", {"", sig_c, "echo"}, 400, "no header frame"},
      {"three body frames", {"", sig_c, "echo", map_ok, doc, doc}, 400, "3 body frames"},
      {"empty header frame", {"", sig_c, "echo", "", doc}, 400, "header frame is empty"},
      {"header not MessagePack", {"", sig_c, "echo", "\xc1\xc1\xc1", doc}, 400, "not valid MessagePack"},
      {"header truncated", {"", sig_c, "echo", packed({{"title", "abcdef"}}).substr(0, 5), doc}, 400, "not valid MessagePack"},
      {"header an array", {"", sig_c, "echo", "\x92\x01\x02", doc}, 400, "not a MessagePack map"},
      {"header a string", {"", sig_c, "echo", "\xa3" "abc", doc}, 400, "not a MessagePack map"},
      {"header with trailing bytes", {"", sig_c, "echo", map_ok + "\x01", doc}, 400, "trailing bytes"},
      {"header with non-string keys", {"", sig_c, "echo", "\x81\x01\x02", doc}, 400, "keys must be strings"},
      {"header nested 40 deep", {"", sig_c, "echo", deep_map(40), doc}, 400, "malformed client message"},
      {"header map of 5000 entries", {"", sig_c, "echo", wide_map(5000), doc}, 400, "malformed client message"},
      {"header frame of 70 KB", {"", sig_c, "echo", big_header(70000), doc}, 400, "header frame has"},
      {"header declaring a 4 GB string", {"", sig_c, "echo", "\x81\xa1k\xdb\xff\xff\xff\xff", doc}, 400, "malformed client message"},
      {"more frames than the cap", too_many_frames, 400, "frames; at most 16"},
      {"payload over the service limit", {"", sig_c, "echo", map_ok, std::string(test_max_payload + 1, 'p')}, 413, "request too large"},
      {"message over the size limit in two frames", {"", sig_c, "echo", std::string(60000, 'h'), std::string(test_max_message - 1000, 'p')}, 413, "oversized client message"},
      {"unknown mmi service", {"", sig_c, "mmi.nothing", map_ok, ""}, 501, ""},
      {"mmi.request without a key", {"", sig_c, "mmi.request", map_ok, ""}, 400, ""},
  };
  fake_client bad(context, hb.frontend);
  for (const client_case& c : cases) {
    INFO(c.kind);
    const std::size_t logged_before = c.logged.empty() ? 0 : hb.logs.count(c.logged);
    bad.send_raw(c.frames);
    if (c.code == 0) {  // dropped: a log line, no reply
      CHECK(hb.logs.wait_for(c.logged, logged_before + 1));
      CHECK_FALSE(bad.recv_raw(100ms));
      continue;
    }
    std::optional<client_view> r = bad.recv(3000ms);
    REQUIRE(r);
    CHECK(r->code() == c.code);
    CHECK(r->head["status"] == "error");
    CHECK(r->head["error"].is_string());
    if (!c.logged.empty()) CHECK(hb.logs.wait_for(c.logged, logged_before + 1));
  }
  // A frame over ZMQ_MAXMSGSIZE: libzmq drops the connection, the broker never sees it.
  {
    fake_client huge(context, hb.frontend);
    huge.send_raw({"", sig_c, "echo", map_ok, std::string(test_max_message + 1, 'z')});
    CHECK_FALSE(huge.recv(300ms));
  }
  // Odd but well-formed headers are passed through: the request is served.
  {
    std::optional<client_view> r = good.call("echo", {{"id", {{"nested", {1, 2}}}}, {"client", 5}, {"title", nullptr}}, "odd");
    REQUIRE(r);
    CHECK(r->code() == 200);
  }
  require_still_serving(good, "after the malformed");
  json stats = mmi_stats(good);
  CHECK(stats["malformed"].get<std::uint64_t>() >= cases.size() - 3);
}

TEST_CASE("one client cannot fill the broker: in-flight cap and service cap answer 503", "[hostile]") {
  zmq::context_t context;
  hostile_broker hb(context);
  echo_worker echo(context, hb.backend);
  fake_client good(context, hb.frontend);
  REQUIRE(wait_for_workers(good, 1, 5000ms).size() == 1);

  // Greedy fills its cap with requests no worker serves...
  fake_client greedy(context, hb.frontend);
  for (std::size_t i = 0; i < test_inflight; ++i) greedy.send("nobody", {{"id", i}}, "x");
  CHECK_FALSE(greedy.recv(200ms));  // queued, not refused
  // ... so its next request, to any service, is refused, and logged.
  std::optional<client_view> refused = greedy.call("echo", {{"id", 99}}, "x");
  REQUIRE(refused);
  CHECK(refused->code() == 503);
  CHECK(refused->head["id"] == 99);
  CHECK(refused->head["error"].get<std::string>().find("too many requests in flight") != std::string::npos);
  CHECK(hb.logs.wait_for("request refused: too many requests in flight"));
  // Everyone else is still served.
  require_still_serving(good, "others are served");

  // New service names are refused beyond max_services, and logged.
  bool capped = false;
  for (std::size_t i = 0; i < test_services + 2 && !capped; ++i) {
    fake_client c(context, hb.frontend);
    std::optional<client_view> r = c.call("svc-" + std::to_string(i), {{"id", i}}, "x", 50ms);
    if (r && r->code() == 503) capped = true;
  }
  CHECK(capped);
  CHECK(hb.logs.wait_for("too many services"));
  require_still_serving(good, "after the service flood");
}

TEST_CASE("malformed and abusive worker messages get DISCONNECT and a log line", "[hostile]") {
  zmq::context_t context;
  hostile_broker hb(context);
  echo_worker echo(context, hb.backend);
  fake_client good(context, hb.frontend);
  REQUIRE(wait_for_workers(good, 1, 5000ms).size() == 1);

  const std::string info = packed({{"name", "raw"}, {"capacity", 1}});
  std::vector<std::string> too_many = {"", sig_w, reply_byte, "addr", "", packed({{"request", 1}})};
  for (int i = 0; i < 12; ++i) too_many.push_back("r");
  const std::vector<worker_case> cases = {
      {"unknown command byte", false, {"", sig_w, "\x09", "echo"}, "unknown command byte"},
      {"command of two bytes", false, {"", sig_w, "\x01\x01", "echo"}, "command frame must be one byte"},
      {"empty command frame", false, {"", sig_w, "", "echo"}, "command frame must be one byte"},
      {"wrong signature", false, {"", "MDPW02", ready_byte, "echo"}, "frame 1 must be MDPW01"},
      {"client signature on the backend", false, {"", sig_c, "echo", "x"}, "frame 1 must be MDPW01"},
      {"frame 0 not empty", false, {"x", sig_w, ready_byte, "echo"}, "frame 0 must be empty"},
      {"no command frame", false, {"", sig_w}, "no command frame"},
      {"READY without a service", false, {"", sig_w, ready_byte}, "READY takes a service"},
      {"READY with an empty service", false, {"", sig_w, ready_byte, ""}, "service name is empty"},
      {"READY info not a map", false, {"", sig_w, ready_byte, "echo", "\x93\x01\x02\x03"}, "READY info"},
      {"READY capacity 0", false, {"", sig_w, ready_byte, "echo", packed({{"capacity", 0}})}, "capacity must be"},
      {"READY name not a string", false, {"", sig_w, ready_byte, "echo", packed({{"name", 7}})}, "name must be a string"},
      {"READY with extra frames", false, {"", sig_w, ready_byte, "echo", info, "more"}, "READY takes a service"},
      {"HEARTBEAT from an unknown worker", false, {"", sig_w, heartbeat_byte}, "HEARTBEAT from unknown worker"},
      {"REPLY from an unknown worker", false, {"", sig_w, reply_byte, "addr", "", packed({{"request", 1}})}, "REPLY from unknown worker"},
      {"READY twice", true, {"", sig_w, ready_byte, "raw", info}, "READY from a worker already registered"},
      {"REQUEST sent by a worker", true, {"", sig_w, "\x02", "addr", "", packed({{"request", 1}}), "p"}, "REQUEST sent by a worker"},
      {"HEARTBEAT with a bad load report", true, {"", sig_w, heartbeat_byte, packed({{"state", 1}})}, "load state must be a string"},
      {"HEARTBEAT load report not MessagePack", true, {"", sig_w, heartbeat_byte, "\xc1"}, "HEARTBEAT load report"},
      {"DISCONNECT with extra frames", true, {"", sig_w, disconnect_byte, "x"}, "DISCONNECT takes no further frames"},
      {"REPLY without a header", true, {"", sig_w, reply_byte, "addr", ""}, "REPLY has no header frame"},
      {"REPLY without its empty frame", true, {"", sig_w, reply_byte, "addr"}, "REPLY takes an address"},
      {"READY for an mmi. service", false, {"", sig_w, ready_byte, "mmi.x", info}, "mmi. names are the broker's"},
      {"stock READY for an mmi. service", false, {"", std::string(worker_signature), ready_byte, "mmi.evil"}, "mmi. names are the broker's"},
      {"stock READY with an info map", false, {"", std::string(worker_signature), ready_byte, "echo", info}, "READY takes a service frame and nothing more"},
      {"stock HEARTBEAT from a carico worker", true, {"", std::string(worker_signature), heartbeat_byte}, "MDPW01 from a worker that joined with MDPWX1"},
      {"READY heartbeat_ms out of range", false, {"", sig_w, ready_byte, "echo", packed({{"heartbeat_ms", 5}})}, "heartbeat_ms must be"},
      {"REPLY frame 4 not empty", true, {"", sig_w, reply_byte, "addr", "x", packed({{"request", 1}})}, "REPLY frame 4 must be empty"},
      {"more frames than the cap", true, too_many, "frames; at most 16"},
  };
  int n = 0;
  for (const worker_case& c : cases) {
    INFO(c.kind);
    const std::string name = "raw-" + std::to_string(n++);
    raw_worker w(context, hb.backend, name);
    if (c.register_first) {
      w.send({"", sig_w, ready_byte, "raw", packed({{"name", name}, {"capacity", 1}})});
      REQUIRE(hb.logs.wait_for("worker " + name + " joined"));
    }
    const std::size_t logged_before = hb.logs.count(c.logged);
    w.send(c.frames);
    CHECK(w.wait_disconnect());
    CHECK(hb.logs.wait_for(c.logged, logged_before + 1));
  }
  // A reply for a request it does not hold breaks RFC 7: DISCONNECT, logged.
  {
    raw_worker w(context, hb.backend, "replier");
    w.send({"", sig_w, ready_byte, "raw", packed({{"name", "replier"}})});
    REQUIRE(hb.logs.wait_for("worker replier joined"));
    w.send({"", sig_w, reply_byte, "987654", "", packed({{"request", 987654}, {"code", 200}})});
    CHECK(hb.logs.wait_for("REPLY for request 987654, which it does not hold"));
    CHECK(w.wait_disconnect(2000ms));
  }
  require_still_serving(good, "after the worker abuse");}

TEST_CASE("READY floods and heartbeat storms leave the broker serving", "[hostile]") {
  zmq::context_t context;
  hostile_broker hb(context);
  echo_worker echo(context, hb.backend);
  fake_client good(context, hb.frontend);
  REQUIRE(wait_for_workers(good, 1, 5000ms).size() == 1);

  // 1000 READYs from one identity: every second one is a protocol error.
  raw_worker flood(context, hb.backend, "flood");
  const std::string info = packed({{"name", "flood"}});
  for (int i = 0; i < 1000; ++i) flood.send({"", sig_w, ready_byte, "raw", info});
  CHECK(hb.logs.wait_for("READY from a worker already registered", 400, 10000ms));
  CHECK(wait_for_workers(good, 1, 5000ms).size() <= 2);  // never more than one "flood"

  // 20000 heartbeats from a registered worker: it stays, the broker serves.
  raw_worker storm(context, hb.backend, "storm");
  storm.send({"", sig_w, ready_byte, "raw", packed({{"name", "storm"}})});
  REQUIRE(hb.logs.wait_for("worker storm joined"));
  const std::string load = packed({{"state", "overload"}});  // the storm takes no work
  for (int i = 0; i < 20000; ++i) storm.send({"", sig_w, heartbeat_byte, load});
  require_still_serving(good, "during the storm");
  CHECK_FALSE(storm.wait_disconnect(200ms));
}

TEST_CASE("2000 connections sending garbage, then floods: answered, bounded memory", "[hostile]") {
  // Each DEALER over tcp costs a few descriptors on both ends, in this process.
  rlimit fds{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &fds) == 0);
  if (fds.rlim_cur < 16384) {
    fds.rlim_cur = std::min<rlim_t>(16384, fds.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &fds);
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &fds) == 0);
  }
  const std::size_t connections = fds.rlim_cur >= 10000 ? 2000 : (fds.rlim_cur - 200) / 5;
  INFO("connections: " << connections << " (open files limit " << fds.rlim_cur << ")");
  REQUIRE(connections >= 200);

  zmq::context_t context;
  hostile_broker hb(context);
  echo_worker echo(context, hb.backend);
  fake_client good(context, hb.frontend);
  REQUIRE(wait_for_workers(good, 1, 5000ms).size() == 1);

  const std::size_t rss_start = rss_bytes();
  {
    zmq::context_t many;  // its own context: more sockets than the default 1023
    many.set(zmq::ctxopt::max_sockets, static_cast<int>(connections + 64));
    std::vector<std::unique_ptr<fake_client>> clients;
    clients.reserve(connections);
    for (std::size_t i = 0; i < connections; ++i) {
      clients.push_back(std::make_unique<fake_client>(many, hb.frontend));
      clients.back()->send_raw({"", sig_c, "garbage-" + std::to_string(i)});  // no header: 400
    }
    std::size_t answered = 0;
    for (auto& c : clients) {
      std::optional<client_view> r = c->recv(10000ms);
      if (r && r->code() == 400) ++answered;
    }
    CHECK(answered == connections);
    CHECK(hb.logs.wait_for("malformed client message", connections, 10000ms));
    require_still_serving(good, "with 2000 connections open");
  }
  require_still_serving(good, "after 2000 connections closed");

  // Floods of malformed requests, answered and read: memory must not grow with them.
  fake_client flooder(context, hb.frontend);
  auto flood = [&](int n) {
    for (int i = 0; i < n; ++i) {
      flooder.send_raw({"", sig_c, "echo", "\xc1", std::string(1000, 'x')});
      if (i % 100 == 99) {
        for (int k = 0; k < 100; ++k) REQUIRE(flooder.recv(5000ms));
      }
    }
  };
  flood(10000);
  const std::size_t rss_warm = rss_bytes();
  flood(20000);
  const std::size_t rss_end = rss_bytes();
  INFO("rss start " << rss_start << " warm " << rss_warm << " end " << rss_end);
  CHECK(rss_end < rss_warm + (32u << 20));   // no growth per message
#ifndef __SANITIZE_ADDRESS__  // ASan's quarantine and shadow memory hold far more
  CHECK(rss_end < rss_start + (256u << 20));  // 2000 connections came and went
#endif
  require_still_serving(good, "after the floods");
}

// client_quota on its own: the per-client cap, the byte budget, and a client
// forgotten when its count returns to zero.
TEST_CASE("client_quota counts per client, caps, and forgets a client at zero") {
  client_quota quota(2, 1000);
  const std::string a = "client-a", b = "client-b";
  CHECK_FALSE(quota.refusal(a, 100));
  quota.add(a, 100);
  quota.add(a, 100);
  REQUIRE(quota.refusal(a, 100));  // a has 2 in flight: its cap
  CHECK(quota.refusal(a, 100)->find("too many requests in flight: 2") != std::string::npos);
  CHECK_FALSE(quota.refusal(b, 100));  // b is not a
  quota.add(b, 700);
  CHECK(quota.bytes() == 900);
  REQUIRE(quota.refusal(b, 200));  // 1100 bytes > 1000: the budget
  CHECK(quota.refusal(b, 200)->find("memory budget") != std::string::npos);
  CHECK(quota.clients() == 2);
  // Released to zero, each client is forgotten, and a later add starts it
  // from nothing.
  quota.release(b, 700);
  CHECK(quota.in_flight(b) == 0);
  CHECK(quota.clients() == 1);
  quota.release(a, 100);
  quota.release(a, 100);
  CHECK(quota.in_flight(a) == 0);
  CHECK(quota.clients() == 0);
  CHECK(quota.bytes() == 0);
  quota.release(a, 100);  // nothing counted: ignored
  CHECK(quota.bytes() == 0);
  quota.add(a, 10);
  CHECK(quota.in_flight(a) == 1);
  CHECK(quota.in_flight(b) == 0);
  quota.add(b, 10);
  CHECK(quota.in_flight(a) == 1);
  CHECK(quota.in_flight(b) == 1);
  // Many clients: a's count is found again after the map has grown.
  for (int i = 0; i < 1000; ++i) quota.add("c" + std::to_string(i), 0);
  quota.add(a, 10);
  CHECK(quota.in_flight(a) == 2);
  CHECK(quota.clients() == 1002);
}
