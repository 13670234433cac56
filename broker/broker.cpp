// The loop: sockets, batches of messages, the tick, and the sends that end a
// batch. The rooms it wires are the other broker_*.cpp files (broker.hpp).
#include "broker/broker.hpp"

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "broker/allocator.hpp"
#include "broker/broker_util.hpp"

namespace carico {
namespace {

// Messages read from one socket before the loop looks at the other one.
constexpr int io_batch = 256;

// The dialect frame 1 of a worker message names, if any (for a DISCONNECT in kind).
std::optional<dialect> worker_dialect_of(const zmq::multipart_t& frames) {
  if (frames.size() < 2) return std::nullopt;
  if (frame_equals(frames[1], worker_signature)) return dialect::mdp;
  if (frame_equals(frames[1], worker_ext_signature)) return dialect::carico;
  return std::nullopt;
}

}  // namespace

std::string hex_id(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

broker::broker(zmq::context_t& context, broker_options options,
               std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      log_(logger ? std::move(logger) : null_logger()),
      access_(log_),
      frontend_(context, zmq::socket_type::router),
      backend_(context, zmq::socket_type::router),
      to_clients_(frontend_,
                  [this](std::string_view client, int error) { on_reply_refused(client, error); }),
      to_workers_(backend_),
      expiry_(options_.heartbeat_ms * options_.liveness),
      answered_(options_.remembered_replies),
      quota_(options_.max_inflight_per_client, options_.max_held_bytes),
      monitor_(options_.snapshot_every) {
  // Replies a client has not read wait in ZeroMQ, up to client_send_hwm of them:
  // a client that sends and never reads cannot grow the broker without bound.
  // Mandatory routing makes a full client (or a gone one) a send error the
  // broker sees (send_to_client), instead of a silent drop.
  frontend_.set(zmq::sockopt::sndhwm, options_.client_send_hwm);
  frontend_.set(zmq::sockopt::router_mandatory, true);
  // The loop takes requests into its own queues as fast as they come: a deep
  // ZeroMQ buffer per client adds nothing but memory (each buffered frame can
  // hold an 8 KiB receive buffer in ZeroMQ's I/O thread).
  frontend_.set(zmq::sockopt::rcvhwm, options_.client_hwm);
  frontend_.set(zmq::sockopt::linger, 200);
  backend_.set(zmq::sockopt::linger, 200);
  secure_sockets(context);
  frontend_.bind(options_.frontend);
  backend_.bind(options_.backend);
  started_at_ = clock::now();
  mark_batch();
  next_tick_ =
      std::min(started_at_ + milliseconds(options_.heartbeat_ms), monitor_.next_publish());
  if (!options_.journal_path.empty()) open_journal();
  log_->info("broker listening: clients on {}, workers on {} (allocator: {})",
             frontend_endpoint(), backend_endpoint(), allocator_name());
}

broker::~broker() = default;

// Refuses an open door (a non-loopback bind without CURVE, unless insecure),
// then sets message limits and, with curve, CURVE and the ZAP handler on both
// sockets. Before bind: a peer must never meet an unprotected socket.
void broker::secure_sockets(zmq::context_t& context) {
  for (const std::string* endpoint : {&options_.frontend, &options_.backend}) {
    if (!options_.curve && !options_.insecure && !is_local_endpoint(*endpoint)) {
      throw std::invalid_argument(
          "refusing to bind " + *endpoint + " without --curve: anyone who can reach it could "
          "send work or register as a worker. Use --curve (see docs/security.md), bind "
          "127.0.0.1, or pass --insecure on a network you trust");
    }
  }
  apply_limits(frontend_, options_.limits);
  apply_limits(backend_, options_.limits);
  if (!options_.curve) return;
  if (options_.curve_clients.empty()) log_->warn("curve: the client allow list is empty");
  if (options_.curve_workers.empty()) log_->warn("curve: the worker allow list is empty");
  zap_ = std::make_unique<zap_handler>(context, log_);
  zap_->allow(frontend_zap_domain, options_.curve_clients);
  zap_->allow(backend_zap_domain, options_.curve_workers);
  zap_->monitor(frontend_, "frontend");
  zap_->monitor(backend_, "backend");
  zap_->start();
  apply_curve_server(frontend_, options_.curve_key, frontend_zap_domain);
  apply_curve_server(backend_, options_.curve_key, backend_zap_domain);
  log_->info("curve: on; broker key {}, {} client keys, {} worker keys",
             options_.curve_key.public_key, options_.curve_clients.size(),
             options_.curve_workers.size());
}

std::string broker::frontend_endpoint() const {
  return frontend_.get(zmq::sockopt::last_endpoint);
}

std::string broker::backend_endpoint() const { return backend_.get(zmq::sockopt::last_endpoint); }

void broker::stop() {
  stopping_ = true;
  waker_.wake();
}

void broker::begin_shutdown() {
  shutting_down_ = true;
  shutdown_deadline_ = clock::now() + milliseconds(options_.shutdown_grace_ms);
  next_tick_ = std::min(next_tick_, shutdown_deadline_);
  std::size_t held = 0;
  for (const auto& [identity, w] : workers_) held += w->in_flight.size();
  log_->info("broker shutting down: refusing new requests, waiting up to {} ms for the {} "
             "requests workers hold",
             options_.shutdown_grace_ms, held);
}

void broker::run() {
  // A busy broker goes from one receive batch to the next; it waits only after
  // a pass that found nothing on either socket. Then each socket's last
  // operation was a receive that found nothing, so wait_for_input, which costs
  // one system call where zmq::poll costs five, is sound.
  bool idle = false;
  while (!stopping_) {
    if (stop_signalled() && !shutting_down_) begin_shutdown();
    if (shutting_down_) {
      std::size_t held = 0;
      for (const auto& [identity, w] : workers_) held += w->in_flight.size();
      if (held == 0 || clock::now() >= shutdown_deadline_) break;
    }
    try {
      if (idle) {
        zmq::pollitem_t items[] = {
            {backend_.handle(), 0, ZMQ_POLLIN, 0},
            {frontend_.handle(), 0, ZMQ_POLLIN, 0},
            waker_.pollitem(),
            journal_commits_.pollitem(),
        };
        wait_for_input(items, journal_ ? 4 : 3, poll_timeout(next_tick_));
        if (items[2].revents & ZMQ_POLLIN) waker_.drain();
        if (items[3].revents & ZMQ_POLLIN) journal_commits_.drain();
      }
      // Sends come first, so that the receives below are each socket's last
      // operation. Workers before clients: replies free capacity.
      mark_batch();
      if (journal_) on_journal_commit();  // a load and two checks when nothing committed
      if (batch_now_ >= next_tick_) on_tick();
      flush_sends();
      // What a batch sends goes out at its end, together (outbox.hpp).
      const std::size_t from_workers = handle_backend();
      flush_sends();
      mark_batch();
      const std::size_t from_clients = handle_frontend();
      flush_sends();
      // Handling a client's request may send to a worker after the backend's
      // receive, so only a pass with nothing received may end in a wait.
      idle = from_workers + from_clients == 0;
      if (idle) trim_after_burst(true);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      idle = false;
    }
  }
  std::size_t unanswered = requests_.size();
  for (const auto& [name, s] : services_) unanswered += s->parked.size();
  log_->info("broker stopping: disconnecting {} workers, {} requests unanswered",
             workers_.size(), unanswered);
  monitor_.publish({stats_, services_, requests_.size(), journal_.get(), true}, clock::now());
  if (journal_) {
    journal_->flush();  // the replies already earned go out before we leave
    on_journal_commit();
  }
  for (auto& [identity, w] : workers_) send_to_worker(identity, encode_disconnect(w->from));
  flush_sends();
  log_->flush();
}

std::size_t broker::handle_frontend() {
  zmq::multipart_t frames;  // reused: its deque keeps its map and block between messages
  int i = 0;
  for (; i < io_batch; ++i) {
    std::size_t seen = 0;
    zmq::message_t id;  // the routing id, apart: `frames` is never popped (limits.hpp)
    const receive_status status = receive_bounded(frontend_, frames, options_.limits, &seen, &id);
    if (status == receive_status::none) break;
    if (status == receive_status::ok) {
      on_client_message(id.to_string(), std::move(frames));
    } else {
      on_oversized_client_message(id.to_string(), frames, status, seen);
    }
  }
  return static_cast<std::size_t>(i);
}

void broker::send_to_client(const std::string& client, std::string_view service,
                            const header& head, std::vector<zmq::message_t>&& body) {
  send_to_client(client, dialect::carico, service, head.encode(), std::move(body));
}

// [client, "", MDPCX1, service, header, body...] to a carico client,
// [client, "", MDPC01, service, body...] to a stock one (the codec's
// encode_client_reply / encode_mdp_reply frames after the routing id), sent
// frame by frame: no multipart to build.
void broker::send_to_client(const std::string& client, dialect to, std::string_view service,
                            zmq::message_t&& head_frame, std::vector<zmq::message_t>&& body) {
  constexpr auto more = zmq::send_flags::sndmore;
  // The routing frame decides (on_reply_refused): once it is queued, ZeroMQ
  // takes the message whole.
  to_clients_.send(zmq::const_buffer(client.data(), client.size()),
                   more | zmq::send_flags::dontwait);
  to_clients_.send(zmq::message_t(), more);
  const std::string_view signature = client_signature_of(to);
  to_clients_.send(zmq::const_buffer(signature.data(), signature.size()), more);
  const bool last = to == dialect::mdp && body.empty();
  to_clients_.send(zmq::const_buffer(service.data(), service.size()),
                   last ? zmq::send_flags::none : more);
  if (to == dialect::carico) {
    to_clients_.send(head_frame, body.empty() ? zmq::send_flags::none : more);
  }
  for (std::size_t i = 0; i < body.size(); ++i) {
    to_clients_.send(body[i], i + 1 < body.size() ? more : zmq::send_flags::none);
  }
}

// A reply the frontend would not take: the client has client_send_hwm replies
// unread (EAGAIN), or is gone (EHOSTUNREACH, the quiet case).
void broker::on_reply_refused(std::string_view client, int error) {
  if (error != EAGAIN) {
    log_->debug("reply dropped: client={} is gone", client_label(client));
    return;
  }
  if (++stats_.unread_dropped % 1000 == 1) {
    log_->warn("reply dropped: client={} has {} replies unread (--client-send-hwm); "
               "{} dropped so far",
               client_label(client), options_.client_send_hwm, stats_.unread_dropped);
  }
}

// Reads the clock for the batch about to be handled: its requests and worker
// messages take their times from here, at most the batch's handling early,
// instead of reading the clock five times per request.
void broker::mark_batch() {
  batch_now_ = clock::now();
  batch_unix_ms_ = unix_ms();
}

// Sends what the last steps queued, and hands the journal what they posted.
void broker::flush_sends() {
  if (journal_) journal_->hand_over();
  to_workers_.flush();
  to_clients_.flush();
  access_.flush();
}

std::size_t broker::handle_backend() {
  zmq::multipart_t frames;  // reused: its deque keeps its map and block between messages
  int i = 0;
  for (; i < io_batch; ++i) {
    std::size_t seen = 0;
    zmq::message_t id;  // the routing id, apart: `frames` is never popped (limits.hpp)
    const receive_status status = receive_bounded(backend_, frames, options_.limits, &seen, &id);
    if (status == receive_status::none) break;
    const std::string identity = id.to_string();
    if (status == receive_status::ok) {
      on_worker_message(identity, std::move(frames));
      continue;
    }
    // Over a cap: an invalid message, so DISCONNECT and forget the worker.
    if (identity.empty()) continue;
    const std::string reason =
        status == receive_status::too_many_frames
            ? "message has " + std::to_string(seen) + " frames; at most " +
                  std::to_string(options_.limits.max_frames)
            : "message is larger than " + std::to_string(options_.limits.max_message_bytes) +
                  " bytes";
    auto found = workers_.find(identity);
    log_->warn("invalid message from worker {}: {}; sending DISCONNECT",
               found != workers_.end() ? found->second->name : hex_id(identity), reason);
    if (found != workers_.end()) {
      delete_worker(*found->second, "protocol error: " + reason, true);
    } else {
      std::optional<dialect> from = worker_dialect_of(frames);
      send_to_worker(identity, encode_disconnect(from.value_or(dialect::mdp)));
    }
  }
  return static_cast<std::size_t>(i);
}

// The routing id first, then frames as they are: no frame pushed at the front.
void broker::send_to_worker(const std::string& identity, zmq::multipart_t&& frames) {
  constexpr auto more = zmq::send_flags::sndmore;
  to_workers_.send(zmq::const_buffer(identity.data(), identity.size()),
                   frames.empty() ? zmq::send_flags::none : more);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    to_workers_.send(frames[i], i + 1 < frames.size() ? more : zmq::send_flags::none);
  }
}

void broker::on_tick() {
  const time_point now = clock::now();
  // Each worker is heartbeated at its own interval (stock ones at the stock one).
  for (auto& [identity, w] : workers_) {
    if (now < w->next_heartbeat) continue;
    send_to_worker(identity, encode_heartbeat(w->from));
    w->next_heartbeat = now + milliseconds(w->heartbeat_ms);
  }
  purge_expired(now);
  expire_waiting(now);
  forget_idle_services();
  if (!sticky_.empty() && now >= sticky_until_) release_sticky(nullptr);
  trim_after_burst(false);
  release_when_quiet(now);
  if (now >= monitor_.next_publish()) {
    monitor_.publish({stats_, services_, requests_.size(), journal_.get(), false}, now);
  }
  // An idle broker still looks around once per heartbeat interval.
  next_tick_ = std::min({now + milliseconds(options_.heartbeat_ms), next_expiry_,
                         monitor_.next_publish()});
  for (auto& [id, w] : workers_) {
    next_tick_ = std::min({next_tick_, w->expires_at, w->next_heartbeat});
  }
  if (!sticky_.empty()) next_tick_ = std::min(next_tick_, sticky_until_);
}

// A service is kept while a worker serves it or a request names it; the
// names clients send cost nothing once their requests are answered or expired
// (so max_services counts what is in use, and a worker can always join).
void broker::forget_idle_services() {
  std::unordered_set<service*> idle;
  for (auto& [name, s] : services_) {
    if (s->ring.empty() && s->queue.empty() && s->parked.empty()) idle.insert(s.get());
  }
  if (idle.empty()) return;
  // Requests waiting for their journal commit or for their old worker, or
  // held, point at their service without being in its queue.
  for (const auto& [number, r] : requests_) {
    idle.erase(r.target);
    if (idle.empty()) return;
  }
  for (service* s : idle) services_.erase(s->name);
}

// A burst that parks many requests leaves ZeroMQ's I/O thread with receive
// buffers it has freed but the allocator keeps (tens of MiB for 10^6
// requests): give those pages back while parking grows by a lot, and once a
// burst that parked a fair number ends (the loop found nothing to do). Not
// done in a steady flow (nothing parks), where the pages would only be
// faulted back in.
void broker::trim_after_burst(bool burst_ended) {
  std::size_t parked = 0;
  for (const auto& [name, s] : services_) parked += s->parked.size();
  constexpr std::size_t during_burst = 65536;
  constexpr std::size_t ended_burst = 4096;
  if (parked < parked_at_trim_) parked_at_trim_ = parked;
  if (parked < parked_at_trim_ + (burst_ended ? ended_burst : during_burst)) return;
  parked_at_trim_ = parked;
  release_memory();
}

// The allocator keeps the pages freed under traffic (allocator.hpp), so that
// reused buffers are not faulted in again: once no request has come for a
// second after some did, they go back to the system. Once per pause.
void broker::release_when_quiet(time_point now) {
  constexpr auto pause = std::chrono::seconds(1);
  const std::uint64_t seen = stats_.received + stats_.refused + stats_.resends;
  if (seen != seen_at_release_check_) {
    seen_at_release_check_ = seen;
    last_traffic_at_ = now;
    release_pending_ = true;
    return;
  }
  if (!release_pending_ || now - last_traffic_at_ < pause) return;
  release_pending_ = false;
  release_memory();
}

// requests_' spare nodes, then what the allocator keeps free.
void broker::release_memory() {
  request_nodes_.release();
  release_free_memory();
}

}  // namespace carico
