// The routing log as an access log (HAProxy's model): one line per finished
// request, written when it ends, with where it went and how long each part
// took. The broker loop only fills a small record; a thread of this class's
// own formats it and writes the line to the logger's sinks, so the loop never
// formats.
//
//   carico::access_log access(log);          // on only when `log` logs info
//   access.add({.number = 7, ...});           // loop thread, per finished request
//   access.flush();                           // loop thread, once per pass
//
// Lines look like
//   request 7 done code=200 service=text worker=w1 attempts=1 client=00a1b2 name=c1
//   id=12 title="Banana bread" bytes=311 queued_ms=0.1 worker_ms=2.3 total_ms=2.5
// A line's text comes from clients (names, titles): it is escaped by sample().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

namespace carico {

// What the loop knows of a request when it ends.
struct access_record {
  std::uint64_t number{0};    // the broker's request number
  std::uint64_t code{0};      // the reply's code
  std::string outcome;        // done, failed, expired
  std::string service;        // the service asked for
  std::string worker;         // who answered it (or held it last); empty for none
  std::uint64_t attempts{0};  // workers given it
  std::string client;         // the client's routing id, raw bytes (hex in the line)
  bool stock{false};          // a stock MDP/0.1 client (it has no header)
  zmq::message_t head;        // the client's header as encoded (title, client, id are read
                              // from it on the log's thread); empty for none
  std::size_t bytes{0};       // payload bytes
  std::int64_t queued_us{0};  // from receipt to the last dispatch (or to the end, if never)
  std::int64_t worker_us{0};  // from the last dispatch to the end; 0 if never dispatched
  std::int64_t total_us{0};   // from receipt to the end
};

class access_log {
 public:
  // Logs through `log` at info; does nothing (and starts no thread) when
  // `log` does not log info.
  explicit access_log(std::shared_ptr<spdlog::logger> log);
  ~access_log();  // writes what is left, then stops the thread
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  bool enabled() const { return enabled_; }
  // Appends a record to the current batch (the loop's thread only).
  void add(access_record&& record);
  // Hands the batch to the log's thread: one lock per loop pass, not per request.
  void flush();

  // The line of one record (exposed for tests).
  static std::string format(const access_record& r);

 private:
  void run();
  // To each of log_'s sinks that logs info; false if one failed.
  bool write(const std::string& line);
  // Those sinks' buffers to their files; false if one failed.
  bool flush_sinks();
  // Says on stderr that lines are lost, once per streak of failures.
  void note_failure(const std::exception& e);

  std::shared_ptr<spdlog::logger> log_;  // where lines go
  bool enabled_{false};                  // log_ logs info
  std::vector<access_record> batch_;     // the loop's records since the last flush

  std::mutex mutex_;                   // guards handed_ and stopping_
  std::condition_variable ready_;      // signals handed_ or stopping_
  std::vector<access_record> handed_;  // batches waiting for the thread
  bool stopping_{false};               // the destructor asks the thread to end
  bool failing_{false};                // lines lost since the last batch written whole (thread only)
  std::thread thread_;                 // formats and logs; none when disabled
};

}  // namespace carico
