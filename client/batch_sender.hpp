// Sends a batch of documents through a client, pipelined within a window, and
// reports one line per reply as replies arrive. The engine behind
// `carico-client send` (and the REPL's send).
//
//   carico::batch_sender sender(client, {.window = 64, .json = false}, std::cout);
//   carico::batch_result r = sender.send(documents);
//   return r.all_ok() ? 0 : 1;
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
  std::string service = "text";                     // where the documents go
  std::size_t window = 64;                          // requests outstanding at once (0: all)
  std::optional<std::chrono::milliseconds> timeout{};  // per request; the client's default if unset
  bool json = false;                                // print JSON objects instead of text lines
  std::function<bool()> stop{};                     // polled while sending: true submits nothing more
  std::chrono::milliseconds stop_grace{2000};       // once stopped, how long replies in flight may take
};

// How a batch went.
struct batch_result {
  std::size_t sent{0};    // requests submitted
  std::size_t ok{0};      // replies with code 200
  std::size_t failed{0};  // replies with any other code (local 504/503 included)
  std::size_t interrupted{0};  // documents left without a reply by a stop: never sent, or
                               // still in flight when stop_grace ran out
  bool stopped{false};         // options.stop() said so before every document had its reply
  std::string summary;         // the REPL's closing summary of the batch (batch_progress::summary)
  // True when something was sent and every reply was 200.
  bool all_ok() const { return sent > 0 && ok == sent; }
};

class batch_sender {
 public:
  // out receives one line per reply; it is written only from the thread that
  // calls send().
  batch_sender(client& c, batch_options options, std::ostream& out);

  // Sends every document (the same document may appear many times), keeping at
  // most options.window outstanding, and returns once each has its reply. When
  // options.stop() turns true (checked at least every 100 ms), nothing more is
  // sent; replies in flight are still printed for up to options.stop_grace, and
  // what has none by then counts as interrupted (its late reply is dropped).
  batch_result send(const std::vector<std::shared_ptr<const document>>& documents);

 private:
  void print(const reply& r, const document& doc);

  client& client_;         // carries the requests
  batch_options options_;  // as configured
  std::ostream& out_;      // the report
};

// `200 request=17 worker=w1 attempts=1 count_a=12 stored_as=17-foo.json 3.2ms  files/foo.json`;
// for an error the reason follows the code: `504 error="timeout: ..." 100.1ms  files/foo.json`.
std::string format_reply_line(const reply& r, const std::string& file);
// The reply header plus "file": the `--json` form of a reply.
nlohmann::json reply_json(const reply& r, const std::string& file);

}  // namespace carico
