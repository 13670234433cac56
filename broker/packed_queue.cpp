#include "broker/packed_queue.hpp"

#include <algorithm>
#include <cstring>

#include "broker/journal.hpp"  // unix_ms
#include "shared/header.hpp"
#include "shared/raw_map.hpp"

namespace carico {
namespace {

// Entry layout: nine LEB128 varints, then the bytes of client, key, head and
// payload (the `id` is read back from the head). The varints: number,
// received_ms and quota_bytes as zigzag deltas from the entry before (one byte
// each for a steady stream), attempts, the lengths of client, key and head,
// and the payload's length as a
// zigzag delta from the entry before, shifted left by one, with the low bit set
// when the payload is kept as a frame in large_; last, timeout_ms shifted left
// by two, with bit 1 set for a framed payload and bit 0 for a stock client.
std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

char* put_varint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

const char* get_varint(const char* p, std::uint64_t& v) {
  v = 0;
  for (unsigned shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(*p++);
    v |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return p;
  }
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// The encoded `id` of a header as kept (see broker::keep_header); empty if none.
std::string encoded_id(std::string_view head) {
  if (head.empty()) return {};
  raw_map m;
  if (m.parse(head.data(), head.size())) {
    const std::optional<raw_view::entry> id = m.over(head.data()).find("id");
    return id ? std::string(id->value) : std::string();
  }
  header_result decoded = header::decode(head.data(), head.size());
  if (!decoded) return {};
  const msgpack::object* id = decoded.value->find("id");
  return id ? header::encode_value(*id) : std::string();
}

char* put_bytes(char* p, std::string_view bytes) {
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

}  // namespace

void packed_queue::push(request&& r) {
  const bool large = r.payload.size() > large_payload;
  const std::string_view head = r.head.to_string_view();
  const std::string_view payload = large ? std::string_view() : r.payload.to_string_view();
  const std::uint64_t fields[] = {zigzag(static_cast<std::int64_t>(r.number - last_number_)),
                                  zigzag(r.received_ms - last_ms_),
                                  r.attempts,
                                  zigzag(static_cast<std::int64_t>(r.quota_bytes - last_quota_)),
                                  r.client.size(),
                                  r.key.size(),
                                  head.size(),
                                  (zigzag(static_cast<std::int64_t>(r.payload.size() - last_payload_)) << 1) |
                                      (large ? 1u : 0u),
                                  (r.timeout_ms << 2) | (r.framed ? 2u : 0u) |
                                      (r.from == dialect::mdp ? 1u : 0u)};
  std::size_t size = r.client.size() + r.key.size() + head.size() + payload.size();
  for (std::uint64_t f : fields) size += varint_size(f);

  // An empty last chunk is the only one: replace it when the entry does not fit.
  if (!chunks_.empty() && chunks_.back().read == chunks_.back().write &&
      chunks_.back().capacity < size) {
    chunks_.pop_back();
  }
  if (chunks_.empty() || chunks_.back().capacity - chunks_.back().write < size) {
    chunk c;
    c.capacity = std::max(chunk_bytes_, size);
    c.data = std::make_unique_for_overwrite<char[]>(c.capacity);
    chunks_.push_back(std::move(c));
  }
  chunk& c = chunks_.back();
  char* p = c.data.get() + c.write;
  for (std::uint64_t f : fields) p = put_varint(p, f);
  p = put_bytes(p, r.client);
  p = put_bytes(p, r.key);
  p = put_bytes(p, head);
  p = put_bytes(p, payload);
  c.write += size;
  ++count_;
  last_number_ = r.number;
  last_ms_ = r.received_ms;
  last_quota_ = r.quota_bytes;
  last_payload_ = r.payload.size();
  if (large) large_.push_back(std::move(r.payload));
}

const char* packed_queue::read_entry(const char* p, const packed_view& before, packed_view& out,
                                     bool& large) {
  std::uint64_t f[9];
  for (std::uint64_t& v : f) p = get_varint(p, v);
  out.number = before.number + static_cast<std::uint64_t>(unzigzag(f[0]));
  out.received_ms = before.received_ms + unzigzag(f[1]);
  out.attempts = f[2];
  out.quota_bytes = before.quota_bytes + static_cast<std::size_t>(unzigzag(f[3]));
  large = (f[7] & 1) != 0;
  out.payload_bytes = before.payload_bytes + static_cast<std::size_t>(unzigzag(f[7] >> 1));
  out.timeout_ms = f[8] >> 2;
  out.framed = (f[8] & 2) != 0;
  out.from = (f[8] & 1) != 0 ? dialect::mdp : dialect::carico;
  const std::size_t lengths[] = {static_cast<std::size_t>(f[4]), static_cast<std::size_t>(f[5]),
                                 static_cast<std::size_t>(f[6])};
  std::string_view* fields[] = {&out.client, &out.key, &out.head};
  for (std::size_t i = 0; i < 3; ++i) {
    *fields[i] = std::string_view(p, lengths[i]);
    p += lengths[i];
  }
  return large ? p : p + out.payload_bytes;
}

request to_request(const packed_view& v) {
  request r;
  r.number = v.number;
  r.received_ms = v.received_ms;
  r.received_at = steady_time_of(v.received_ms, clock::now(), unix_ms());
  r.attempts = v.attempts;
  r.quota_bytes = v.quota_bytes;
  r.timeout_ms = v.timeout_ms;
  r.deadline = r.received_at + milliseconds(v.timeout_ms);
  r.from = v.from;
  r.framed = v.framed;
  r.client.assign(v.client);
  r.key.assign(v.key);
  r.id = encoded_id(v.head);
  if (!v.head.empty()) r.head = zmq::message_t(v.head.data(), v.head.size());
  return r;
}

request packed_queue::pop() {
  chunk& c = chunks_.front();
  const char* start = c.data.get() + c.read;
  packed_view v;
  bool large = false;
  const char* end = read_entry(start, popped_, v, large);
  popped_ = v;

  request r = to_request(v);
  if (large) {
    r.payload = std::move(large_.front());
    large_.pop_front();
  } else {
    r.payload = zmq::message_t(end - v.payload_bytes, v.payload_bytes);
  }

  c.read = static_cast<std::size_t>(end - c.data.get());
  --count_;
  if (c.read == c.write) {
    if (chunks_.size() > 1) {
      chunks_.pop_front();
    } else {
      c.read = c.write = 0;  // keep the last chunk for the next requests
    }
  }
  return r;
}

std::optional<time_point> packed_queue::front_deadline() const {
  if (empty()) return std::nullopt;
  const chunk& c = chunks_.front();
  packed_view v;
  bool large = false;
  read_entry(c.data.get() + c.read, popped_, v, large);
  return steady_time_of(v.received_ms, clock::now(), unix_ms()) + milliseconds(v.timeout_ms);
}

void packed_queue::for_each(const std::function<bool(const packed_view&)>& visit) const {
  packed_view before = popped_;
  for (const chunk& c : chunks_) {
    const char* p = c.data.get() + c.read;
    const char* end = c.data.get() + c.write;
    while (p < end) {
      packed_view v;
      bool large = false;
      p = read_entry(p, before, v, large);
      if (!visit(v)) return;
      before = v;
    }
  }
}

std::size_t packed_queue::chunk_bytes_held() const {
  std::size_t total = 0;
  for (const chunk& c : chunks_) total += c.capacity;
  return total;
}

}  // namespace carico
