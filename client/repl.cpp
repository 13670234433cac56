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
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <utility>

#include "client/batch_sender.hpp"
#include "client/mmi_report.hpp"
#include "shared/text_table.hpp"

namespace carico {
namespace fs = std::filesystem;

namespace {

// SIGINT/SIGTERM reach the loop through this pipe: 'I' or 'T'.
int signal_pipe_write = -1;

void on_signal(int sig) {
  if (signal_pipe_write >= 0) {
    const char c = sig == SIGINT ? 'I' : 'T';
    [[maybe_unused]] ssize_t n = ::write(signal_pipe_write, &c, 1);
  }
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A positive integer no larger than max, or why not.
std::optional<long> positive_integer(const std::string& text, long max, std::string& why) {
  std::size_t used = 0;
  long n = 0;
  try {
    n = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || n <= 0 || !std::isdigit(static_cast<unsigned char>(text[0]))) {
    why = "N must be a positive integer, not '" + text + "'";
    return std::nullopt;
  }
  if (n > max) {
    why = "N must be at most " + std::to_string(max) + ", not " + text;
    return std::nullopt;
  }
  return n;
}

// True for words that look like an attempt at a number: 0, -3, 2.5, 1e3.
bool looks_numeric(const std::string& word) {
  return !word.empty() && word.find_first_not_of("0123456789+-.eE") == std::string::npos &&
         word.find_first_of("0123456789") != std::string::npos;
}

std::string printable(std::string s, std::size_t max) {
  s = without_controls(std::move(s), ' ');
  std::size_t cps = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++cps > max) {
      s.resize(i);
      s += "...";
      break;
    }
  }
  return s;
}

}  // namespace

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// One batch: the documents, how far it went, and its account.
struct repl::batch {
  unsigned number;                                      // 1, 2, ... in this session
  std::vector<std::shared_ptr<const document>> documents;  // what is sent, in order
  std::size_t next{0};                                  // the next document to submit
  std::size_t outstanding{0};                           // submitted, not answered
  bool cancelled{false};                                // Ctrl-C: submit nothing more
  bool show_replies{true};                              // print each reply (else only failures)
  batch_progress progress;                              // counts, latencies, workers
  std::chrono::steady_clock::time_point next_tick;      // next status line update

  batch(unsigned n, std::vector<std::shared_ptr<const document>> docs)
      : number(n), documents(std::move(docs)), progress(documents.size()) {}
};

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

std::optional<std::string> repl::suggest(const std::string& word) const {
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  const std::string w = lower(word);
  for (const command& c : commands_) {
    const std::size_t d = edit_distance(w, lower(c.name));
    if (!best || d < best_distance) {
      best = c.name;
      best_distance = d;
    }
  }
  if (best && best_distance <= std::max<std::size_t>(2, word.size() / 2)) return best;
  return std::nullopt;
}

std::vector<std::string> repl::complete(const std::string& before, const std::string& word) const {
  std::vector<std::string> out;
  const std::vector<std::string> words = split_words(before);
  const bool first = words.empty() || (words.size() == 1 && !word.empty());
  if (first) {
    for (const command& c : commands_) out.push_back(c.name);
    return out;
  }
  const command* cmd = nullptr;
  for (const command& c : commands_) {
    if (c.name == words[0]) cmd = &c;
  }
  if (cmd == nullptr) return out;
  if (cmd->name == "get" && words.size() == 1) {  // the request number: recent ones, newest first
    for (auto n = recent_requests_.rbegin(); n != recent_requests_.rend(); ++n) {
      out.push_back(std::to_string(*n));
    }
    return out;
  }
  if (cmd->name == "help") {
    for (const command& c : commands_) out.push_back(c.name);
    return out;
  }
  if (!cmd->completes_files) return out;
  // Paths as typed, from the current folder ...
  const std::size_t slash = word.rfind('/');
  const std::string dir_part = slash == std::string::npos ? "" : word.substr(0, slash + 1);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_part.empty() ? "." : dir_part, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code type_ec;
    const bool is_dir = entry.is_directory(type_ec);
    if (!is_dir && entry.path().extension() != ".json") continue;
    out.push_back(dir_part + name + (is_dir ? "/" : ""));
  }
  // ... and bare document names from the files folder.
  if (slash == std::string::npos) {
    for (const auto& entry : fs::directory_iterator(options_.files_dir, ec)) {
      std::error_code type_ec;
      if (entry.is_regular_file(type_ec) && entry.path().extension() == ".json") {
        out.push_back(entry.path().filename().string());
      }
    }
  }
  return out;
}

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
    if (c.name == name || (c.name == "FTP" && lower(name) == "ftp")) {
      if (c.name != "exit" && c.name != "quit") exit_warned_ = false;
      c.run(words);
      return;
    }
  }
  std::string message = "unknown command '" + printable(name, 40) + "'.";
  if (auto s = suggest(name)) message += " Did you mean '" + *s + "'?";
  message += " Type help for the list.";
  error(message);
}

void repl::cmd_help(const arguments& args) {
  // Fits 80 columns: each command's usage and example on one line, what it
  // does wrapped below it.
  constexpr std::size_t width = 80;
  std::size_t usage_width = 0;
  for (const command& c : commands_) usage_width = std::max(usage_width, text_columns(c.usage));
  std::string text;
  for (const command& c : commands_) {
    if (!args.empty() && lower(c.name) != lower(args[0])) continue;
    std::string line = "  " + c.usage;
    line += std::string(usage_width - text_columns(c.usage) + 2, ' ') + "e.g. " + c.example;
    if (text_columns(line) > width) line = "  " + c.usage + "\n" + wrap_words("e.g. " + c.example, width, 6);
    if (line.back() != '\n') line += '\n';
    text += line + wrap_words(c.summary, width, 6);
  }
  if (text.empty()) {
    std::string message = "no command '" + printable(args[0], 40) + "'.";
    if (auto s = suggest(args[0])) message += " Did you mean '" + *s + "'?";
    error(message);
    return;
  }
  if (args.empty()) {
    std::string intro = "commands";
    if (interactive_) intro += " (Tab completes commands and file names; Up/Down walk the history)";
    text = wrap_words(intro + ":", width, 0) + text;
    text += wrap_words("replies print as: CODE request=N worker=W attempts=A count_a=... stored_as=... "
                       "LATENCY FILE; a batch of more than " +
                           std::to_string(options_.show_replies_up_to) +
                           " documents prints only the failed ones, then a summary.",
                       width, 0);
  }
  say(text);
}

void repl::cmd_list(const arguments&) {
  std::string why;
  const std::vector<std::string> paths = list_documents(options_.files_dir, why);
  if (paths.empty()) {
    error("cannot list documents: " + why);
    return;
  }
  constexpr std::size_t shown_max = 200;
  std::vector<std::vector<std::string>> rows{{"FILE", "SIZE", "TITLE"}};
  for (std::size_t i = 0; i < paths.size() && i < shown_max; ++i) {
    std::error_code ec;
    const auto size = fs::file_size(paths[i], ec);
    std::string title = "-";
    document_result doc = load_document(paths[i]);
    if (doc) title = document_title(doc.value->payload).value_or("(no title)");
    rows.push_back({fs::path(paths[i]).filename().string(), ec ? "?" : format_bytes(static_cast<double>(size)),
                    printable(title, 60)});
  }
  std::string text = render_table(rows);
  text += std::to_string(paths.size()) + " documents in " + options_.files_dir;
  if (paths.size() > shown_max) text += " (first " + std::to_string(shown_max) + " shown)";
  say(text);
}

bool repl::send_random(long n) {
  std::string why;
  const std::vector<std::string> pool = list_documents(options_.files_dir, why);
  if (pool.empty()) {
    error("cannot pick documents: " + why);
    return false;
  }
  std::mt19937 random(seed_ + batch_number_);
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  std::map<std::size_t, std::shared_ptr<const document>> loaded;
  std::vector<std::shared_ptr<const document>> documents;
  documents.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    const std::size_t k = pick(random);
    auto& doc = loaded[k];
    if (!doc) {
      document_result r = load_document(pool[k]);
      if (!r) {
        error("cannot read " + r.error);
        return false;
      }
      doc = r.value;
    }
    documents.push_back(doc);
  }
  start_batch(std::move(documents));
  return true;
}

void repl::cmd_send(const arguments& args) {
  if (args.empty()) {
    error("send what? usage: send N | send FILE...   (e.g. send 10)");
    return;
  }
  if (batch_) {
    error("batch " + std::to_string(batch_->number) + " is still running (" +
          std::to_string(batch_->progress.done()) + " of " + std::to_string(batch_->documents.size()) +
          " answered); wait for it, or press Ctrl-C to stop it");
    return;
  }
  std::error_code ec;
  if (args.size() == 1 && looks_numeric(args[0]) && !fs::exists(args[0], ec)) {
    std::string why;
    if (auto n = positive_integer(args[0], 10000000, why)) {
      send_random(*n);
    } else {
      error(why + " (e.g. send 10)");
    }
    return;
  }
  std::vector<std::shared_ptr<const document>> documents;
  for (const std::string& name : args) {
    document_result r = load_named_document(name, options_.files_dir);
    if (!r) {
      error(r.error);
      return;
    }
    documents.push_back(r.value);
  }
  start_batch(std::move(documents));
}

void repl::cmd_ftp(const arguments& args) {
  if (!args.empty()) {  // `FTP 5` is `send 5`
    cmd_send(args);
    return;
  }
  if (interactive_) {
    editor_->set_prompt("how many files? ");
  }
  answer_ = [this](const std::string& line) {
    const std::vector<std::string> words = split_words(line);
    if (words.empty()) {
      say("nothing sent");
      return;
    }
    std::string why;
    if (words.size() != 1) {
      error("give one number, e.g. 10");
    } else if (auto n = positive_integer(words[0], 10000000, why)) {
      if (batch_) {
        cmd_send(words);  // says a batch is running
      } else {
        send_random(*n);
      }
    } else {
      error(why);
    }
  };
}

void repl::cmd_workers(const arguments&) {
  ask("mmi.workers", nlohmann::json::object(), "", [this](const reply& r) {
    if (!r.ok()) {
      error("mmi.workers: " + std::to_string(r.code) + " " + r.error());
      return;
    }
    say(format_workers(r.head.value("result", nlohmann::json::object())));
  });
}

void repl::cmd_stats(const arguments&) {
  ask("mmi.stats", nlohmann::json::object(), "", [this](const reply& r) {
    if (!r.ok()) {
      error("mmi.stats: " + std::to_string(r.code) + " " + r.error());
      return;
    }
    say(format_stats(r.head.value("result", nlohmann::json::object())));
  });
}

void repl::cmd_status(const arguments& args) {
  std::string why;
  std::optional<long> n;
  if (args.size() != 1) {
    why = "usage: status N, N a request number (the request= of a reply)";
  } else {
    n = positive_integer(args[0], std::numeric_limits<long>::max(), why);
  }
  if (!n) {
    error(why);
    return;
  }
  ask("mmi.request", {{"of_request", static_cast<std::uint64_t>(*n)}}, "", [this, n](const reply& r) {
    if (r.code == 404) {
      error("the broker knows no request " + std::to_string(*n));
    } else if (r.code == 501) {
      error("this broker does not answer mmi.request");
    } else if (!r.ok()) {
      error("mmi.request: " + std::to_string(r.code) + " " + r.error());
    } else {
      say("request " + std::to_string(*n) + ":\n" +
          format_request(r.head.value("result", nlohmann::json::object())));
    }
  });
}

void repl::cmd_history(const arguments& args) {
  std::string why;
  std::optional<long> n = 20;
  if (args.size() > 1) {
    why = "usage: history [N], N a positive integer up to 1000";
    n.reset();
  } else if (args.size() == 1) {
    n = positive_integer(args[0], 1000, why);
  }
  if (!n) {
    error(why);
    return;
  }
  ask("mmi.history", {{"last", static_cast<std::uint64_t>(*n)}}, "", [this](const reply& r) {
    if (r.code == 501) {
      error("this broker keeps no history (mmi.history)");
      return;
    }
    if (!r.ok()) {
      error("mmi.history: " + std::to_string(r.code) + " " + r.error());
      return;
    }
    const nlohmann::json rows = r.head.value("result", nlohmann::json::object())
                                    .value("requests", nlohmann::json::array());
    if (rows.empty()) {
      say("no requests yet");
      return;
    }
    std::vector<std::vector<std::string>> table{
        {"REQUEST", "STATE", "CODE", "WORKER", "ATTEMPTS", "BYTES", "TITLE"}};
    // Titles and names are whatever clients and workers sent: shown printable.
    auto text = [](const nlohmann::json& row, const char* key) {
      auto it = row.find(key);
      if (it == row.end() || it->is_null()) return std::string("-");
      return printable(it->is_string() ? it->get<std::string>() : it->dump(), 60);
    };
    for (const nlohmann::json& row : rows) {
      table.push_back({text(row, "request"), text(row, "state"), text(row, "code"),
                       text(row, "worker"), text(row, "attempts"), text(row, "bytes"),
                       text(row, "title")});
    }
    std::string out = render_table(table);
    out.pop_back();  // say() ends the line
    say(out);
  });
}

void repl::cmd_exit(const arguments&) {
  if (batch_ && interactive_ && !exit_warned_) {
    exit_warned_ = true;
    error("batch " + std::to_string(batch_->number) + " is still running (" +
          std::to_string(batch_->progress.done()) + " of " + std::to_string(batch_->documents.size()) +
          " answered); type exit again to leave anyway");
    return;
  }
  quit_ = true;
}

void repl::start_batch(std::vector<std::shared_ptr<const document>> documents) {
  batch_ = std::make_unique<batch>(++batch_number_, std::move(documents));
  batch_->show_replies = !interactive_ || batch_->documents.size() <= options_.show_replies_up_to;
  if (interactive_) {
    say("batch " + std::to_string(batch_->number) + ": sending " + std::to_string(batch_->documents.size()) +
        " document" + (batch_->documents.size() == 1 ? "" : "s") + " to " + client_.options().endpoint +
        (batch_->show_replies ? "" : " (only failed replies shown; Ctrl-C stops)"));
  }
  top_up();
  update_status();
}

void repl::top_up() {
  batch& b = *batch_;
  const std::size_t window = options_.window == 0 ? b.documents.size() : options_.window;
  while (!b.cancelled && b.next < b.documents.size() && b.outstanding < window) {
    const std::size_t index = b.next++;
    ++b.outstanding;
    b.progress.sent();
    const document& doc = *b.documents[index];
    client_.submit("text", nlohmann::json{{"title", doc.title}}, doc.payload,
                   [this, index](reply r) {
                     post([this, index, r = std::move(r)]() mutable { on_batch_reply(index, std::move(r)); });
                   });
  }
}

void repl::on_batch_reply(std::size_t index, reply r) {
  if (!batch_) return;
  batch& b = *batch_;
  --b.outstanding;
  b.progress.completed(r);
  note_request(r);
  if (b.show_replies || !r.ok()) {
    if (editor_) editor_->set_status(status_line(), false);  // fresh numbers with the reply
    say(format_reply_line(r, b.documents[index]->path));
  }
  if (b.outstanding == 0 && (b.cancelled || b.next >= b.documents.size())) {
    finish_batch();
    return;
  }
  top_up();
}

void repl::finish_batch() {
  batch& b = *batch_;
  std::string text = "batch " + std::to_string(b.number) + (b.cancelled ? " (stopped)" : "") + ": " +
                     b.progress.summary(b.progress.elapsed());
  const auto& codes = b.progress.codes();
  if (auto it = codes.find(504); it != codes.end() && it->second == b.progress.done()) {
    text += "no reply within " + std::to_string(client_.options().timeout_ms) + " ms: is the broker at " +
            client_.options().endpoint + " running, with workers? (try: workers)\n";
  }
  batch_.reset();
  if (editor_) editor_->set_status("", false);  // erased with the summary's print
  say(text);
}

void repl::update_status() {
  if (!editor_) return;
  if (!batch_) {
    editor_->set_status("");
    return;
  }
  batch_->next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  editor_->set_status(status_line());
}

std::string repl::status_line() const {
  if (!batch_) return "";
  // Which broker answers now: it changes on a failover (several --connect endpoints).
  const std::string on = client_.broker();
  return "[batch " + std::to_string(batch_->number) + "] " +
         batch_->progress.progress_line(batch_->progress.elapsed()) +
         (on.empty() ? " | no broker connected" : " | broker " + on);
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
      if (batch_ && !batch_->cancelled) {
        batch_->cancelled = true;
        say("stopping batch " + std::to_string(batch_->number) + ": nothing more is sent, " +
            std::to_string(batch_->outstanding) + " replies still to come");
      } else if (answer_) {  // Ctrl-C at FTP's question: no answer
        answer_ = nullptr;
        editor_->clear_line();
        editor_->set_prompt("carico> ");
        say("nothing sent");
      } else if (!editor_->clear_line()) {  // the typed text goes, as in a shell
        say("(type exit or press Ctrl-D to leave)");
      }
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
