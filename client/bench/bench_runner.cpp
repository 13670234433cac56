#include "client/bench/bench_runner.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "client/bench/load_driver.hpp"
#include "shared/codec.hpp"

namespace carico {
namespace {

namespace fs = std::filesystem;

double cpu_percent(double before, double after, double seconds) {
  return seconds > 0 ? std::max(0.0, after - before) / seconds * 100.0 : 0;
}

// One request/reply over a fresh DEALER; empty when no reply came in time.
std::optional<client_reply> call(zmq::context_t& context, const std::string& endpoint,
                                 std::string_view service, std::string_view payload,
                                 milliseconds timeout) {
  zmq::socket_t s(context, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  header head;
  head.set("id", std::uint64_t{1});
  encode_client_request(service, head, zmq::message_t(payload.data(), payload.size())).send(s);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  zmq::multipart_t frames;
  if (!frames.recv(s)) return std::nullopt;
  decoded<client_reply> reply = decode_client_reply(std::move(frames));
  if (!reply) return std::nullopt;
  return std::move(*reply.value);
}

std::uint64_t stats_field(zmq::context_t& context, const std::string& endpoint,
                          const char* field) {
  auto reply = call(context, endpoint, "mmi.stats", "", milliseconds(2000));
  if (!reply) return 0;
  const msgpack::object* result = reply->head.find("result");
  if (result == nullptr) return 0;
  nlohmann::json j = to_json(*result);
  return j.value(field, std::uint64_t{0});
}

}  // namespace

std::string free_tcp_endpoint() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port on 127.0.0.1");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return "tcp://127.0.0.1:" + std::to_string(port);
}

bench_runner::bench_runner(bench_options options) : options_(std::move(options)) {
  // Absolute: a shipped-style broker starts in a directory of its own.
  const fs::path bin = fs::absolute(options_.bin_dir);
  broker_bin_ = (bin / "broker" / "carico-broker").string();
  worker_bin_ = (bin / "worker" / "carico-worker").string();
  bench_bin_ = fs::read_symlink("/proc/self/exe").string();
  for (const std::string& p : {broker_bin_, worker_bin_}) {
    if (!fs::exists(p)) throw std::runtime_error(p + " not found (set --bin-dir to the build directory)");
  }
  if (options_.work_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "carico-bench.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    work_dir_ = pattern;
    made_work_dir_ = true;
  } else {
    // Absolute: a shipped-style broker runs in a directory of its own.
    work_dir_ = fs::absolute(options_.work_dir).lexically_normal().string();
    fs::create_directories(work_dir_);
  }
}

bench_runner::~bench_runner() {
  if (made_work_dir_ && !options_.keep_work_dir) {
    std::error_code ignored;
    fs::remove_all(work_dir_, ignored);
  }
}

std::string bench_runner::log_path(const std::string& name) const {
  return work_dir_ + "/" + std::to_string(run_count_) + "-" + name + ".log";
}

// A JSON document of exactly options_.payload bytes (at least the fixed part).
zmq::message_t bench_runner::make_payload() const {
  const std::string prefix = R"({"title":"bench","content":")";
  const std::string suffix = R"("})";
  std::string doc = prefix;
  const std::size_t fixed = prefix.size() + suffix.size();
  const std::size_t content = options_.payload > fixed ? options_.payload - fixed : 1;
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzA BCD";
  for (std::size_t i = 0; i < content; ++i) doc += letters[i % (sizeof letters - 1)];
  doc += suffix;
  return zmq::message_t(doc.data(), doc.size());
}

void bench_runner::start_servers(const std::string& mode, servers& s, bool with_workers) {
  ++run_count_;
  s.frontend = free_tcp_endpoint();
  const std::string backend = free_tcp_endpoint();
  if (mode == "proxy") {
    s.broker = child_process({bench_bin_, "proxy", "--frontend", s.frontend, "--backend", backend},
                             log_path("proxy"));
  } else {
    // --broker-prefix goes before whatever stands in the broker's place.
    std::vector<std::string> argv;
    std::istringstream prefix(options_.broker_prefix);
    for (std::string word; prefix >> word;) argv.push_back(word);
    if (mode == "floor") {
      argv.insert(argv.end(), {bench_bin_, "mdp-floor", "--frontend", s.frontend, "--backend",
                               backend, "--heartbeat-ms", std::to_string(options_.heartbeat_ms)});
    } else if (runs_as_shipped(mode)) {
      // The broker as a user starts it: its two endpoints and the mode's flags,
      // everything else at its default. Its default files (carico-journal.db,
      // loadbalancer.log) land in a fresh directory it runs in; its stderr (the
      // console log, at its default level) goes to a file, as under start_cluster.sh.
      s.dir = work_dir_ + "/" + std::to_string(run_count_) + "-" + mode;
      fs::create_directories(s.dir);
      argv.insert(argv.end(), {broker_bin_, "--frontend", s.frontend, "--backend", backend});
      if (mode == "nojournal" || mode == "quiet") argv.insert(argv.end(), {"--journal", "none"});
      if (mode == "quiet") {
        argv.insert(argv.end(), {"--log-level", "warn", "--console-level", "warn"});
      }
      s.broker = child_process(argv, s.dir + "/broker.console.log", s.dir);
    } else {
      std::string journal = "none";
      if (mode == "journal" || mode == "text") {
        journal = work_dir_ + "/" + std::to_string(run_count_) + "-journal.db";
      }
      const std::size_t max_queue =
          mode == "queue" ? options_.queue_requests + 1000 : std::size_t{1000000};
      argv.insert(argv.end(), {broker_bin_, "--frontend", s.frontend, "--backend", backend,
                               "--journal", journal, "--log", log_path("loadbalancer"),
                               "--log-level", "warn", "--console-level", "warn",
                               "--heartbeat-ms", std::to_string(options_.heartbeat_ms),
                               "--liveness", std::to_string(options_.liveness), "--max-queue",
                               std::to_string(max_queue)});
    }
    if (!runs_as_shipped(mode)) {
      s.broker = child_process(argv, log_path(mode == "floor" ? "floor" : "broker"));
    }
  }
  if (with_workers) start_workers(mode, backend, s);
  if (mode == "proxy") {
    wait_for_proxy(s.frontend);
  } else if (with_workers) {
    wait_for_workers(s.frontend, options_.workers);
  } else {
    wait_for_workers(s.frontend, 0);
  }
  backend_ = backend;  // for workers started later (queue mode)
}

void bench_runner::start_workers(const std::string& mode, const std::string& backend, servers& s) {
  for (std::size_t i = 0; i < options_.workers; ++i) {
    const std::string name = "w" + std::to_string(i + 1);
    if (mode == "proxy") {
      s.workers.emplace_back(std::vector<std::string>{bench_bin_, "echo-worker", "--connect", backend},
                             log_path(name));
      continue;
    }
    if (mode != "text" && options_.worker_kind == "lean") {
      s.workers.emplace_back(
          std::vector<std::string>{bench_bin_, "mdp-worker", "--connect", backend, "--capacity",
                                   std::to_string(options_.worker_capacity), "--heartbeat-ms",
                                   std::to_string(options_.heartbeat_ms)},
          log_path(name));
      continue;
    }
    std::vector<std::string> argv = {worker_bin_, "--connect", backend, "--name", name,
                                     "--service", mode == "text" ? "text" : "echo",
                                     "--capacity", std::to_string(options_.worker_capacity),
                                     "--log-level", "warn",
                                     "--heartbeat-ms", std::to_string(options_.heartbeat_ms),
                                     "--liveness", std::to_string(options_.liveness)};
    if (mode != "text") {
      argv.insert(argv.end(), {"--threads", "0"});  // echo runs inline: no thread hand-off
    } else {
      argv.insert(argv.end(), {"--storage", work_dir_ + "/storage-" + std::to_string(run_count_) +
                                                "/" + name, "--clean"});
    }
    s.workers.emplace_back(argv, log_path(name));
  }
}

// Waits until the broker answers mmi.workers with `count` workers ready.
void bench_runner::wait_for_workers(const std::string& frontend, std::size_t count) {
  const time_point deadline = clock::now() + milliseconds(20000);
  while (clock::now() < deadline && !stop_signalled()) {
    if (auto reply = call(context_, frontend, "mmi.workers", "", milliseconds(500))) {
      std::size_t ready = 0;
      if (const msgpack::object* result = reply->head.find("result")) {
        for (const auto& w : to_json(*result).value("workers", nlohmann::json::array())) {
          if (w.value("state", "") == "ready") ++ready;
        }
      }
      if (ready == count) return;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  throw std::runtime_error("the broker did not report " + std::to_string(count) +
                           " ready workers within 20 s (logs in " + work_dir_ + ")");
}

// Waits until an echo request makes it through the proxy to a worker and back.
void bench_runner::wait_for_proxy(const std::string& frontend) {
  const time_point deadline = clock::now() + milliseconds(20000);
  while (clock::now() < deadline && !stop_signalled()) {
    if (call(context_, frontend, "echo", "ping", milliseconds(500))) return;
  }
  throw std::runtime_error("the raw proxy did not echo within 20 s (logs in " + work_dir_ + ")");
}

bool bench_runner::runs_as_shipped(const std::string& mode) {
  return mode == "shipped" || mode == "nojournal" || mode == "quiet";
}

bool bench_runner::known_mode(const std::string& mode) {
  return mode == "proxy" || mode == "floor" || mode == "broker" || mode == "journal" ||
         mode == "text" || mode == "failover" || mode == "queue" || runs_as_shipped(mode);
}

run_result bench_runner::run(const std::string& mode) {
  if (!known_mode(mode)) throw std::runtime_error("unknown mode " + mode + " (" + mode_list + ")");
  if (mode == "queue") return run_queue();
  return run_load(mode);
}

// The broker's files in a shipped-style run: sizes of its logs and journal.
void bench_runner::note_files(const std::string& dir, run_result& out) {
  std::uintmax_t log_bytes = 0, journal_bytes = 0, console_bytes = 0;
  std::error_code error;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, error)) {
    const std::string name = e.path().filename().string();
    const std::uintmax_t size = e.is_regular_file() ? e.file_size(error) : 0;
    if (name.rfind("loadbalancer", 0) == 0) log_bytes += size;
    if (name.rfind("carico-journal.db", 0) == 0) journal_bytes += size;
    if (name == "broker.console.log") console_bytes += size;
  }
  out.extra["broker_dir"] = dir;
  out.extra["log_file_bytes"] = log_bytes;
  out.extra["console_bytes"] = console_bytes;
  out.extra["journal_bytes"] = journal_bytes;
}

run_result bench_runner::run_load(const std::string& mode) {
  servers s;
  start_servers(mode, s, true);
  run_result out;
  out.mode = mode;
  out.payload_bytes = make_payload().size();
  out.clients = options_.clients;
  out.window = options_.window;
  out.workers = options_.workers;
  out.keyed = options_.keyed || runs_as_shipped(mode);

  load_options load;
  load.endpoint = s.frontend;
  load.service = mode == "text" ? "text" : "echo";
  load.clients = options_.clients;
  load.window = options_.window;
  load.threads = options_.client_threads;
  load.warmup = milliseconds(options_.warmup_ms);
  load.duration = milliseconds(options_.duration_ms);
  load.drain_timeout = milliseconds(std::max<long>(5000, 4 * options_.heartbeat_ms * options_.liveness));
  load.expect_echo = mode != "text";
  load.keyed = out.keyed;
  zmq::message_t payload = make_payload();
  load_driver driver(context_, load, payload);
  driver.start();

  std::this_thread::sleep_until(driver.measure_start());
  const proc_sample broker_before = s.broker.sample();
  std::vector<proc_sample> workers_before;
  for (child_process& w : s.workers) workers_before.push_back(w.sample());
  const proc_sample self_before = sample_process(::getpid());

  if (mode == "failover") {
    std::this_thread::sleep_until(driver.measure_start() + milliseconds(options_.duration_ms / 2));
    driver.mark_event();
    const pid_t killed = s.workers.front().pid();
    s.workers.front().kill_now();
    out.extra["killed_worker_pid"] = killed;
    out.extra["failover_bound_us"] = (options_.liveness * options_.heartbeat_ms + 100) * 1000;
  }
  std::this_thread::sleep_until(driver.measure_end());
  const proc_sample broker_after = s.broker.sample();
  const proc_sample self_after = sample_process(::getpid());
  double workers_cpu = 0;
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    const proc_sample after = s.workers[i].sample();
    if (after.cpu_seconds > 0) workers_cpu += after.cpu_seconds - workers_before[i].cpu_seconds;
  }
  out.load = driver.finish();
  // A wrapper (valgrind, strace, an LD_PRELOAD shim) writes its findings as the
  // broker exits: let it stop in its own time rather than after the usual grace.
  if (!options_.broker_prefix.empty() && mode != "proxy") s.broker.terminate(milliseconds(120000));
  if (!s.dir.empty()) note_files(s.dir, out);
  const double seconds = out.load.seconds;
  out.broker_cpu_percent = cpu_percent(broker_before.cpu_seconds, broker_after.cpu_seconds, seconds);
  out.broker_peak_rss_bytes = broker_after.peak_rss_bytes;
  out.workers_cpu_percent = cpu_percent(0, workers_cpu, seconds);
  out.bench_cpu_percent = cpu_percent(self_before.cpu_seconds, self_after.cpu_seconds, seconds);
  if (mode == "failover") {
    out.extra["failover_met"] = out.load.lost == 0 && out.load.errors == 0 &&
                                out.load.event_delay_us >= 0 &&
                                out.load.event_delay_us <= out.extra["failover_bound_us"].get<long>();
  }
  return out;
}

// queue_requests requests sent with no worker; the broker's memory once they
// are all queued; then the workers start and the queue drains.
run_result bench_runner::run_queue() {
  servers s;
  start_servers("queue", s, false);
  run_result out;
  out.mode = "queue";
  zmq::message_t payload = make_payload();
  out.payload_bytes = payload.size();
  out.clients = options_.clients;
  out.window = 0;
  out.workers = options_.workers;
  const std::uint64_t total = options_.queue_requests;
  const proc_sample idle = s.broker.sample();

  std::vector<zmq::socket_t> sockets;
  std::vector<zmq::pollitem_t> items;
  // The broker caps unanswered requests per client (10000 by default): spread
  // the queue over enough client sockets to stay well below it.
  const std::size_t sockets_needed =
      std::max<std::size_t>(options_.clients, (options_.queue_requests + 4999) / 5000);
  out.clients = sockets_needed;
  for (std::size_t i = 0; i < sockets_needed; ++i) {
    zmq::socket_t& sock = sockets.emplace_back(context_, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::rcvhwm, 0);
    sock.set(zmq::sockopt::sndhwm, 0);
    sock.connect(s.frontend);
  }
  for (zmq::socket_t& sock : sockets) items.push_back({sock.handle(), 0, ZMQ_POLLIN, 0});

  const time_point send_start = clock::now();
  header head;
  for (std::uint64_t n = 0; n < total && !stop_signalled(); ++n) {
    head.set("id", n);
    zmq::message_t body;
    body.copy(payload);
    encode_client_request("echo", head, std::move(body)).send(sockets[n % sockets.size()]);
  }
  // Queued means the broker counts them all as waiting.
  const time_point queue_deadline = clock::now() + milliseconds(600000);
  std::uint64_t queued = 0;
  while (clock::now() < queue_deadline && !stop_signalled()) {
    queued = stats_field(context_, s.frontend, "queued");
    if (queued >= total) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const double enqueue_seconds = std::chrono::duration<double>(clock::now() - send_start).count();
  const proc_sample full = s.broker.sample();
  const std::uint64_t limit = (std::uint64_t{64} << 20) + total * payload.size();
  out.extra["queued"] = queued;
  out.extra["queued_payload_bytes"] = total * payload.size();
  out.extra["rss_idle_bytes"] = idle.rss_bytes;
  out.extra["rss_queued_bytes"] = full.rss_bytes;
  out.extra["rss_limit_bytes"] = limit;
  out.extra["rss_met"] = full.rss_bytes <= limit;
  out.extra["enqueue_per_s"] = enqueue_seconds > 0 ? static_cast<double>(total) / enqueue_seconds : 0;

  // Workers arrive: every request must come back.
  const proc_sample broker_before = s.broker.sample();
  const proc_sample self_before = sample_process(::getpid());
  const time_point workers_start = clock::now();
  start_workers("queue", backend_, s);
  std::uint64_t received = 0;
  time_point first_reply{}, last_reply{};
  const time_point drain_deadline = clock::now() + milliseconds(600000);
  while (received < total && clock::now() < drain_deadline && !stop_signalled()) {
    zmq::poll(items.data(), items.size(), milliseconds(100));
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      for (int k = 0; k < 1024; ++k) {
        zmq::multipart_t frames;
        if (!frames.recv(sockets[i], ZMQ_DONTWAIT)) break;
        const time_point now = clock::now();
        if (received == 0) first_reply = now;
        last_reply = now;
        ++received;
        decoded<client_reply> reply = decode_client_reply(std::move(frames));
        if (!reply || reply->head.get_uint("code").value_or(0) != code::ok) {
          ++out.load.errors;
          if (out.load.first_error.empty()) {
            out.load.first_error = reply ? std::string(reply->head.get_string("error").value_or("?"))
                                         : reply.error;
          }
        }
      }
    }
  }
  const proc_sample broker_after = s.broker.sample();
  const proc_sample self_after = sample_process(::getpid());
  out.load.sent = total;
  out.load.answered = received;
  out.load.lost = total - received;
  out.load.errors += out.load.lost;
  out.load.seconds = received > 1 ? std::chrono::duration<double>(last_reply - first_reply).count() : 0;
  const double since_workers = std::chrono::duration<double>(last_reply - workers_start).count();
  out.extra["drain_seconds_from_workers_start"] = since_workers;
  out.broker_cpu_percent = cpu_percent(broker_before.cpu_seconds, broker_after.cpu_seconds, since_workers);
  out.broker_peak_rss_bytes = broker_after.peak_rss_bytes;
  out.bench_cpu_percent = cpu_percent(self_before.cpu_seconds, self_after.cpu_seconds, since_workers);
  return out;
}

}  // namespace carico
