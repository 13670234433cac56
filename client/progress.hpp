// The running account of one batch of requests: what was sent, what came back
// with which code, from which worker, how fast. Renders the live progress line
// and the closing summary of the REPL's `send`.
//
//   carico::batch_progress p(100);            // 100 documents to send
//   p.sent();  ...  p.completed(reply);
//   std::string line = p.progress_line(p.elapsed());
//   std::string text = p.summary(p.elapsed());
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/client.hpp"

namespace carico {

class batch_progress {
 public:
  using seconds = std::chrono::duration<double>;

  // total: how many requests the batch will send.
  explicit batch_progress(std::size_t total);

  // One more request handed to the client.
  void sent() { ++sent_; }
  // One request answered (by the broker or locally).
  void completed(const reply& r);

  std::size_t total() const { return total_; }
  std::size_t sent_count() const { return sent_; }
  std::size_t done() const { return done_; }
  std::size_t ok() const { return ok_; }
  std::size_t failed() const { return done_ - ok_; }
  bool finished() const { return done_ >= total_; }
  // Time since construction.
  seconds elapsed() const;

  // `sent 40/100  done 37  failed 0  412/s  ETA 0.2s`: one line, no newline.
  std::string progress_line(seconds elapsed) const;
  // Several lines, each ending in '\n':
  //   100 documents in 0.84 s (119/s): 98 ok, 2 failed
  //   codes    200 x98  504 x2
  //   latency  p50 3.1 ms  p99 12.0 ms  max 14.2 ms
  //   workers  w1 34  w2 33  w3 31  (none) 2
  std::string summary(seconds elapsed) const;

  // The latency below which fraction q (0..1) of the replies fall; 0 when none.
  std::chrono::microseconds percentile(double q) const;
  const std::map<std::uint64_t, std::size_t>& codes() const { return codes_; }
  const std::map<std::string, std::size_t>& workers() const { return workers_; }

 private:
  std::size_t total_;                               // requests the batch will send
  std::size_t sent_{0};                             // handed to the client so far
  std::size_t done_{0};                             // answered so far
  std::size_t ok_{0};                               // answered 200
  std::map<std::uint64_t, std::size_t> codes_;      // replies by code
  std::map<std::string, std::size_t> workers_;      // replies by worker ("" when none said)
  std::vector<std::int64_t> latencies_us_;          // every reply's latency
  std::chrono::steady_clock::time_point started_;   // construction time
};

// "1.2 ms", "340 us", "2.50 s".
std::string format_duration(std::chrono::microseconds d);

}  // namespace carico
