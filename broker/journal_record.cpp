#include "broker/journal_record.hpp"

#include <msgpack.hpp>

#include "shared/header.hpp"
#include "shared/map_writer.hpp"  // string_sink
#include "shared/raw_map.hpp"

namespace carico {

// ------------------------------------------------------------------ values

std::string_view request_state_name(request_state s) {
  switch (s) {
    case request_state::queued: return "queued";
    case request_state::dispatched: return "dispatched";
    case request_state::done: return "done";
    case request_state::failed: return "failed";
    case request_state::expired: return "expired";
    case request_state::refused: return "refused";
  }
  return "failed";
}

std::optional<request_state> parse_request_state(std::string_view name) {
  for (request_state s : {request_state::queued, request_state::dispatched, request_state::done,
                          request_state::failed, request_state::expired, request_state::refused}) {
    if (request_state_name(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 'd': unit = 86400; break;
    case 'h': unit = 3600; break;
    case 'm': unit = 60; break;
    case 's': unit = 1; break;
    default: unit = 0; break;
  }
  if (unit != 0) text.remove_suffix(1);
  if (unit == 0) unit = 1;
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return std::chrono::seconds(n * unit);
}

std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
  struct suffix {
    std::string_view name;  // as typed after the number
    std::uint64_t unit;     // bytes it stands for
  };
  static constexpr suffix suffixes[] = {
      {"TiB", 1ULL << 40}, {"GiB", 1ULL << 30},      {"MiB", 1ULL << 20},
      {"KiB", 1ULL << 10}, {"TB", 1000000000000ULL}, {"GB", 1000000000ULL},
      {"MB", 1000000ULL},  {"KB", 1000ULL},          {"kB", 1000ULL},
      {"T", 1ULL << 40},   {"G", 1ULL << 30},        {"M", 1ULL << 20},
      {"K", 1ULL << 10},   {"k", 1ULL << 10},        {"B", 1}};
  std::uint64_t unit = 1;
  for (const suffix& s : suffixes) {
    if (text.size() > s.name.size() && text.ends_with(s.name)) {
      unit = s.unit;
      text.remove_suffix(s.name.size());
      break;
    }
  }
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  constexpr std::uint64_t most = std::uint64_t{1} << 62;
  if (n > most / unit) return std::nullopt;
  return n * unit;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json journal_record::to_json() const {
  nlohmann::json out = {{"request", number},
                        {"service", service},
                        {"state", request_state_name(state)},
                        {"attempts", attempts},
                        {"bytes", bytes}};
  if (!client.empty()) out["client"] = client;
  if (!client_id.empty()) {
    out["id"] = nlohmann::json::parse(client_id, nullptr, false);
    if (out["id"].is_discarded()) out["id"] = client_id;
  }
  out["worker"] = worker;
  if (received_ms != 0) out["received_ms"] = received_ms;
  if (dispatched_ms != 0) out["dispatched_ms"] = dispatched_ms;
  if (completed_ms != 0) out["completed_ms"] = completed_ms;
  if (code != 0) out["code"] = code;
  if (!result.empty()) {
    nlohmann::json fields = nlohmann::json::parse(result, nullptr, false);
    // `title` is the protocol's request key "for logs and the journal"; the
    // journal keeps none of the request's, but a result that echoes one
    // (text's does) gives it, where clients (the REPL's history, stored) look.
    if (fields.is_object() && fields.contains("title") && fields["title"].is_string()) {
      out["title"] = fields["title"];
    }
    out["result"] = fields.is_discarded() ? nlohmann::json(result) : std::move(fields);
  }
  return out;
}

std::string journal_record::result_string(std::string_view name) const {
  if (result.empty()) return {};
  const nlohmann::json fields = nlohmann::json::parse(result, nullptr, false);
  if (!fields.is_object()) return {};
  const auto it = fields.find(name);
  return it != fields.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string encode_frames(const std::vector<zmq::message_t>& frames) {
  if (frames.empty()) return {};
  // Packed straight into the string, reserved for the longest headers (5 bytes
  // each): one allocation, where an sbuffer would start with 8 KiB and copy.
  std::string blob;
  std::size_t most = 5;
  for (const zmq::message_t& f : frames) most += 5 + f.size();
  blob.reserve(most);
  string_sink sink{blob};
  msgpack::packer<string_sink> packer(sink);
  packer.pack_array(static_cast<std::uint32_t>(frames.size()));
  for (const zmq::message_t& f : frames) {
    packer.pack_bin(static_cast<std::uint32_t>(f.size()));
    packer.pack_bin_body(static_cast<const char*>(f.data()), static_cast<std::uint32_t>(f.size()));
  }
  return blob;
}

std::vector<std::string> decode_frames(std::string_view blob) {
  std::vector<std::string> out;
  if (blob.empty()) return out;
  try {
    msgpack::object_handle handle = msgpack::unpack(blob.data(), blob.size());
    const msgpack::object& array = handle.get();
    if (array.type != msgpack::type::ARRAY) return out;
    for (std::uint32_t i = 0; i < array.via.array.size; ++i) {
      const msgpack::object& f = array.via.array.ptr[i];
      if (f.type == msgpack::type::BIN) out.emplace_back(f.via.bin.ptr, f.via.bin.size);
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

// Read in place; a header raw_map leaves to header::decode is decoded (a
// repeated key: the last value wins).
std::string result_json_of(std::string_view reply_head) {
  raw_map head;
  if (head.parse(reply_head.data(), reply_head.size())) {
    const std::optional<raw_view::entry> result = head.over(reply_head.data()).find("result");
    if (!result) return {};
    try {
      msgpack::object_handle h = msgpack::unpack(result->value.data(), result->value.size());
      if (h.get().type == msgpack::type::MAP) return to_json_text(h.get());
    } catch (const std::exception&) {
    }
    return {};  // not a MessagePack map: no result recorded
  }
  header_result decoded = header::decode(reply_head.data(), reply_head.size());
  if (!decoded) return {};
  const msgpack::object* result = decoded.value->find("result");
  if (result != nullptr && result->type == msgpack::type::MAP) return to_json_text(*result);
  return {};
}

}  // namespace carico
