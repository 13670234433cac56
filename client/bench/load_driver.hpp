// The bench's clients: `clients` DEALER sockets speaking MDPC01 through
// shared/codec.hpp, each keeping `window` requests outstanding, driven by a
// few threads (each thread polls its share of the sockets). The same loop runs
// against the raw proxy and against carico-broker, so the numbers compare.
//
//   carico::load_driver d(context, options, payload);
//   d.start();                    // warm-up begins now
//   ... d.measure_start(), d.measure_end() ...
//   carico::load_result r = d.finish();   // joins; latencies sorted
//
// A request's header carries only `id`: its send time in steady-clock
// nanoseconds, so a reply needs no lookup to give its latency.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "shared/runtime.hpp"

namespace carico {

struct load_options {
  std::string endpoint;                  // frontend to connect to
  std::string service = "echo";          // service named in every request
  std::size_t clients = 8;               // DEALER sockets
  std::size_t window = 64;               // requests outstanding per socket
  std::size_t threads = 1;               // threads sharing the sockets
  milliseconds warmup{1000};             // sent and answered, not counted
  milliseconds duration{5000};           // the measured interval
  milliseconds drain_timeout{5000};      // after it, unanswered requests count as lost
  bool expect_echo = false;              // the reply body must be the payload back
  bool keyed = false;                    // requests carry `client` (one per thread) and
                                         // `id`: the broker's exactly-once path
};

struct load_result {
  double seconds{0};                     // length of the measured interval
  std::uint64_t sent{0};                 // requests sent, warm-up included
  std::uint64_t answered{0};             // replies received during the measured interval
  std::uint64_t errors{0};               // replies not 200, malformed, not the echo, or lost
  std::uint64_t lost{0};                 // requests still unanswered after drain_timeout
  std::string first_error;               // a sample of what went wrong
  std::vector<std::uint32_t> latency_us; // requests sent in the interval, sorted
  std::int64_t event_delay_us{-1};       // see mark_event(); -1 when none
  std::uint64_t event_in_flight{0};      // requests sent before the event, answered after
};

class load_driver {
 public:
  load_driver(zmq::context_t& context, load_options options, const zmq::message_t& payload);
  ~load_driver();
  load_driver(const load_driver&) = delete;
  load_driver& operator=(const load_driver&) = delete;

  // Connects the sockets and starts sending; the warm-up starts now.
  void start();
  time_point measure_start() const { return measure_start_; }
  time_point measure_end() const { return measure_end_; }
  // Records "now" as an event (e.g. a worker killed): finish() then reports
  // the longest wait, from the event, of a request sent before it.
  void mark_event();
  // Waits for the threads (sending stops at measure_end, then replies are
  // awaited for drain_timeout) and merges their figures.
  load_result finish();

 private:
  void thread_loop(std::size_t index, std::size_t count);

  zmq::context_t& context_;              // sockets are made in the threads
  load_options options_;                 // as given
  std::vector<zmq::message_t> payloads_; // one shared payload per thread
  std::vector<load_result> partial_;     // per-thread figures
  std::vector<std::thread> threads_;     // the client threads
  time_point measure_start_{};           // end of the warm-up
  time_point measure_end_{};             // sending stops here
  std::atomic<std::int64_t> event_ns_{0};// mark_event() time; 0 for none
};

}  // namespace carico
