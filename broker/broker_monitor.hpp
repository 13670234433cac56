// The broker's window for its HTTP port: counts what the loop finishes by
// service and code, times it into histograms, keeps the latest re-dispatches
// and refusals, and at most every `every` builds a broker_snapshot from the
// loop's state and publishes it (snapshot_publisher.hpp). Everything here runs
// on the loop's thread; only the publisher is shared.
//
//   broker_monitor monitor(milliseconds(250));
//   monitor.on_finished(r, code, now);                    // finish_request
//   if (now >= monitor.next_publish()) monitor.publish(view, now);   // on_tick
//   http_server http(monitor.publisher(), ...);           // reads the snapshots
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/metrics_snapshot.hpp"
#include "broker/request.hpp"
#include "broker/service.hpp"
#include "broker/snapshot_publisher.hpp"
#include "shared/runtime.hpp"

namespace carico {

struct broker_stats;
class journal;

// What publish() reads of the broker: its own members, by reference.
struct broker_view {
  const broker_stats& stats;                                                  // counters
  const std::unordered_map<std::string, std::unique_ptr<service>>& services;  // rings, queues
  std::size_t in_memory;           // unanswered requests not parked (requests_)
  const journal* request_journal;  // null with none
  bool stopping;                   // the loop has stopped
};

class broker_monitor {
 public:
  // every: how often publish() is due; zero publishes nothing (no HTTP port),
  // and then the notes below cost a branch each.
  explicit broker_monitor(milliseconds every);

  // What the HTTP server reads.
  std::shared_ptr<const snapshot_publisher> publisher() const { return publisher_; }
  bool enabled() const { return every_.count() > 0; }
  // When publish() is next due; time_point::max() when never.
  time_point next_publish() const { return next_publish_; }

  // A request answered (by a worker, or 504: out of attempts or past its deadline): its code
  // and its time queued, at the worker and in all, under its service's name
  // (counts outlive a service the broker forgets while idle; past
  // max_counted_services names, the rest are counted as "_other").
  void on_finished(const request& r, std::uint64_t code, time_point now);
  static constexpr std::size_t max_counted_services = 1000;  // label values a client can create
  // Events for the dashboard's list of the latest ones.
  void on_redispatch(std::uint64_t number, std::string_view worker, std::string_view service);
  void on_expiry(std::uint64_t number, std::string_view service, std::string_view why);
  void on_refusal(std::string_view service, std::string_view reason);

  // Builds a snapshot of view and of what this monitor counted, and publishes it.
  void publish(const broker_view& view, time_point now);

 private:
  struct service_counts {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> codes;  // (code, finished), few
    duration_histogram total;                                    // received to answered
    duration_histogram queued_time;                              // received to last dispatch
    duration_histogram worker_time;                              // last dispatch to answered
  };
  struct seen_state {
    std::string state;         // the state the last snapshot saw
    std::int64_t since_ms{0};  // since when
  };
  struct finished_sample {
    time_point at;  // when it was answered
    float seconds;  // received to answered
  };

  void note(std::string_view kind, std::string text);
  void sample_rates(const broker_view& view, std::int64_t now_ms, time_point now);
  void fill_latency(broker_snapshot& out, time_point now) const;

  milliseconds every_;                                      // publish interval; 0: never
  time_point next_publish_;                                 // see next_publish()
  std::shared_ptr<snapshot_publisher> publisher_;           // shared with the HTTP server
  std::uint64_t sequence_{0};                               // snapshots published
  std::int64_t started_ms_;                                 // unix ms at construction
  std::unordered_map<std::string, service_counts> counts_;  // by service name
  std::string last_service_;                                // on_finished's last service...
  service_counts* last_counts_{nullptr};                    // ...and its counts (nodes stay put)
  std::deque<broker_event> events_;                         // the latest, oldest first
  std::vector<finished_sample> samples_;                    // ring of the latest durations
  std::size_t next_sample_{0};                              // where the ring writes next
  std::unordered_map<std::string, seen_state> states_;      // by service + '\0' + worker
  std::deque<rate_point> history_;                          // one a second, oldest first
  time_point next_rate_{};                                  // when the next point is taken
  std::uint64_t finished_at_rate_{0};                       // finished count at the last point
};

}  // namespace carico
