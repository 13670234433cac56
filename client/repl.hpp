// carico-client's interactive shell. On a terminal: libedit line editing,
// history in ~/.carico_history, tab completion of commands and file names,
// replies printed above the line being typed, a live progress line (naming
// the broker the client is on) while a batch runs and a summary when it ends.
// Batches go through batch_sender, documents are picked by pick_documents and
// the broker's answers rendered by mmi_report, as in the one-shot commands. Piped (stdin or stdout not a
// terminal): one command per input line, each finished before the next is
// read, plain output lines, no prompt and no control characters.
//
//   carico::client c(context, options);
//   carico::repl shell(c, {.files_dir = "files"});
//   shell.add_command({"status", "status N", "...", "status 17", handler});  // more commands
//   return shell.run();
//
// Everything runs on the thread that calls run(): replies from the client's
// I/O thread are posted to it through a pipe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/batch_sender.hpp"
#include "client/client.hpp"
#include "client/document.hpp"
#include "client/line_editor.hpp"

namespace carico {

struct repl_options {
  std::string files_dir = "files";      // where `list` and `send N` look
  std::string history_path;             // "" for ~/.carico_history; "-" for no history file
  int history_size = 1000;              // history entries kept
  std::size_t window = 64;              // a batch's requests outstanding at once
  std::size_t show_replies_up_to = 100; // larger batches print only the failed replies
  std::optional<bool> interactive;      // unset: stdin and stdout are terminals
  std::optional<unsigned> seed;         // for `send N`; unset: random
};

class repl {
 public:
  // What a command is given: the words after its name.
  using arguments = std::vector<std::string>;

  struct command {
    std::string name;                               // what the user types first
    std::string usage;                              // e.g. "send N | send FILE..."
    std::string summary;                            // one line for `help`
    std::string example;                            // a line the user could type
    std::function<void(const arguments&)> run;      // runs on the REPL's thread
    bool completes_files{false};                    // Tab after it completes file names
  };

  repl(client& broker, repl_options options);
  ~repl();
  repl(const repl&) = delete;
  repl& operator=(const repl&) = delete;

  // Adds (or replaces, by name) a command; `help` lists it in insertion order.
  void add_command(command c);
  // Reads and runs commands until exit/quit/Ctrl-D/end of input. Returns the
  // exit status: 0, or 130 after SIGINT/SIGTERM when piped.
  int run();

  // For commands: print whole lines (a '\n' is added when missing).
  void say(const std::string& text);
  // "error: <text>": on the terminal above the prompt; piped, on stderr.
  void error(const std::string& text);
  // Asks the broker without blocking the REPL; on_reply runs on the REPL's
  // thread. A local 504 (no answer within the timeout) is reported by the
  // REPL ("the broker at ... did not answer") and on_reply is not called.
  void ask(std::string service, nlohmann::json head, std::string payload,
           std::function<void(const reply&)> on_reply);
  bool interactive() const { return interactive_; }
  const repl_options& options() const { return options_; }

  // The known command nearest to word by edit distance, when near enough.
  std::optional<std::string> suggest(const std::string& word) const;

 private:
  // The batch running: batch_sender does the sending and counting; the REPL
  // prints, draws the status line and says how it ended.
  struct batch {
    unsigned number{0};                               // 1, 2, ... in this session
    bool show_replies{true};                          // print each reply (else only failures)
    std::chrono::steady_clock::time_point next_tick;  // next status line update
    std::unique_ptr<batch_sender> sender;             // the batch engine
  };

  void add_builtin_commands();
  void handle_line(const std::string& line);
  void post(std::function<void()> event);
  void run_posted();
  bool busy() const;
  std::vector<std::string> complete(const std::string& before, const std::string& word) const;
  // Ctrl-C: stops the batch, drops FTP's question, or clears the line.
  void on_interrupt();

  void cmd_exit(const arguments& args);
  // client/repl_help.cpp (with suggest() and complete()): help [COMMAND].
  void cmd_help(const arguments& args);
  // client/repl_batch.cpp: send N | send FILE..., FTP, and the batch they start.
  void cmd_send(const arguments& args);
  void cmd_ftp(const arguments& args);
  // Starts a batch of n random documents from files_dir; false (after an error) when it cannot.
  bool send_random(std::uint64_t n);
  void start_batch(std::vector<std::shared_ptr<const document>> documents);
  void on_batch_reply(const reply& r, const document& doc);
  void finish_batch(const batch_result& result);
  void update_status();
  // "[batch 3 on tcp://...] sent 40/100  done 37 ..." for the running batch; "" when none.
  std::string status_line() const;
  // "batch 3 is still running (37 of 100 answered)".
  std::string batch_running() const;
  // client/repl_broker.cpp: list, workers, stats, status N, history [N].
  void cmd_list(const arguments& args);
  void cmd_workers(const arguments& args);
  void cmd_stats(const arguments& args);
  void cmd_status(const arguments& args);
  void cmd_history(const arguments& args);
  // `workers` and `stats`: an MMI table under the line naming the broker.
  void ask_broker_table(const std::string& service,
                        std::function<std::string(const nlohmann::json&)> render);
  // `history [N]` and `stored [N]`: the last N (default 20, at most 1000) of an
  // MMI listing, rendered by `render`; `what` names it when the broker has none.
  void ask_listing(const arguments& args, const std::string& command, const std::string& service,
                   const std::string& what,
                   std::function<std::string(const nlohmann::json&)> render);
  // client/repl_fetch.cpp: get N [FILE], stored [N], and the numbers get completes.
  void cmd_get(const arguments& args);
  void cmd_stored(const arguments& args);
  void note_request(const reply& r);

  client& client_;                              // carries every request
  repl_options options_;                        // as configured
  bool interactive_;                            // terminal mode
  std::vector<command> commands_;               // in `help` order
  std::unique_ptr<line_editor> editor_;         // terminal mode only
  std::function<void(const std::string&)> answer_;  // set while a question (FTP) waits for its answer

  int wake_read_{-1};                           // read end of the event pipe
  int wake_write_{-1};                          // written by post(), from any thread
  std::mutex mutex_;                            // guards posted_
  std::deque<std::function<void()>> posted_;    // events for the REPL's thread
  std::size_t asking_{0};                       // ask()s not yet answered
  std::unique_ptr<batch> batch_;                // the batch running, if any
  unsigned batch_number_{0};                    // batches started so far
  unsigned seed_;                               // the random pick's seed
  bool quit_{false};                            // leave run() after this command
  bool exit_warned_{false};                     // `exit` during a batch asked for confirmation once
  std::deque<std::uint64_t> recent_requests_;   // request numbers of recent 200s, newest last
                                                // (at most 100), for `get` completion
};

}  // namespace carico
