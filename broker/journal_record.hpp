// What every journal backend stores and the broker posts: one request's
// record, the events that change it, and the values both backends parse and
// print the same way. No storage here (see journal.hpp for the interface).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace carico {

// A journal that cannot be used: corrupt, locked by another broker, unwritable.
class journal_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This broker may no longer write the journal: another broker took over
// (a newer term), or the connection that held leadership is gone. Final.
class journal_fenced : public journal_error {
 public:
  using journal_error::journal_error;
};

enum class request_state { queued, dispatched, done, failed, expired, refused };
std::string_view request_state_name(request_state s);
std::optional<request_state> parse_request_state(std::string_view name);
// done, failed, expired and refused rows are final.
inline bool is_final(request_state s) {
  return s != request_state::queued && s != request_state::dispatched;
}

// "7d", "12h", "30m", "45s" or plain seconds; nothing for anything else.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// "1GiB", "8MiB", "512KiB" (also "1G", "8M", "512K"), "10MB" (decimal) or plain
// bytes; nothing for anything else or more than 2^62.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

// Milliseconds since the Unix epoch, as the journal stores times.
std::int64_t unix_ms();
// The steady-clock time of an event `then_ms` (unix ms) ago, given that now is
// `now` and `now_ms`; never later than now (the wall clock may have stepped).
inline std::chrono::steady_clock::time_point steady_time_of(
    std::int64_t then_ms, std::chrono::steady_clock::time_point now, std::int64_t now_ms) {
  return now - std::chrono::milliseconds(now_ms > then_ms ? now_ms - then_ms : 0);
}

// One request as the journal (or mmi.request) describes it.
struct journal_record {
  std::uint64_t number{0};            // the broker's request number
  std::string client;                 // header `client`, empty if none
  std::string client_id;              // header `id` as JSON text, empty if none
  std::string service;                // the service asked for
  std::uint64_t bytes{0};             // payload size
  request_state state{request_state::queued};  // where it is
  std::string worker;                 // the worker that last held it (or answered)
  std::uint64_t attempts{0};          // workers given it
  std::int64_t received_ms{0};        // unix ms; 0 when unknown
  std::int64_t dispatched_ms{0};      // unix ms of the last dispatch; 0 when never
  std::int64_t completed_ms{0};       // unix ms of the answer; 0 while unanswered
  std::uint64_t code{0};              // reply code; 0 while unanswered
  std::string result;                 // the reply header's `result` as JSON text,
                                      // whatever the service put there; empty if none
  std::string owner;                  // the client's ZAP User-Id (its name on the
                                      // --curve allow list); empty without curve. Written
                                      // with the row, read by owner_of(), not by find()

  // The `mmi.request` / `--json` form: absent values are left out; `result`
  // is the service's result map as it was recorded.
  nlohmann::json to_json() const;
  // The string field `name` of the result map; empty when absent or not a string.
  std::string result_string(std::string_view name) const;
};

// An unfinished request reloaded at start, to be queued again.
struct journal_unfinished {
  journal_record record;  // its row
  std::string head;       // the encoded request header, as forwarded to workers
  std::string payload;    // the client's payload
};

// One change to the journal, posted by the broker and applied by the writer.
struct journal_event {
  enum class kind : std::uint8_t { received, dispatched, finished, refused, stop };
  kind what{kind::received};          // which change
  std::uint64_t seq{0};               // set by post(): position in the stream
  journal_record row;                 // the fields this kind sets
  std::string head;                   // received: request header; finished: reply header
  std::string body;                   // finished: reply frames 4.., see encode_frames()
  zmq::message_t payload;             // received: a copy sharing the client's buffer
  bool reply_kept{true};              // finished: head and body go into the row (a keyed
                                      // request's, for resends); else only row.result, which
                                      // the writer renders from head (off the loop)
};

// The `result` map of an encoded reply header as JSON text; "" for none.
std::string result_json_of(std::string_view reply_head);

// Frames packed into one blob (a MessagePack array of bin) and back.
std::string encode_frames(const std::vector<zmq::message_t>& frames);
std::vector<std::string> decode_frames(std::string_view blob);

struct journal_options {
  // The SQLite file, or a PostgreSQL connection URI (postgresql://… or
  // postgres://…), see open_journal().
  std::string path{};
  // Finished rows kept this long, and how often that is applied.
  std::chrono::milliseconds keep = std::chrono::hours(24 * 7);
  std::chrono::milliseconds prune_every = std::chrono::minutes(1);
  // What the journal may take on disk (SQLite: the file, its WAL and its
  // shared-memory index; PostgreSQL: its tables with their indexes and TOAST);
  // the oldest finished rows are pruned to stay under it; 0: no bound.
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  // How often a write that failed is tried again, and for how long at a stop.
  std::chrono::milliseconds retry_every = std::chrono::milliseconds(200);
  std::chrono::milliseconds stop_grace = std::chrono::seconds(2);
  // Writer thread: after each commit, each change of writable() and at fencing.
  std::function<void()> on_commit{};
  // PostgreSQL: how often a standby tries for leadership, and how often an
  // idle writer checks that its connection, lock and term still hold.
  std::chrono::milliseconds standby_retry = std::chrono::milliseconds(500);
  std::chrono::milliseconds liveness_every = std::chrono::milliseconds(250);
  // PostgreSQL, while standby: called before each try for leadership; false
  // gives up (the opening throws journal_error). Null: wait for ever.
  std::function<bool()> keep_waiting{};
};

// Whether the journal can be written, for mmi.stats.
struct journal_health {
  bool writable{true};        // the last write succeeded
  std::string error;          // why the last write failed, while not writable
  std::int64_t since_ms{0};   // unix ms of the last change (or of the open)
  std::uint64_t attempts{0};  // failed writes in this streak
  std::uint64_t waiting{0};   // events kept for the next retry
};

}  // namespace carico
