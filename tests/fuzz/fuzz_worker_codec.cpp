// libFuzzer target: worker-message decoding (READY with its info map,
// HEARTBEAT with its load report, REQUEST, REPLY, DISCONNECT), the round trip of
// what decodes, the broker's mode that keeps a REPLY header encoded (raw_map),
// and decode_info/decode_load on an arbitrary header.
#include <cmath>
#include <cstdlib>

#include "shared/codec.hpp"
#include "shared/raw_map.hpp"
#include "tests/fuzz/fuzz_frames.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void round_trip(carico::worker_message& m) {
  using namespace carico;
  switch (m.cmd) {
    case command::ready: {
      check(!m.service.empty() && m.service.size() <= 255);
      const worker_info info = m.info.value_or(worker_info{});
      check(info.capacity >= 1 && info.capacity <= 65536);
      check(m.from == dialect::carico || !m.info);  // a stock READY has no info
      decoded<worker_message> again = decode_worker_message(encode_ready(m.from, m.service, info));
      check(static_cast<bool>(again));
      check(again->cmd == command::ready && again->service == m.service && again->from == m.from);
      if (m.from == dialect::mdp) break;
      check(again->info && again->info->name == info.name && again->info->host == info.host &&
            again->info->capacity == info.capacity && again->info->pid == info.pid &&
            again->info->heartbeat_ms == info.heartbeat_ms);
      break;
    }
    case command::heartbeat: {
      if (!m.load) break;
      check(m.from == dialect::carico);  // a stock HEARTBEAT is bare
      decoded<worker_message> again =
          decode_worker_message(encode_heartbeat(dialect::carico, &*m.load));
      check(static_cast<bool>(again) && again->load);
      check(again->load->state == m.load->state && again->load->in_flight == m.load->in_flight &&
            again->load->rss_bytes == m.load->rss_bytes);
      break;
    }
    case command::request: {
      check(m.head.has_value() == (m.from == dialect::carico));
      const std::size_t body = m.body.size();
      const header none;
      const header& head = m.head ? static_cast<const header&>(*m.head) : none;
      decoded<worker_message> again =
          decode_worker_message(encode_request(m.from, std::move(m.address), head, std::move(m.body)));
      check(static_cast<bool>(again) && again->cmd == command::request);
      check(again->body.size() == body);
      break;
    }
    case command::reply: {
      check(m.head.has_value() == (m.from == dialect::carico));
      const std::size_t body = m.body.size();
      const header none;
      const header& head = m.head ? static_cast<const header&>(*m.head) : none;
      decoded<worker_message> again =
          decode_worker_message(encode_reply(m.from, std::move(m.address), head, std::move(m.body)));
      check(static_cast<bool>(again) && again->cmd == command::reply);
      check(again->head.has_value() == (m.from == dialect::carico));
      check(again->body.size() == body);
      break;
    }
    case command::disconnect: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace carico;
  decoded<worker_message> m = decode_worker_message(fuzz::split_frames(data, size));
  // The broker's and the worker's mode must accept exactly what decoding
  // accepts, with the same error, and a header kept encoded must read
  // (request, attempt, code) as header::decode reads it, through the map the
  // codec hands over, read through the frame.
  raw_map handed;
  decoded<worker_message> kept =
      decode_worker_message(fuzz::split_frames(data, size), header_mode::keep_raw, &handed);
  check(static_cast<bool>(kept) == static_cast<bool>(m));
  check(kept.error == m.error);
  if (kept && kept->head_frame.size() > 0) {
    const raw_view now = handed.over(kept->head_frame.data());
    header_result full = header::decode(kept->head_frame);
    check(static_cast<bool>(full));
    check(now.size() == full.value->size());
    check(now.get_uint("request") == full.value->get_uint("request"));
    check(now.get_uint("attempt") == full.value->get_uint("attempt"));
    check(now.get_uint("code") == full.value->get_uint("code"));
  }
  if (m) {
    round_trip(*m);
  } else {
    check(!m.error.empty());
  }
  // The same bytes as a READY info map and as a load report.
  header_result h = header::decode(data, size);
  if (h) {
    decoded<worker_info> info = decode_info(*h.value);
    if (info) check(info->capacity >= 1 && info->capacity <= 65536);
    decoded<load_report> load = decode_load(*h.value);
    if (load) {
      const auto s = load->state;
      check(s == worker_state::ready || s == worker_state::overload || s == worker_state::drain);
      (void)std::isnan(load->cpu_percent);
    }
  }
  return 0;
}
