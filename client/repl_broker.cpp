// The REPL's questions: `list` (the documents folder) and what it asks the
// broker over mmi (`workers`, `stats`, `status N`, `history [N]`), rendered by
// client/mmi_report as `carico-client workers` / `stats` render them.
#include <filesystem>
#include <limits>
#include <string>

#include "client/mmi_report.hpp"
#include "client/repl.hpp"
#include "client/repl_words.hpp"
#include "shared/text_table.hpp"

namespace carico {

void repl::cmd_list(const arguments&) {
  namespace fs = std::filesystem;
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
    rows.push_back({fs::path(paths[i]).filename().string(),
                    ec ? "?" : format_bytes(static_cast<double>(size)), display_text(title, 60)});
  }
  std::string text = render_table(rows);
  text += std::to_string(paths.size()) + " documents in " + options_.files_dir;
  if (paths.size() > shown_max) text += " (first " + std::to_string(shown_max) + " shown)";
  say(text);
}

void repl::cmd_workers(const arguments&) { ask_broker_table("mmi.workers", format_workers); }

void repl::cmd_stats(const arguments&) { ask_broker_table("mmi.stats", format_stats); }

// As `carico-client workers` and `stats`: the broker that answered, then the table.
void repl::ask_broker_table(const std::string& service,
                            std::function<std::string(const nlohmann::json&)> render) {
  ask(service, nlohmann::json::object(), "",
      [this, service, render = std::move(render)](const reply& r) {
        if (!r.ok()) {
          error(service + ": " + std::to_string(r.code) + " " + r.error());
          return;
        }
        say(format_broker_line(client_.broker(), client_.options().endpoint) +
            render(r.head.value("result", nlohmann::json::object())));
      });
}

void repl::cmd_status(const arguments& args) {
  std::string why;
  std::optional<std::uint64_t> n;
  if (args.size() != 1) {
    why = "usage: status N, N a request number (the request= of a reply)";
  } else {
    n = typed_number(args[0], std::numeric_limits<std::int64_t>::max(), why);
  }
  if (!n) {
    error(why);
    return;
  }
  ask("mmi.request", {{"of_request", *n}}, "", [this, n](const reply& r) {
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
  ask_listing(args, "history", "mmi.history", "keeps no history", format_history);
}

void repl::ask_listing(const arguments& args, const std::string& command,
                       const std::string& service, const std::string& what,
                       std::function<std::string(const nlohmann::json&)> render) {
  std::string why;
  std::optional<std::uint64_t> n = 20;
  if (args.size() > 1) {
    why = "usage: " + command + " [N], N a positive integer up to 1000";
    n.reset();
  } else if (args.size() == 1) {
    n = typed_number(args[0], 1000, why);
  }
  if (!n) {
    error(why);
    return;
  }
  ask(service, {{"last", *n}}, "",
      [this, service, what, render = std::move(render)](const reply& r) {
        if (r.code == 501) {
          error("this broker " + what + " (" + service + ")");
          return;
        }
        if (!r.ok()) {
          error(service + ": " + std::to_string(r.code) + " " + r.error());
          return;
        }
        say(render(r.head.value("result", nlohmann::json::object())));
      });
}

}  // namespace carico
