#include "worker/worker.hpp"

#include <cstdio>
#include <cstring>

#include <unistd.h>

#include "shared/endpoint_list.hpp"
#include "shared/logging.hpp"
#include "shared/map_writer.hpp"

namespace carico {
namespace {

std::string default_name() { return host_name() + "-" + std::to_string(::getpid()); }

zmq::message_t uint_frame(std::uint64_t v) { return zmq::message_t(&v, sizeof v); }

std::uint64_t frame_uint(const zmq::message_t& m) {
  std::uint64_t v = 0;
  if (m.size() == sizeof v) std::memcpy(&v, m.data(), sizeof v);
  return v;
}

// READY with the worker's info map.
zmq::multipart_t ready_message(const worker_options& o) {
  worker_info info{o.name, o.capacity, static_cast<std::uint64_t>(::getpid()), host_name(),
                   static_cast<std::uint64_t>(o.heartbeat_ms)};
  return encode_ready(o.protocol, o.service, info);
}

}  // namespace

const header& job::head() {
  if (!decoded_head) {
    decoded_head.emplace();
    if (head_frame != nullptr && head_frame->size() > 0) {
      header_result h = header::decode(*head_frame);
      if (h) decoded_head = std::move(*h.value);  // read in place by the codec: it decodes
    }
  }
  return *decoded_head;
}

service_handler echo_handler() {
  return [](job& j) {
    job_result r;
    r.body.push_back(std::move(j.payload));
    for (zmq::message_t& f : j.more) r.body.push_back(std::move(f));
    return r;
  };
}

worker::worker(zmq::context_t& context, worker_options options, service_handler handler,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      log_(logger ? std::move(logger) : null_logger()),
      context_(context),
      results_(context, zmq::socket_type::pull),
      backoff_ms_(options_.reconnect_min_ms) {
  if (options_.name.empty()) options_.name = default_name();
  if (options_.capacity == 0) options_.capacity = 1;
  endpoint_list listed = parse_endpoint_list(options_.connect);
  if (!listed) throw std::invalid_argument(listed.error);
  endpoints_ = std::move(listed.endpoints);
  // More threads than requests held at once would never all be busy.
  options_.threads = std::min(options_.threads.value_or(options_.capacity), options_.capacity);
  results_endpoint_ = "inproc://carico-results-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
  results_.bind(results_endpoint_);
  for (std::uint64_t i = 0; i < *options_.threads; ++i) threads_.emplace_back([this] { task_loop(); });
}

worker::~worker() {
  close_broker();  // if run() did not end normally: its monitor stops first
  {
    std::lock_guard lock(tasks_mutex_);
    quit_ = true;
  }
  stopping_ = true;  // cancels simulated work in progress
  tasks_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void worker::drain() {
  draining_ = true;
  waker_.wake();
}

void worker::stop() {
  stopping_ = true;
  waker_.wake();
}

void worker::set_overloaded(bool overloaded) {
  forced_overload_ = overloaded;
  waker_.wake();
}

// ------------------------------------------------------------------ broker link

std::string worker::broker() const {
  std::lock_guard lock(broker_mutex_);
  return broker_endpoint_;
}

std::unique_ptr<zmq::socket_t> worker::open_socket(const std::string& endpoint, bool immediate) {
  auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket->set(zmq::sockopt::linger, immediate ? 0 : 1000);
  if (immediate) socket->set(zmq::sockopt::immediate, true);
  apply_limits(*socket, options_.limits);
  apply_curve_client(*socket, options_.curve);
  socket->connect(endpoint);
  return socket;
}


// One endpoint: a DEALER to it and READY at once, queued by ZeroMQ until the
// connection completes (as before lists existed). Several: one DEALER per
// endpoint, READY for none yet: try_register() picks the first that connects.
void worker::connect() {
  if (endpoints_.size() == 1) {
    broker_ = open_socket(endpoints_.front(), false);
    send_to_broker(ready_message(options_));
    registered(endpoints_.front());
    return;
  }
  for (const std::string& e : endpoints_) candidates_.push_back(open_socket(e, true));
  looking_since_ = clock::now();
  look_warned_ = false;
  log_->info("worker {}: looking for the active broker among {}", options_.name,
             describe_endpoints(endpoints_));
}

// Several endpoints: READY goes to the first candidate whose connection has
// completed (ZMQ_IMMEDIATE: writable only then), which becomes the broker;
// the others are closed, so nothing reaches a broker that has not had READY.
void worker::try_register() {
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    if ((candidates_[i]->get(zmq::sockopt::events) & ZMQ_POLLOUT) == 0) continue;
    if (!ready_message(options_).send(*candidates_[i], ZMQ_DONTWAIT)) continue;
    broker_ = std::move(candidates_[i]);
    broker_->set(zmq::sockopt::linger, 1000);
    candidates_.clear();
    watch_broker();
    registered(endpoints_[i]);
    return;
  }
  const long patience = options_.heartbeat_ms * options_.liveness;
  if (!look_warned_ && clock::now() - looking_since_ >= milliseconds(patience)) {
    look_warned_ = true;
    log_->warn("worker {}: no broker at {} has accepted a connection in {} ms; still trying",
               options_.name, describe_endpoints(endpoints_), patience);
  }
}

// READY has gone (or is queued) to the broker at endpoint: a new connection.
void worker::registered(const std::string& endpoint) {
  ++generation_;
  const time_point now = clock::now();
  broker_expires_at_ = now + milliseconds(options_.heartbeat_ms * options_.liveness);
  next_heartbeat_ = now;  // report load straight after READY
  state_ = worker_state::ready;
  {
    std::lock_guard lock(broker_mutex_);
    broker_endpoint_ = endpoint;
  }
  const std::string threads = threads_.empty()       ? std::string("inline")
                              : threads_.size() == 1 ? std::string("1 thread")
                                                     : std::to_string(threads_.size()) + " threads";
  if (endpoints_.size() == 1) {
    log_->info("worker {} connecting to {} for service {} (capacity {}, {})", options_.name,
               endpoint, options_.service, options_.capacity, threads);
  } else {
    log_->info("worker {} registered with the broker at {} (READY sent) for service {} "
               "(capacity {}, {})",
               options_.name, endpoint, options_.service, options_.capacity, threads);
  }
}

void worker::schedule_reconnect(std::string_view why) {
  log_->warn("worker {}: {}; reconnecting in {} ms", options_.name, why, backoff_ms_);
  if (broker_) broker_->set(zmq::sockopt::linger, 0);
  close_broker();
  reconnect_at_ = clock::now() + milliseconds(backoff_ms_);
  backoff_ms_ = std::min(backoff_ms_ * 2, options_.reconnect_max_ms);
}

// Several endpoints: the broker's connection is watched, so that a broker
// that dies (its connection closed: kill -9, a crash, a fenced broker's exit)
// is left at once for the one taking over, not after liveness × heartbeat of
// silence. (One endpoint: its DEALER reconnects by itself, and silence says
// when READY must go again.) Attached once the connection has completed, so
// any disconnect it reports is this connection's.
void worker::watch_broker() {
  const std::string endpoint = "inproc://carico-worker-monitor-" +
                               std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                               std::to_string(++monitors_);
  if (zmq_socket_monitor(broker_->handle(), endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
    throw zmq::error_t();
  }
  broker_monitor_ = zmq::socket_t(context_, zmq::socket_type::pair);
  broker_monitor_.set(zmq::sockopt::linger, 0);
  broker_monitor_.connect(endpoint);
}

// Reads the broker connection's events: a disconnect means the broker is gone.
void worker::watch_broker_connection() {
  if (!broker_monitor_ || !broker_) return;
  zmq::multipart_t event;
  if (!event.recv(broker_monitor_, ZMQ_DONTWAIT)) return;
  schedule_reconnect("lost the connection to the broker at " + broker());
}

// Closes the broker's socket, its monitor stopped first: libzmq's end of the
// monitor pipe would otherwise block on an event nobody reads.
void worker::close_broker() {
  if (broker_ && broker_monitor_) zmq_socket_monitor(broker_->handle(), nullptr, 0);
  broker_monitor_.close();
  broker_.reset();
}

void worker::run() {
  // A worker that cannot do its job joins all the same, overload with the
  // reason: an operator sees why in `carico-client workers`, and it serves
  // as soon as the check passes, with no restart.
  if (options_.health_check) check_health(clock::now());
  connect();
  while (!stopping_) {
    if (stop_signalled() && !draining_) draining_ = true;
    if (auto overload = take_overload_signal()) forced_overload_ = *overload;
    take_failures();
    if (!unhealthy_.empty() && clock::now() >= next_health_check_) check_health(clock::now());
    update_state();
    watch_broker_connection();
    if (!broker_ && candidates_.empty() && clock::now() >= reconnect_at_) connect();
    if (!candidates_.empty()) try_register();

    try {
      on_tick();  // may send a heartbeat: sends go before the receives
      batch results, from_broker;
      if (!threads_.empty()) results = handle_results();  // sends on broker_
      if (broker_) from_broker = handle_broker();
      // Each socket was read until it had nothing more (not stopped at the
      // batch cap): everything delivered so far has been read.
      const bool all_read = results.emptied && from_broker.emptied;
      if (all_read && draining_ && in_flight_ == 0) {
        // Nothing held and nothing more delivered: a request the broker sent
        // before it saw our drain has been read and answered by now.
        if (broker_) send_to_broker(encode_disconnect(options_.protocol));
        log_->info("worker {} drained: DISCONNECT sent, leaving", options_.name);
        break;
      }
      // Then each socket's last operation was a receive that found nothing, so
      // the wait is sound (see wait_for_input) without another pass to prove
      // it, unless a state change is still to be reported: that is a send,
      // and it goes first (the top of the loop).
      const bool report_due =
          results.received + from_broker.received > 0 && wanted_state() != state_;
      if (all_read && !report_due && !stopping_) wait();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
  if (broker_) broker_->set(zmq::sockopt::linger, stopping_ ? 0 : 1000);
  close_broker();
  candidates_.clear();
}

// Sleeps until the broker link, the task results or the waker may have input,
// or the next heartbeat, broker expiry or reconnect is due.
void worker::wait() {
  time_point deadline = broker_ ? std::min(next_heartbeat_, broker_expires_at_) : reconnect_at_;
  if (!unhealthy_.empty()) deadline = std::min(deadline, next_health_check_);
  if (!candidates_.empty()) {
    // Looking for a broker: no heartbeat, expiry or reconnect is due.
    wait_for_broker(unhealthy_.empty() ? clock::now() + milliseconds(60000) : next_health_check_);
    return;
  }
  // Inline, no task thread ever sends results: the pipe is not polled.
  zmq::pollitem_t items[4] = {waker_.pollitem()};
  std::size_t count = 1;
  if (broker_) items[count++] = {broker_->handle(), 0, ZMQ_POLLIN, 0};
  if (broker_ && broker_monitor_) items[count++] = {broker_monitor_.handle(), 0, ZMQ_POLLIN, 0};
  if (!threads_.empty()) items[count++] = {results_.handle(), 0, ZMQ_POLLIN, 0};
  wait_for_input(items, count, poll_timeout(deadline));
  if (items[0].revents & ZMQ_POLLIN) waker_.drain();
}

// Looking for the active broker: sleeps until a candidate's connection
// completes (POLLOUT, level-triggered: zmq::poll, not wait_for_input), the
// waker or task results, a health check, or the "still trying" warning.
void worker::wait_for_broker(time_point deadline) {
  if (!look_warned_) {
    deadline = std::min(deadline, looking_since_ + milliseconds(options_.heartbeat_ms *
                                                                options_.liveness));
  }
  std::vector<zmq::pollitem_t> items{waker_.pollitem()};
  if (!threads_.empty()) items.push_back({results_.handle(), 0, ZMQ_POLLIN, 0});
  for (auto& c : candidates_) items.push_back({c->handle(), 0, ZMQ_POLLOUT, 0});
  zmq::poll(items.data(), items.size(), milliseconds(poll_timeout(deadline)));
  if (items[0].revents & ZMQ_POLLIN) waker_.drain();
}

// Reads up to a batch of messages; any message proves the broker alive.
worker::batch worker::handle_broker() {
  bool heard = false;
  zmq::multipart_t frames;  // reused: its deque keeps its map and block between messages
  std::size_t received = 0;
  for (; received < 256 && broker_ && !stopping_; ++received) {
    if (!frames.recv(*broker_, ZMQ_DONTWAIT)) return {received, true};
    if (!heard) {
      heard = true;
      broker_expires_at_ = clock::now() + milliseconds(options_.heartbeat_ms * options_.liveness);
      backoff_ms_ = options_.reconnect_min_ms;
    }
    // A REQUEST's header stays encoded where raw_map reads it (request_head_):
    // the worker needs two numbers of it, and a handler rarely the rest.
    decoded<worker_message> message =
        decode_worker_message(std::move(frames), header_mode::keep_raw, &request_head_);
    if (!message) {
      log_->warn("worker {}: invalid message from broker: {}", options_.name, message.error);
      continue;
    }
    if (message->from != options_.protocol) {
      log_->warn("worker {}: {} message from a broker spoken to in {}; ignored", options_.name,
                 worker_signature_of(message->from), worker_signature_of(options_.protocol));
      continue;
    }
    switch (message->cmd) {
      case command::request: {
        task t = take_request(std::move(*message));
        if (threads_.empty()) {
          serve_inline(std::move(t));
          break;
        }
        ++in_flight_;
        {
          std::lock_guard lock(tasks_mutex_);
          tasks_.push_back(std::move(t));
        }
        tasks_ready_.notify_one();
        break;
      }
      case command::heartbeat: break;
      case command::disconnect:
        schedule_reconnect("broker sent DISCONNECT");
        return {received + 1, false};
      default:
        log_->warn("worker {}: unexpected {} from broker", options_.name,
                   command_name(message->cmd));
    }
  }
  return {received, false};
}

worker::batch worker::handle_results() {
  std::size_t received = 0;
  for (; received < 256; ++received) {
    zmq::multipart_t frames;
    if (!frames.recv(results_, ZMQ_DONTWAIT)) return {received, true};
    --in_flight_;
    const std::uint64_t generation = frame_uint(frames[0]);
    frames.pop();
    // A request from a broker connection that is gone: its reply is dropped.
    // The broker it goes to now (another one after a failover, or the same
    // one restarted) does not hold it from us and would answer DISCONNECT; it
    // has it from its journal and gives it out again under its number.
    if (generation != generation_ || !broker_) continue;
    if (failure_noted_) {
      // The handler could not do this one (503): the broker hears `overload`
      // before the 503, so the request goes to another worker, not back here.
      take_failures();
      update_state();
    }
    send_to_broker(std::move(frames));  // already an MDPW01 REPLY
  }
  return {received, false};
}

// Never blocks: with no connection (a broker that is down, or refused our CURVE
// key) a DEALER send would block forever, and stop() could not end run(). What
// cannot be sent is dropped; the broker's liveness and re-dispatch cover it.
void worker::send_to_broker(zmq::multipart_t&& frames) {
  if (!frames.send(*broker_, ZMQ_DONTWAIT)) {
    log_->debug("worker {}: no connection to the broker; message dropped", options_.name);
  }
}

void worker::on_tick() {
  const time_point now = clock::now();
  if (!broker_) return;
  if (now >= broker_expires_at_) {
    schedule_reconnect("broker silent for " +
                       std::to_string(options_.heartbeat_ms * options_.liveness) + " ms");
    return;
  }
  if (now >= next_heartbeat_) send_heartbeat();
}

void worker::send_heartbeat() {
  probe_.sample();
  load_report load{state_, in_flight_, probe_.rss_bytes(), probe_.mem_percent(),
                   probe_.cpu_percent(),
                   state_ == worker_state::overload ? overload_reason() : std::string()};
  send_to_broker(encode_heartbeat(options_.protocol, &load));
  next_heartbeat_ = clock::now() + milliseconds(options_.heartbeat_ms);
}

worker_state worker::wanted_state() {
  if (draining_) return worker_state::drain;
  // Hysteresis: enter at the limit, leave 5 points below; enter when more
  // requests are held than the capacity advertised (work still running from an
  // older connection, or a broker giving more than asked), leave at half of it.
  // With the default pool (one thread per request held) that is "more requests
  // than threads"; with threads < capacity, waiting for a thread is accepted.
  const double mem = probe_.mem_percent();
  if (mem >= options_.overload_mem_percent) mem_overloaded_ = true;
  else if (mem < options_.overload_mem_percent - 5) mem_overloaded_ = false;
  // Inline, a request is answered before the next is read: never saturated.
  if (in_flight_ > options_.capacity) saturated_ = true;
  else if (in_flight_ <= options_.capacity / 2) saturated_ = false;
  if (!unhealthy_.empty() || forced_overload_ || mem_overloaded_ || saturated_) {
    return worker_state::overload;
  }
  return worker_state::ready;
}

// Why the worker is overload, for its load report and log.
std::string worker::overload_reason() const {
  if (!unhealthy_.empty()) return unhealthy_;
  if (forced_overload_) return "overload forced (SIGUSR1 or set_overloaded)";
  if (mem_overloaded_) {
    char text[96];
    std::snprintf(text, sizeof text, "memory at %.1f%% (limit %.1f%%)", probe_.mem_percent(),
                  options_.overload_mem_percent);
    return text;
  }
  if (saturated_) {
    return "holding " + std::to_string(in_flight_) + " requests for a capacity of " +
           std::to_string(options_.capacity);
  }
  return {};
}

void worker::note_failure(const job_result& result) {
  if (result.code != code::queue_full || !options_.health_check) return;
  {
    std::lock_guard lock(failure_mutex_);
    failure_ = result.error;
  }
  failure_noted_ = true;
  waker_.wake();
}

void worker::take_failures() {
  if (!failure_noted_.exchange(false)) return;
  std::string reason;
  {
    std::lock_guard lock(failure_mutex_);
    reason = std::move(failure_);
  }
  if (reason.empty()) reason = "the service answered 503: not executed here";
  if (unhealthy_.empty()) {
    log_->warn("worker {}: cannot serve: {}; overload until the check passes (every {} ms)",
               options_.name, reason, options_.health_check_ms);
  }
  unhealthy_ = std::move(reason);
  // One interval at least before the check: a probe of one byte may pass on
  // a disk too full for a document.
  next_health_check_ = clock::now() + milliseconds(options_.health_check_ms);
}

void worker::check_health(time_point now) {
  std::string reason;
  try {
    reason = options_.health_check();
  } catch (const std::exception& e) {
    reason = std::string("health check failed: ") + e.what();
  }
  if (reason.empty()) {
    if (!unhealthy_.empty()) log_->info("worker {}: health check passed: can serve again", options_.name);
    unhealthy_.clear();
    return;
  }
  if (unhealthy_.empty()) {
    log_->warn("worker {}: cannot serve: {}; overload until the check passes (every {} ms)",
               options_.name, reason, options_.health_check_ms);
  }
  unhealthy_ = std::move(reason);
  next_health_check_ = now + milliseconds(std::max(1L, options_.health_check_ms));
}

void worker::update_state() {
  const worker_state wanted = wanted_state();
  if (wanted == state_) return;
  const std::string why = wanted == worker_state::overload ? " (" + overload_reason() + ")" : "";
  log_->info("worker {}: state {} -> {}{}", options_.name, state_name(state_), state_name(wanted),
             why);
  state_ = wanted;
  if (broker_) send_heartbeat();  // tell the broker at once
}

// ------------------------------------------------------------------ running requests

// Inline: the handler runs here on the I/O thread and the reply goes straight
// to the broker; no queue, no thread hand-off, nothing held in flight.
void worker::serve_inline(task&& t) {
  job j = make_job(t);
  job_result result = run_handler(j);
  if (stopping_) return;  // stop(): nothing more is sent
  take_failures();
  // A drain or overload that began while the handler ran reaches the broker
  // before this reply frees capacity there, as it would with a pool.
  update_state();
  send_reply(t.address, t.request, std::move(result));
}

// A REQUEST as the loop hands it on: the two numbers the worker needs, read
// now (request_head_ reads the header where it lies), and the header kept
// as it came for a handler that asks for it.
worker::task worker::take_request(worker_message&& m) {
  task t;
  t.generation = generation_;
  t.address = std::move(m.address);
  auto read = [&t](const auto& h) {  // a raw_view or a header
    t.request = h.get_uint("request");
    t.attempt = h.get_uint("attempt").value_or(0);
  };
  if (m.head_frame.size() > 0) {
    read(request_head_.over(m.head_frame.data()));
    t.head_frame = std::move(m.head_frame);
  } else if (m.head) {
    read(*m.head);
    t.head = std::move(m.head);
  }
  // The first body frame is the payload (an empty one when there is none);
  // a stock client's further frames follow, for the service to judge.
  if (!m.body.empty()) t.payload = std::move(m.body.front());
  for (std::size_t i = 1; i < m.body.size(); ++i) t.more.push_back(std::move(m.body[i]));
  return t;
}

job worker::make_job(task& t) {
  job j;
  j.request = t.request.value_or(0);
  j.attempt = t.attempt;
  j.payload = std::move(t.payload);
  j.more = std::move(t.more);
  if (options_.protocol == dialect::mdp) {
    // Unique across workers sharing a store and across restarts: the time,
    // this process and a counter.
    const auto ms = std::chrono::duration_cast<milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    j.local_key = "mdp-" + std::to_string(ms.count()) + "-" + std::to_string(::getpid()) + "-" +
                  std::to_string(++local_keys_);
  }
  j.cancel = &stopping_;
  j.head_frame = &t.head_frame;
  j.decoded_head = std::move(t.head);
  return j;
}

void worker::task_loop() {
  zmq::socket_t results(context_, zmq::socket_type::push);
  results.set(zmq::sockopt::linger, 0);
  results.connect(results_endpoint_);
  for (;;) {
    std::optional<task> t;
    {
      std::unique_lock lock(tasks_mutex_);
      tasks_ready_.wait(lock, [this] { return quit_ || !tasks_.empty(); });
      if (quit_) return;
      t.emplace(std::move(tasks_.front()));
      tasks_.pop_front();
    }
    job j = make_job(*t);
    job_result result = run_handler(j);
    zmq::multipart_t frames = make_reply(std::move(t->address), t->request, std::move(result));
    frames.push(uint_frame(t->generation));
    frames.send(results);
  }
}

// The handler's result, or 500 when it throws.
job_result worker::run_handler(job& j) {
  try {
    job_result result = handler_(j);
    note_failure(result);
    return result;
  } catch (const std::exception& e) {
    log_->error("worker {}: request {} failed: {}", options_.name, j.request, e.what());
    job_result result;
    result.code = code::worker_failed;
    result.error = std::string("worker failed: ") + e.what();
    return result;
  }
}

// The reply header for a request; a result over the message limit becomes a
// 500 first (result is changed in place).
zmq::message_t worker::reply_head(std::optional<std::uint64_t> request, job_result& result) {
  std::size_t bytes = 0;
  for (const zmq::message_t& f : result.body) bytes += f.size();
  if (bytes > default_max_payload_bytes(options_.limits.max_message_bytes)) {
    log_->error("worker {}: result of {} bytes is over the message limit", options_.name, bytes);
    result = job_result{};
    result.code = code::worker_failed;
    result.error = "result of " + std::to_string(bytes) + " bytes is too large to send";
  }
  // Written straight into one buffer per thread (the loop's and each task
  // thread's): no header zone, no re-encode.
  thread_local map_writer head;
  const bool has_result = !result.result.is_null();
  head.begin(2 + (request ? 1 : 0) + (result.error.empty() ? 0 : 1) + (has_result ? 1 : 0));
  if (request) head.add("request", *request);
  head.add("code", result.code);
  head.add("status", result.code == code::ok ? "ok" : "error");
  if (!result.error.empty()) head.add("error", result.error);
  if (has_result) {
    const std::vector<std::uint8_t> value = nlohmann::json::to_msgpack(result.result);
    head.add_raw("result", std::string_view(reinterpret_cast<const char*>(value.data()), value.size()));
  }
  return head.to_message();
}

// The MDPW01 REPLY for a request (for a task thread, which hands it over).
zmq::multipart_t worker::make_reply(zmq::message_t&& address, std::optional<std::uint64_t> request,
                                    job_result&& result) {
  zmq::message_t head = reply_head(request, result);
  if (options_.protocol == dialect::mdp) mdp_body(result);
  return encode_reply(options_.protocol, std::move(address), std::move(head),
                      std::move(result.body));
}

// A stock broker passes the body alone to the client, which has no header to
// read a code or a result from: the result payload frames when there are
// any, else one frame of JSON text, the `result` for a 200 and {code, error}
// otherwise.
void worker::mdp_body(job_result& result) {
  if (!result.body.empty()) return;
  nlohmann::json text = result.result;
  if (result.code != code::ok) {
    text = {{"code", result.code}, {"error", result.error}};
  } else if (text.is_null()) {
    text = nlohmann::json::object();
  }
  const std::string dumped = text.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  result.body.emplace_back(dumped.data(), dumped.size());
}

// The same REPLY sent from the loop thread frame by frame: encode_reply's
// frames, with no multipart to build. Dropped, like send_to_broker's, when the
// broker cannot take it.
void worker::send_reply(zmq::message_t& address, std::optional<std::uint64_t> request,
                        job_result&& result) {
  zmq::message_t head = reply_head(request, result);
  if (options_.protocol == dialect::mdp) mdp_body(result);
  const std::string_view to(static_cast<const char*>(address.data()), address.size());
  if (!send_addressed(*broker_, {}, options_.protocol, command::reply, to, &head,
                      result.body.data(), result.body.size(), true)) {
    log_->debug("worker {}: no connection to the broker; reply dropped", options_.name);
  }
}

}  // namespace carico
