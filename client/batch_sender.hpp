// Sends a batch of documents through a client, pipelined within a window, and
// reports each reply as it arrives: the one batch engine of `carico-client send`
// (blocking, a line per reply) and of the REPL's send (driven from its event
// loop, each reply to a hook).
//
//   carico::batch_sender sender(client, {.window = 64, .json = false}, std::cout);
//   carico::batch_result r = sender.send(documents);
//   return r.all_ok() ? 0 : 1;
//
//   carico::batch_sender batch(client, {.window = 64}, print_reply);  // (reply, document)
//   batch.start(documents, post_to_my_loop, [](const carico::batch_result& r) {...});
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "client/document.hpp"
#include "client/progress.hpp"

namespace carico {

struct batch_options {
  std::string service = "text";                        // where the documents go
  std::size_t window = 64;                             // requests outstanding at once (0: all)
  std::optional<std::chrono::milliseconds> timeout{};  // per request; the client's default if unset
  bool json = false;  // the ostream constructor prints JSON objects instead of text lines
  // send() only (an event loop calls stop() instead):
  std::function<bool()> stop{};                // polled while sending: true submits nothing more
  std::chrono::milliseconds stop_grace{2000};  // once stopped, how long replies in flight may take
};

// How a batch went.
struct batch_result {
  std::size_t sent{0};         // requests submitted
  std::size_t ok{0};           // replies with code 200
  std::size_t failed{0};       // replies with any other code (local 504/503 included)
  std::size_t interrupted{0};  // documents left without a reply by a stop: never sent, or
                               // still in flight when stop_grace ran out
  bool stopped{false};         // options.stop() (send) or stop() (start) said so before every
                               // document had its reply
  std::string summary;         // the closing summary both print (batch_progress::summary)
  // True when something was sent and every reply was 200.
  bool all_ok() const { return sent > 0 && ok == sent; }
};

// A reply of the batch, after it was counted, with the document it answers.
using batch_reply_hook = std::function<void(const reply&, const document&)>;

class batch_sender {
 public:
  // Runs a closure on the thread that drives the batch. Called from the
  // client's I/O thread (or from submit()'s caller when a request fails at once).
  using poster = std::function<void(std::function<void()>)>;
  // Runs on the driving thread when the batch is over; it may destroy the sender.
  using finished_hook = std::function<void(const batch_result&)>;

  // Reports each reply on out as one line (format_reply_line, or reply_json
  // with options.json); out is written only from the driving thread.
  batch_sender(client& c, batch_options options, std::ostream& out);
  // Gives each reply to on_reply instead (the REPL prints it its own way).
  batch_sender(client& c, batch_options options, batch_reply_hook on_reply);
  ~batch_sender();
  batch_sender(const batch_sender&) = delete;
  batch_sender& operator=(const batch_sender&) = delete;

  // Blocking: sends every document (the same document may appear many times),
  // keeping at most options.window outstanding, and returns once each has its
  // reply. When options.stop() turns true (checked at least every 100 ms),
  // nothing more is sent; replies in flight are still reported for up to
  // options.stop_grace, and what has none by then counts as interrupted (its
  // late reply is dropped). A sender may run batches one after another.
  batch_result send(const std::vector<std::shared_ptr<const document>>& documents);

  // For an event loop (the REPL): submits the first window of documents and
  // returns. Each reply reaches the driving thread through post; running the
  // posted closure counts the reply, reports it and tops the window up. Once
  // every document sent has its reply, on_finished runs (at once for no
  // documents). A closure run after the sender is gone, or after the next
  // start(), does nothing: a batch still running when start() is called again
  // is abandoned, its replies dropped.
  void start(std::vector<std::shared_ptr<const document>> documents, poster post,
             finished_hook on_finished);
  // Submits nothing more (Ctrl-C); the batch finishes when the replies in
  // flight are in (inside stop() when none is). start() does not consult
  // options.stop.
  void stop();

  bool stopped() const { return result_.stopped; }
  // Documents in the batch, and requests submitted and not yet answered.
  std::size_t total() const { return documents_.size(); }
  std::size_t outstanding() const { return outstanding_; }
  // The running account: counts, codes, workers, latencies.
  const batch_progress& progress() const { return progress_; }

 private:
  // Sets up a batch without sending anything.
  void prepare(std::vector<std::shared_ptr<const document>> documents, poster post,
               finished_hook on_finished);
  void top_up();
  void on_reply(std::size_t index, reply r);
  // Nothing in flight and nothing more to send.
  bool over() const;
  batch_result result() const;
  // Runs on_finished (once).
  void finish();
  void print(const reply& r, const document& doc);

  client& client_;                                          // carries the requests
  batch_options options_;                                   // as configured
  std::ostream* out_{nullptr};                              // the report, for the line constructor
  batch_reply_hook on_reply_;                               // each counted reply
  std::vector<std::shared_ptr<const document>> documents_;  // the batch, in sending order
  std::shared_ptr<const poster> post_;  // to the driving thread; shared with the
                                        // requests in flight
  finished_hook on_finished_;           // once, when the batch is over
  std::size_t next_{0};                 // the next document to submit
  std::size_t outstanding_{0};          // submitted, not answered
  batch_progress progress_{0};          // the running account
  batch_result result_;                 // counts so far
  std::shared_ptr<char> alive_;         // this batch's token; posted closures
                                        // hold it weakly
};

// `200 request=17 worker=w1 attempts=1 count_a=12 stored_as=17-foo.json 3.2ms  files/foo.json`;
// for an error the reason follows the code: `504 error="timeout: ..." 100.1ms  files/foo.json`.
std::string format_reply_line(const reply& r, const std::string& file);
// The reply header plus "file": the `--json` form of a reply.
nlohmann::json reply_json(const reply& r, const std::string& file);

}  // namespace carico
