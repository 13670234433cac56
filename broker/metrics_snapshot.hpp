// What the broker's loop publishes for its HTTP port (broker/http_server.hpp):
// a copy of its counters, rings and queues at one moment. Built by
// broker_monitor on the loop's thread, then only read, by any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "broker/duration_histogram.hpp"

namespace carico {

// One worker of a ring, as its last load report and the broker's books have it.
struct worker_snapshot {
  std::string name;                // from READY
  std::string state;               // ready, overload or drain
  std::int64_t state_since_ms{0};  // unix ms of the first snapshot that saw this state
  std::uint64_t in_flight{0};      // requests it holds
  std::uint64_t capacity{0};       // requests it may hold
  std::uint64_t answered{0};       // replies it gave since it joined
  std::uint64_t pid{0};            // its process id
  std::string host;                // its host name
  std::uint64_t rss_bytes{0};      // its resident memory
  double mem_percent{0};           // rss as a share of its machine's memory
  double cpu_percent{0};           // its CPU use
  std::int64_t last_seen_ms{0};    // ms since its last message (heartbeat or reply)
  std::int64_t uptime_ms{0};       // ms since it joined
};

// One service: its ring (in rotation order), its queue, its finished requests.
struct service_snapshot {
  std::string name;                              // as clients and workers spell it
  bool active{true};                             // false: the broker forgot it (idle); kept for
                                                 // its counters, without ring or queue
  std::uint64_t queued{0};                       // requests waiting for a worker
  std::vector<worker_snapshot> ring;             // its workers, rotation order
  std::map<std::uint64_t, std::uint64_t> codes;  // finished requests by reply code
  duration_histogram total;                      // received to answered, seconds
  duration_histogram queued_time;                // received to last dispatch
  duration_histogram worker_time;                // last dispatch to answered
};

// Requests finished in one second, for the dashboard's graphs.
struct rate_point {
  std::int64_t unix_ms{0};    // end of the second
  std::uint64_t finished{0};  // requests answered in it (any code)
  std::uint64_t queued{0};    // requests waiting at its end, every service
};

// A re-dispatch, refusal or expiry, for the dashboard's list of the latest ones.
struct broker_event {
  std::int64_t unix_ms{0};  // when
  std::string kind;         // redispatch, refusal or expiry
  std::string text;         // what happened, one line
};

struct broker_snapshot {
  std::uint64_t sequence{0};   // 1 for the first snapshot, then +1 per publish
  std::int64_t taken_ms{0};    // unix ms when built
  std::int64_t started_ms{0};  // unix ms when the broker started
  bool stopping{false};        // the loop has stopped: shutting down
  // Counters since the broker started (mmi.stats' names).
  std::uint64_t received{0}, done{0}, failed{0}, expired{0}, redispatched{0}, refused{0},
      malformed{0}, late_replies{0}, unread_dropped{0}, resends{0}, workers_joined{0},
      workers_lost{0};
  std::uint64_t unanswered{0};  // requests accepted, not yet answered (queued or at a worker)
  std::vector<service_snapshot> services;  // by name
  std::uint64_t rss_bytes{0};              // the broker's resident memory
  // The journal (journal.hpp), when there is one.
  bool journal_enabled{false};
  bool journal_failing{false};        // its last write failed (journal::writable())
  std::string journal_error;          // why, while failing
  std::string journal_path;           // the SQLite file
  std::uint64_t journal_bytes{0};     // the file and its write-ahead log
  duration_histogram journal_commit;  // seconds per write transaction
  // For the dashboard.
  std::vector<rate_point> history;   // one a second, oldest first, the last five minutes
  double p50_ms{0}, p99_ms{0};       // request duration over the last minute
  std::uint64_t latency_samples{0};  // requests those percentiles are over
  std::vector<broker_event> events;  // the latest, oldest first
};

}  // namespace carico
