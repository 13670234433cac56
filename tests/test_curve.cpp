// CurveZMQ: key files, allow lists, the bind policy, and a broker in --curve
// mode over tcp://127.0.0.1:* with a real echo worker and clients.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.hpp"
#include "broker/security_flags.hpp"
#include "client/client.hpp"
#include "shared/curve.hpp"
#include "tests/support/fake_peers.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/support/scratch_files.hpp"
#include "worker/worker.hpp"

using namespace carico;
using namespace carico::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// Keys of a small secure cluster: the broker, one client, one worker.
struct cluster_keys {
  curve_key_pair broker = generate_key_pair();
  curve_key_pair client = generate_key_pair();
  curve_key_pair worker = generate_key_pair();
  curve_key_pair stranger = generate_key_pair();  // on no list

  curve_client_keys as(const curve_key_pair& own) const { return {broker.public_key, own}; }
};

broker_options curve_options(const cluster_keys& keys) {
  broker_options o;
  o.frontend = "tcp://127.0.0.1:*";
  o.backend = "tcp://127.0.0.1:*";
  o.heartbeat_ms = 50;
  o.liveness = 10;
  o.curve = true;
  o.curve_key = keys.broker;
  o.curve_clients.add(keys.client.public_key, "client-1");
  o.curve_workers.add(keys.worker.public_key, "worker-1");
  return o;
}

struct curve_broker {
  log_capture logs;
  std::unique_ptr<broker> b;
  std::string frontend;
  std::string backend;
  std::thread thread;
  curve_broker(zmq::context_t& context, broker_options options)
      : b(std::make_unique<broker>(context, std::move(options), logs.logger())),
        frontend(b->frontend_endpoint()),
        backend(b->backend_endpoint()),
        thread([this] { b->run(); }) {}
  ~curve_broker() {
    b->stop();
    thread.join();
  }
};

struct echo_worker {
  worker w;
  std::thread thread;
  echo_worker(zmq::context_t& context, worker_options options)
      : w(context, std::move(options), echo_handler()), thread([this] { w.run(); }) {}
  ~echo_worker() {
    w.stop();
    thread.join();
  }
};

worker_options echo_options(const std::string& backend, const std::string& name,
                            curve_client_keys keys) {
  worker_options o;
  o.connect = backend;
  o.service = "echo";
  o.name = name;
  o.heartbeat_ms = 50;
  o.liveness = 10;
  o.curve = std::move(keys);
  return o;
}

client_options client_with(const std::string& frontend, curve_client_keys keys) {
  client_options o;
  o.endpoint = frontend;
  o.timeout_ms = 3000;
  o.retries = 0;  // a refused client's one attempt ends in 504 (no resends, before no_broker_ms)
  o.curve = std::move(keys);
  return o;
}

}  // namespace

TEST_CASE("key pairs are saved with safe permissions and load back", "[curve]") {
  scratch_dir dir("curve");
  const curve_key_pair pair = generate_key_pair();
  CHECK(is_z85_key(pair.public_key));
  CHECK(is_z85_key(pair.secret_key));
  save_key_pair(dir / "keys", "broker", pair);
  CHECK(mode_of(dir / "keys/broker.key") == 0600);
  CHECK(mode_of(dir / "keys") == 0700);
  const curve_key_pair loaded = load_key_pair(dir / "keys/broker.key");
  CHECK(loaded.public_key == pair.public_key);
  CHECK(loaded.secret_key == pair.secret_key);
  CHECK(load_public_key(dir / "keys/broker.pub") == pair.public_key);
  const std::string text = read_file(dir / "keys/broker.pub");
  CHECK(text.find(pair.secret_key) == std::string::npos);

  SECTION("existing files are not overwritten without asking") {
    CHECK_THROWS_AS(save_key_pair(dir / "keys", "broker", generate_key_pair()), curve_error);
    CHECK_NOTHROW(save_key_pair(dir / "keys", "broker", generate_key_pair(), true));
  }
  SECTION("a secret key readable by others is refused") {
    ::chmod((dir / "keys/broker.key").c_str(), 0644);
    CHECK_THROWS_WITH(load_key_pair(dir / "keys/broker.key"), Catch::Contains("chmod 600"));
  }
  SECTION("a public key that does not match the secret is refused") {
    const curve_key_pair other = generate_key_pair();
    std::ofstream(dir / "keys/mixed.key") << "public-key = \"" << other.public_key
                                          << "\"\nsecret-key = \"" << pair.secret_key << "\"\n";
    ::chmod((dir / "keys/mixed.key").c_str(), 0600);
    CHECK_THROWS_WITH(load_key_pair(dir / "keys/mixed.key"), Catch::Contains("does not belong"));
  }
  SECTION("bad names are refused") {
    CHECK_THROWS_AS(save_key_pair(dir / "keys", "../evil", pair), curve_error);
    CHECK_THROWS_AS(save_key_pair(dir / "keys", "", pair), curve_error);
  }
}

TEST_CASE("allow lists load from a directory of .pub files or a file of keys", "[curve]") {
  scratch_dir dir("curve");
  const curve_key_pair a = generate_key_pair();
  const curve_key_pair b = generate_key_pair();
  save_key_pair(dir / "clients", "alice", a);
  save_key_pair(dir / "clients", "bob", b);
  allow_list from_dir = allow_list::load(dir / "clients");
  CHECK(from_dir.size() == 2);
  CHECK(from_dir.contains_z85(a.public_key));
  CHECK(from_dir.contains_z85(b.public_key));
  CHECK_FALSE(from_dir.contains_z85(generate_key_pair().public_key));

  std::ofstream(dir / "list.txt") << "# allowed workers\n\n" << a.public_key << "\nbob " << b.public_key << "\n";
  allow_list from_file = allow_list::load(dir / "list.txt");
  CHECK(from_file.size() == 2);
  CHECK(from_file.contains_z85(b.public_key));

  std::ofstream(dir / "bad.txt") << "not-a-key\n";
  CHECK_THROWS_WITH(allow_list::load(dir / "bad.txt"), Catch::Contains("bad.txt:1"));
  CHECK_THROWS_AS(allow_list::load(dir / "missing"), curve_error);
}

TEST_CASE("only loopback and local transports may be bound without curve", "[curve]") {
  CHECK(is_local_endpoint("tcp://127.0.0.1:5555"));
  CHECK(is_local_endpoint("tcp://127.0.0.1:*"));
  CHECK(is_local_endpoint("tcp://127.1.2.3:80"));
  CHECK(is_local_endpoint("tcp://localhost:5555"));
  CHECK(is_local_endpoint("tcp://[::1]:5555"));
  CHECK(is_local_endpoint("inproc://x"));
  CHECK(is_local_endpoint("ipc:///tmp/x"));
  CHECK_FALSE(is_local_endpoint("tcp://*:5555"));
  CHECK_FALSE(is_local_endpoint("tcp://0.0.0.0:5555"));
  CHECK_FALSE(is_local_endpoint("tcp://10.0.0.1:5555"));
  CHECK_FALSE(is_local_endpoint("tcp://eth0:5555"));
  CHECK_FALSE(is_local_endpoint("tcp://127.0.0.1.evil.com:5555"));
  CHECK_FALSE(is_local_endpoint("tcp://[::]:5555"));
  CHECK_FALSE(is_local_endpoint("udp://127.0.0.1:5555"));

  zmq::context_t context;
  broker_options open;
  open.frontend = "tcp://0.0.0.0:*";
  open.backend = "tcp://127.0.0.1:*";
  CHECK_THROWS_WITH(broker(context, open), Catch::Contains("without --curve"));
  open.insecure = true;
  CHECK_NOTHROW(broker(context, open));
}

TEST_CASE("broker flags load keys and allow lists from --curve-dir", "[curve]") {
  scratch_dir dir("curve");
  save_key_pair(dir / "keys", "broker", generate_key_pair());
  save_key_pair(dir / "keys/clients", "c1", generate_key_pair());
  save_key_pair(dir / "keys/workers", "w1", generate_key_pair());
  save_key_pair(dir / "keys/workers", "w2", generate_key_pair());
  broker_security_flags flags;
  flags.curve = true;
  flags.dir = dir / "keys";
  flags.max_message_bytes = 1 << 20;
  broker_options options;
  apply_broker_security(flags, options);
  CHECK(options.curve);
  CHECK(options.curve_clients.size() == 1);
  CHECK(options.curve_workers.size() == 2);
  CHECK(options.limits.max_message_bytes == (1u << 20));
  CHECK(options.max_payload_bytes == (1u << 20) - (64u << 10));
  flags.dir = dir / "nowhere";
  CHECK_THROWS_AS(apply_broker_security(flags, options), curve_error);
}

TEST_CASE("a curve broker serves allowed peers and refuses everyone else", "[curve]") {
  const cluster_keys keys;
  zmq::context_t context;
  curve_broker cb(context, curve_options(keys));
  echo_worker good_worker(context, echo_options(cb.backend, "good", keys.as(keys.worker)));

  SECTION("an allowed client reaches an allowed worker, encrypted") {
    client c(context, client_with(cb.frontend, keys.as(keys.client)));
    reply r = c.call("echo", json::object(), "secret payload");
    REQUIRE(r.code == 200);
    REQUIRE(r.body.size() == 1);
    CHECK(r.body[0] == "secret payload");
    CHECK(r.head["worker"] == "good");
    CHECK(cb.logs.wait_for("curve: admitted client-1"));
    CHECK(cb.logs.wait_for("curve: admitted worker-1"));
  }
  SECTION("a client with a key on no list gets nothing; the refusal is logged") {
    client c(context, client_with(cb.frontend, keys.as(keys.stranger)));
    reply r = c.call("echo", json::object(), "x", std::chrono::milliseconds(500));
    CHECK(r.code == 504);
    CHECK(r.local);
    CHECK(cb.logs.wait_for("is not on the allow list"));
    CHECK(cb.logs.contains(keys.stranger.public_key));
  }
  SECTION("a client without curve gets nothing; the refusal is logged") {
    fake_client plain(context, cb.frontend);
    plain.send("echo", json::object(), "x");
    CHECK_FALSE(plain.recv(500ms));
    CHECK(cb.logs.wait_for("does not speak CURVE"));
  }
  SECTION("a client that expects another broker key gets nothing") {
    curve_client_keys wrong{keys.stranger.public_key, keys.client};
    client c(context, client_with(cb.frontend, wrong));
    reply r = c.call("echo", json::object(), "x", std::chrono::milliseconds(500));
    CHECK(r.code == 504);
    CHECK(r.local);
    CHECK(cb.logs.wait_for("curve: refused a peer on frontend"));
  }
  SECTION("a client key cannot register as a worker") {
    echo_worker intruder(context, echo_options(cb.backend, "intruder", keys.as(keys.client)));
    CHECK(cb.logs.wait_for("on carico.backend: key " + keys.client.public_key + " is not on the allow list"));
    client c(context, client_with(cb.frontend, keys.as(keys.client)));
    // Only the good worker serves; the intruder never joined.
    for (int i = 0; i < 4; ++i) {
      reply r = c.call("echo", json::object(), "x");
      REQUIRE(r.code == 200);
      CHECK(r.head["worker"] == "good");
    }
    CHECK_FALSE(cb.logs.contains("worker intruder joined"));
  }
  SECTION("a worker key cannot be used as a client") {
    client c(context, client_with(cb.frontend, keys.as(keys.worker)));
    reply r = c.call("echo", json::object(), "x", std::chrono::milliseconds(500));
    CHECK(r.code == 504);
    CHECK(cb.logs.wait_for("on carico.frontend: key " + keys.worker.public_key + " is not on the allow list"));
  }
  SECTION("a worker without curve never joins; the refusal is logged") {
    echo_worker plain(context, echo_options(cb.backend, "plain", {}));
    CHECK(cb.logs.wait_for("curve: refused a peer on backend"));
    CHECK_FALSE(cb.logs.contains("worker plain joined"));
  }
}
