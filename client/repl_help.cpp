// What the REPL offers a user who is finding the way: `help`, the nearest
// command to a mistyped one, and Tab completion of commands, file names and
// recent request numbers.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "client/mmi_report.hpp"
#include "client/repl.hpp"
#include "client/repl_words.hpp"
#include "shared/text_table.hpp"

namespace carico {
namespace fs = std::filesystem;

std::optional<std::string> repl::suggest(const std::string& word) const {
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  const std::string w = lower_case(word);
  for (const command& c : commands_) {
    const std::size_t d = edit_distance(w, lower_case(c.name));
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

void repl::cmd_help(const arguments& args) {
  // Fits 80 columns: each command's usage and example on one line, what it
  // does wrapped below it.
  constexpr std::size_t width = 80;
  std::size_t usage_width = 0;
  for (const command& c : commands_) usage_width = std::max(usage_width, text_columns(c.usage));
  std::string text;
  for (const command& c : commands_) {
    if (!args.empty() && lower_case(c.name) != lower_case(args[0])) continue;
    std::string line = "  " + c.usage;
    line += std::string(usage_width - text_columns(c.usage) + 2, ' ') + "e.g. " + c.example;
    if (text_columns(line) > width)
      line = "  " + c.usage + "\n" + wrap_words("e.g. " + c.example, width, 6);
    if (line.back() != '\n') line += '\n';
    text += line + wrap_words(c.summary, width, 6);
  }
  if (text.empty()) {
    std::string message = "no command '" + display_text(args[0], 40) + "'.";
    if (auto s = suggest(args[0])) message += " Did you mean '" + *s + "'?";
    error(message);
    return;
  }
  if (args.empty()) {
    std::string intro = "commands";
    if (interactive_) intro += " (Tab completes commands and file names; Up/Down walk the history)";
    text = wrap_words(intro + ":", width, 0) + text;
    text += wrap_words(
        "replies print as: CODE request=N worker=W attempts=A count_a=... stored_as=... "
        "LATENCY FILE; a batch of more than " +
            std::to_string(options_.show_replies_up_to) +
            " documents prints only the failed ones, then a summary.",
        width, 0);
  }
  say(text);
}

}  // namespace carico
