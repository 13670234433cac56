// The REPL's batches: `send N`, `send FILE...`, `FTP`. batch_sender sends and
// counts (the engine of `carico-client send` too), driven from the REPL's loop:
// its replies come back through post(). The REPL prints them, keeps the status
// line and closes each batch with its summary.
#include <filesystem>
#include <string>
#include <utility>

#include "client/repl.hpp"
#include "client/repl_words.hpp"

namespace carico {

namespace {
constexpr std::uint64_t max_batch = 10000000;  // documents in one `send N`
}  // namespace

void repl::cmd_send(const arguments& args) {
  if (args.empty()) {
    error("send what? usage: send N | send FILE...   (e.g. send 10)");
    return;
  }
  if (batch_) {
    error(batch_running() + "; wait for it, or press Ctrl-C to stop it");
    return;
  }
  std::error_code ec;
  if (args.size() == 1 && looks_numeric(args[0]) && !std::filesystem::exists(args[0], ec)) {
    std::string why;
    if (auto n = typed_number(args[0], max_batch, why)) {
      send_random(*n);
    } else {
      error(why + " (e.g. send 10)");
    }
    return;
  }
  document_batch named = load_named_documents(args, options_.files_dir);
  if (!named) {
    error(named.error);
    return;
  }
  start_batch(std::move(named.documents));
}

void repl::cmd_ftp(const arguments& args) {
  if (!args.empty()) {  // `FTP 5` is `send 5`
    cmd_send(args);
    return;
  }
  if (interactive_) editor_->set_prompt("how many files? ");
  answer_ = [this](const std::string& line) {
    const std::vector<std::string> words = split_words(line);
    if (words.empty()) {
      say("nothing sent");
      return;
    }
    std::string why;
    if (words.size() != 1) {
      error("give one number, e.g. 10");
    } else if (auto n = typed_number(words[0], max_batch, why)) {
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

bool repl::send_random(std::uint64_t n) {
  // Each batch its own draw: the seed moves on with the batches started.
  document_batch picked = pick_documents(options_.files_dir, n, seed_ + batch_number_);
  if (!picked) {
    error(picked.error);
    return false;
  }
  start_batch(std::move(picked.documents));
  return true;
}

void repl::start_batch(std::vector<std::shared_ptr<const document>> documents) {
  if (documents.empty()) return;  // never: a batch has at least one document
  batch_ = std::make_unique<batch>();
  batch_->number = ++batch_number_;
  batch_->show_replies = !interactive_ || documents.size() <= options_.show_replies_up_to;
  batch_options sending;  // to `text`, the client's timeout
  sending.window = options_.window;
  batch_->sender = std::make_unique<batch_sender>(
      client_, sending, [this](const reply& r, const document& doc) { on_batch_reply(r, doc); });
  if (interactive_) {
    say("batch " + std::to_string(batch_->number) + ": sending " +
        std::to_string(documents.size()) + " document" + (documents.size() == 1 ? "" : "s") +
        " to " + client_.options().endpoint +
        (batch_->show_replies ? "" : " (only failed replies shown; Ctrl-C stops)"));
  }
  batch_->sender->start(
      std::move(documents), [this](std::function<void()> event) { post(std::move(event)); },
      [this](const batch_result& result) { finish_batch(result); });
  update_status();
}

void repl::on_batch_reply(const reply& r, const document& doc) {
  note_request(r);
  if (batch_->show_replies || !r.ok()) {
    if (editor_) editor_->set_status(status_line(), false);  // fresh numbers with the reply
    say(format_reply_line(r, doc.path));
  }
}

void repl::finish_batch(const batch_result& result) {
  const batch_progress& progress = batch_->sender->progress();
  std::string text = "batch " + std::to_string(batch_->number) +
                     (result.stopped ? " (stopped)" : "") + ": " + result.summary;
  const auto& codes = progress.codes();
  if (auto it = codes.find(504); it != codes.end() && it->second == progress.done()) {
    text += "no reply within " + std::to_string(client_.options().timeout_ms) +
            " ms: is the broker at " + client_.options().endpoint +
            " running, with workers? (try: workers)\n";
  }
  batch_.reset();                               // the sender too: this runs last in it
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
  const batch_progress& progress = batch_->sender->progress();
  // The broker first: the editor cuts the line at the terminal's width.
  return "[batch " + std::to_string(batch_->number) +
         (on.empty() ? ", no broker connected] " : " on " + on + "] ") +
         progress.progress_line(progress.elapsed());
}

std::string repl::batch_running() const {
  return "batch " + std::to_string(batch_->number) + " is still running (" +
         std::to_string(batch_->sender->progress().done()) + " of " +
         std::to_string(batch_->sender->total()) + " answered)";
}

}  // namespace carico
