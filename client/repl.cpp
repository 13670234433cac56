#include "client/repl.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

#include "client/mmi_report.hpp"
#include "client/repl_words.hpp"

namespace carico {

namespace {

// SIGINT/SIGTERM reach the loop through this pipe: 'I' or 'T'.
int signal_pipe_write = -1;

void on_signal(int sig) {
  if (signal_pipe_write >= 0) {
    const char c = sig == SIGINT ? 'I' : 'T';
    [[maybe_unused]] ssize_t n = ::write(signal_pipe_write, &c, 1);
  }
}

}  // namespace

repl::repl(client& broker, repl_options options)
    : client_(broker), options_(std::move(options)) {
  interactive_ = options_.interactive.value_or(::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO));
  seed_ = options_.seed.value_or(std::random_device{}());
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error(std::strerror(errno));
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  add_builtin_commands();
}

repl::~repl() {
  client_.close();  // outstanding callbacks run now, while the pipe still exists
  ::close(wake_read_);
  ::close(wake_write_);
}

void repl::add_command(command c) {
  for (command& existing : commands_) {
    if (existing.name == c.name) {
      existing = std::move(c);
      return;
    }
  }
  commands_.push_back(std::move(c));
}

void repl::add_builtin_commands() {
  using namespace std::placeholders;
  const std::string dir = options_.files_dir;
  add_command({"send", "send N | send FILE...",
               "send N documents picked at random from " + dir +
                   "/, or the files named (a bare name is also looked for in " + dir + "/)",
               "send 10   send hello.json",
               [this](const arguments& a) { cmd_send(a); }, true});
  add_command({"FTP", "FTP", "the original's command: asks how many files, then sends that many", "FTP",
               [this](const arguments& a) { cmd_ftp(a); }});
  add_command({"list", "list", "the documents in " + dir + "/: name, size, title", "list",
               [this](const arguments& a) { cmd_list(a); }});
  add_command({"workers", "workers", "the broker's workers: state, load, memory, last heartbeat", "workers",
               [this](const arguments& a) { cmd_workers(a); }});
  add_command({"stats", "stats", "the broker's counters", "stats",
               [this](const arguments& a) { cmd_stats(a); }});
  add_command({"status", "status N", "what became of request N (the request= of a reply)", "status 17",
               [this](const arguments& a) { cmd_status(a); }});
  add_command({"history", "history [N]", "the last N requests the broker journaled (default 20)",
               "history 10", [this](const arguments& a) { cmd_history(a); }});
  add_command({"get", "get N [FILE]",
               "fetch back the document request N stored (to FILE, else shown here)", "get 17 copia.json",
               [this](const arguments& a) { cmd_get(a); }});
  add_command({"stored", "stored [N]", "the last N documents the broker's workers stored (default 20)",
               "stored 10", [this](const arguments& a) { cmd_stored(a); }});
  add_command({"help", "help [COMMAND]", "this list, or one command", "help send",
               [this](const arguments& a) { cmd_help(a); }});
  add_command({"exit", "exit", "leave (also quit, or Ctrl-D)", "exit",
               [this](const arguments& a) { cmd_exit(a); }});
  add_command({"quit", "quit", "leave", "quit", [this](const arguments& a) { cmd_exit(a); }});
}

void repl::say(const std::string& text) {
  std::string out = text;
  if (out.empty() || out.back() != '\n') out += '\n';
  if (editor_) {
    editor_->print(out);
  } else {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
}

void repl::error(const std::string& text) {
  if (interactive_) {
    say("error: " + text);
  } else {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", text.c_str());
    std::fflush(stderr);
  }
}

void repl::post(std::function<void()> event) {
  {
    std::lock_guard lock(mutex_);
    posted_.push_back(std::move(event));
  }
  const char c = 'w';
  [[maybe_unused]] ssize_t n = ::write(wake_write_, &c, 1);  // a full pipe already wakes the loop
}

void repl::run_posted() {
  char buf[256];
  while (::read(wake_read_, buf, sizeof buf) > 0) {
  }
  std::deque<std::function<void()>> events;
  {
    std::lock_guard lock(mutex_);
    events.swap(posted_);
  }
  for (auto& e : events) e();
}

void repl::ask(std::string service, nlohmann::json head, std::string payload,
               std::function<void(const reply&)> on_reply) {
  ++asking_;
  const std::string what = service;
  client_.submit(std::move(service), std::move(head), std::move(payload),
                 [this, what, on_reply = std::move(on_reply)](reply r) {
                   post([this, what, on_reply, r = std::move(r)]() {
                     --asking_;
                     if (r.local && r.code == 504) {
                       error("the broker at " + client_.options().endpoint + " did not answer " + what +
                             " within " + std::to_string(client_.options().timeout_ms) +
                             " ms (is it running?)");
                       return;
                     }
                     if (r.local && r.code == 503) {
                       // "no broker at ...: nothing answered in 2 s"; silent when closing.
                       if (r.error() != "client closed") error(r.error() + " (is it running?)");
                       return;
                     }
                     on_reply(r);
                   });
                 });
}

bool repl::busy() const { return asking_ > 0 || batch_ != nullptr; }

void repl::handle_line(const std::string& line) {
  if (answer_) {
    auto answer = std::move(answer_);
    answer_ = nullptr;
    if (editor_) editor_->set_prompt("carico> ");
    answer(line);
    return;
  }
  std::vector<std::string> words = split_words(line);
  if (words.empty()) return;
  const std::string name = words.front();
  words.erase(words.begin());
  for (const command& c : commands_) {
    if (c.name == name || (c.name == "FTP" && lower_case(name) == "ftp")) {
      if (c.name != "exit" && c.name != "quit") exit_warned_ = false;
      c.run(words);
      return;
    }
  }
  std::string message = "unknown command '" + display_text(name, 40) + "'.";
  if (auto s = suggest(name)) message += " Did you mean '" + *s + "'?";
  message += " Type help for the list.";
  error(message);
}

void repl::on_interrupt() {
  if (batch_ && !batch_->sender->stopped()) {
    say("stopping batch " + std::to_string(batch_->number) + ": nothing more is sent, " +
        std::to_string(batch_->sender->outstanding()) + " replies still to come");
    batch_->sender->stop();
  } else if (answer_) {  // Ctrl-C at FTP's question: no answer
    answer_ = nullptr;
    editor_->clear_line();
    editor_->set_prompt("carico> ");
    say("nothing sent");
  } else if (!editor_->clear_line()) {  // the typed text goes, as in a shell
    say("(type exit or press Ctrl-D to leave)");
  }
}

void repl::cmd_exit(const arguments&) {
  if (batch_ && interactive_ && !exit_warned_) {
    exit_warned_ = true;
    error(batch_running() + "; type exit again to leave anyway");
    return;
  }
  quit_ = true;
}

int repl::run() {
  int sig_pipe[2];
  if (::pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return 1;
  signal_pipe_write = sig_pipe[1];
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  int status = 0;
  std::string pending;     // piped input not yet run
  bool input_ended = false;
  if (interactive_) {
    std::setlocale(LC_CTYPE, "");  // libedit edits UTF-8 (accents in file names) only in a UTF-8 locale
    std::string history = options_.history_path;
    if (history.empty()) {
      const char* home = std::getenv("HOME");
      history = home ? std::string(home) + "/.carico_history" : "";
    } else if (history == "-") {
      history.clear();
    }
    editor_ = std::make_unique<line_editor>(history, options_.history_size,
                                            [this](const std::string& before, const std::string& word) {
                                              return complete(before, word);
                                            });
    say("carico-client: connected to " + client_.options().endpoint + ", documents from " +
        options_.files_dir + "/. Type help for the commands, send 10 to begin.");
    editor_->set_prompt("carico> ");
    editor_->start();
  }

  while (!quit_) {
    if (!interactive_) {
      // Piped: run whole lines, one at a time, each to its end.
      while (!quit_ && !busy()) {
        const std::size_t eol = pending.find('\n');
        if (eol == std::string::npos) break;
        std::string line = pending.substr(0, eol);
        pending.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        handle_line(line);
      }
      if (input_ended && !quit_ && !busy()) {
        if (!pending.empty()) {
          std::string line;
          line.swap(pending);
          handle_line(line);
          continue;
        }
        break;
      }
      if (quit_) break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    fds[n++] = {wake_read_, POLLIN, 0};
    fds[n++] = {sig_pipe[0], POLLIN, 0};
    const bool want_input = interactive_ ? true : (!input_ended && !busy());
    if (want_input) fds[n++] = {STDIN_FILENO, POLLIN, 0};
    int timeout = -1;
    if (editor_ && batch_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(batch_->next_tick -
                                                                             std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::clamp<long long>(left.count(), 0, 100));
    }
    const int ready = ::poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0 && (fds[1].revents & POLLIN)) {
      char c = 0;
      char last = 0;
      while (::read(sig_pipe[0], &c, 1) > 0) last = c;
      if (last == 'T' || !interactive_) {
        status = 130;
        break;
      }
      on_interrupt();
    }
    if (ready > 0 && (fds[0].revents & POLLIN)) run_posted();
    if (ready > 0 && n == 3 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (interactive_) {
        line_editor::input in = editor_->read();
        if (in.kind == line_editor::input::line) {
          if (!answer_) editor_->add_history(in.text);  // commands, not answers to FTP's question
          handle_line(in.text);
          if (!quit_) editor_->start();
        } else if (in.kind == line_editor::input::eof) {
          say("");
          quit_ = true;
        }
      } else {
        char buf[4096];
        const ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
        if (got > 0) {
          pending.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          input_ended = true;
        }
      }
    }
    if (editor_ && batch_ && std::chrono::steady_clock::now() >= batch_->next_tick) update_status();
  }

  editor_.reset();  // restores the terminal
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe_write = -1;
  ::close(sig_pipe[0]);
  ::close(sig_pipe[1]);
  return status;
}

}  // namespace carico
