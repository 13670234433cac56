#include "client/bench/load_driver.hpp"

#include <algorithm>
#include <optional>
#include <string>

#include <unistd.h>

#include "shared/codec.hpp"
#include "shared/map_writer.hpp"
#include "shared/raw_map.hpp"

namespace carico {
namespace {

std::int64_t to_ns(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// What the driver needs of a reply.
struct reply_fields {
  std::optional<std::uint64_t> id;       // the header's `id`
  std::uint64_t code{code::ok};          // its `code` (ok when absent)
  std::string error;                     // its `error`, when the code is not ok
  std::optional<std::size_t> body_size;  // the first body frame's size, when there is one
};

// Reads a reply as decode_client_reply would, but in place: the driver is the
// load, so it spends no more on a reply than it must (no zone, no copy of the
// header). A reply raw_map cannot read goes to decode_client_reply, which has
// the last word and gives the error.
decoded<reply_fields> read_reply(zmq::multipart_t&& frames, raw_map& head) {
  decoded<reply_fields> out;
  reply_fields& f = out.value.emplace();
  // The same reading of a raw_view and of a header.
  auto read = [&f](const auto& h) {
    f.id = h.get_uint("id");
    f.code = h.get_uint("code").value_or(code::ok);
    if (f.code != code::ok) f.error = std::string(h.get_string("error").value_or(""));
  };
  if (frames.size() >= 4 && frames[0].size() == 0 && frame_equals(frames[1], client_ext_signature) &&
      head.parse(frames[3].data(), frames[3].size())) {
    read(head.over(frames[3].data()));
    if (frames.size() > 4) f.body_size = frames[4].size();
    return out;
  }
  decoded<client_reply> reply = decode_client_reply(std::move(frames));
  if (!reply) {
    out.value.reset();
    out.error = std::move(reply.error);
    return out;
  }
  read(reply->head);
  if (!reply->body.empty()) f.body_size = reply->body[0].size();
  return out;
}

}  // namespace

load_driver::load_driver(zmq::context_t& context, load_options options,
                         const zmq::message_t& payload)
    : context_(context), options_(std::move(options)) {
  options_.threads = std::clamp<std::size_t>(options_.threads, 1, std::max<std::size_t>(1, options_.clients));
  for (std::size_t i = 0; i < options_.threads; ++i) {
    payloads_.emplace_back().copy(const_cast<zmq::message_t&>(payload));
  }
  partial_.resize(options_.threads);
}

load_driver::~load_driver() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void load_driver::start() {
  measure_start_ = clock::now() + options_.warmup;
  measure_end_ = measure_start_ + options_.duration;
  const std::size_t per = options_.clients / options_.threads;
  const std::size_t extra = options_.clients % options_.threads;
  for (std::size_t i = 0; i < options_.threads; ++i) {
    const std::size_t count = per + (i < extra ? 1 : 0);
    threads_.emplace_back([this, i, count] { thread_loop(i, count); });
  }
}

void load_driver::mark_event() { event_ns_ = to_ns(clock::now()); }

load_result load_driver::finish() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  load_result out;
  out.seconds = std::chrono::duration<double>(measure_end_ - measure_start_).count();
  for (load_result& p : partial_) {
    out.sent += p.sent;
    out.answered += p.answered;
    out.errors += p.errors;
    out.lost += p.lost;
    if (out.first_error.empty()) out.first_error = p.first_error;
    out.latency_us.insert(out.latency_us.end(), p.latency_us.begin(), p.latency_us.end());
    out.event_delay_us = std::max(out.event_delay_us, p.event_delay_us);
    out.event_in_flight += p.event_in_flight;
  }
  std::sort(out.latency_us.begin(), out.latency_us.end());
  return out;
}

// One thread: its sockets, a send loop that tops every window up, a poll, and
// a receive loop that drains what arrived.
void load_driver::thread_loop(std::size_t index, std::size_t count) {
  load_result& out = partial_[index];
  zmq::message_t& payload = payloads_[index];
  std::vector<zmq::socket_t> sockets;
  std::vector<std::size_t> outstanding(count, 0);
  std::vector<zmq::pollitem_t> items;
  for (std::size_t i = 0; i < count; ++i) {
    zmq::socket_t& s = sockets.emplace_back(context_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvhwm, 0);
    s.connect(options_.endpoint);
  }
  for (zmq::socket_t& s : sockets) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  const std::int64_t start_ns = to_ns(measure_start_);
  const std::int64_t end_ns = to_ns(measure_end_);
  const time_point give_up = measure_end_ + options_.drain_timeout;
  out.latency_us.reserve(1 << 16);
  // Each request's header, written straight into a buffer kept between them.
  map_writer head;
  raw_map reply_head;  // each reply's header, read in place
  // Each reply, received into the same deque: recv() clears it, and nothing
  // pops its front, so it keeps its one block instead of allocating one.
  zmq::multipart_t frames;
  constexpr auto more = zmq::send_flags::sndmore;
  std::uint64_t last_id = 0;  // the id of the last request sent
  const std::string client_name =
      options_.keyed ? "carico-bench-" + std::to_string(::getpid()) + "-" + std::to_string(index)
                     : std::string();
  std::uint64_t total = 0;

  auto fail = [&out](std::string why) {
    ++out.errors;
    if (out.first_error.empty()) out.first_error = std::move(why);
  };

  try {
    for (;;) {
      time_point now = clock::now();
      const bool sending = now < measure_end_ && !stop_signalled();
      if (!sending && (total == 0 || now >= give_up || stop_signalled())) break;
      if (sending) {
        for (std::size_t i = 0; i < count; ++i) {
          while (outstanding[i] < options_.window) {
            // The id is the send time; keyed, it must also be unique per client.
            const auto sent_ns = static_cast<std::uint64_t>(to_ns(clock::now()));
            last_id = options_.keyed ? std::max(sent_ns, last_id + 1) : sent_ns;
            head.begin(options_.keyed ? 2 : 1);
            if (options_.keyed) head.add("client", client_name);
            head.add("id", last_id);
            zmq::message_t body;
            body.copy(payload);  // shares the buffer (reference counted)
            // encode_client_request's frames, sent one by one: no multipart
            // (a deque, two allocations) per request.
            zmq::socket_t& s = sockets[i];
            s.send(zmq::const_buffer(client_ext_signature.data(), 0), more);
            s.send(zmq::const_buffer(client_ext_signature.data(), client_ext_signature.size()), more);
            s.send(zmq::const_buffer(options_.service.data(), options_.service.size()), more);
            s.send(zmq::const_buffer(head.bytes().data(), head.bytes().size()), more);
            s.send(body, zmq::send_flags::none);
            ++outstanding[i];
            ++total;
            ++out.sent;
          }
        }
      }
      const time_point until = sending ? measure_end_ : give_up;
      const long timeout = std::min<long>(100, poll_timeout(until));
      zmq::poll(items.data(), items.size(), milliseconds(timeout));
      for (std::size_t i = 0; i < count; ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        for (int k = 0; k < 256; ++k) {
          if (!frames.recv(sockets[i], ZMQ_DONTWAIT)) break;
          const std::int64_t now_ns = to_ns(clock::now());
          decoded<reply_fields> reply = read_reply(std::move(frames), reply_head);
          if (!reply) {
            fail("malformed reply: " + reply.error);
            continue;
          }
          const std::optional<std::uint64_t> id = reply->id;
          if (!id) {
            fail("reply without a numeric id");
            continue;
          }
          if (outstanding[i] > 0) {
            --outstanding[i];
            --total;
          }
          const std::int64_t sent_ns = static_cast<std::int64_t>(*id);
          if (reply->code != code::ok) {
            fail("reply code " + std::to_string(reply->code) + ": " + reply->error);
          } else if (options_.expect_echo && reply->body_size != payload.size()) {
            fail("echo reply body is not the payload");
          }
          if (now_ns >= start_ns && now_ns < end_ns) ++out.answered;
          if (sent_ns >= start_ns && sent_ns < end_ns) {
            out.latency_us.push_back(static_cast<std::uint32_t>(
                std::min<std::int64_t>((now_ns - sent_ns) / 1000, UINT32_MAX)));
          }
          const std::int64_t event = event_ns_.load(std::memory_order_relaxed);
          if (event != 0 && sent_ns < event && now_ns >= event) {
            ++out.event_in_flight;
            out.event_delay_us = std::max<std::int64_t>(out.event_delay_us, (now_ns - event) / 1000);
          }
        }
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) fail(std::string("zmq: ") + e.what());
  }
  out.lost = total;
  if (total > 0) {
    out.errors += total;
    if (out.first_error.empty()) out.first_error = std::to_string(total) + " requests unanswered";
  }
}

}  // namespace carico
