// The REPL's remote view of stored documents: `get N [FILE]` and `stored [N]`.
#include <limits>
#include <string>

#include "client/document_fetch.hpp"
#include "client/mmi_report.hpp"
#include "client/repl.hpp"
#include "client/repl_words.hpp"

namespace carico {

void repl::note_request(const reply& r) {
  if (!r.ok()) return;
  auto it = r.head.find("request");
  if (it == r.head.end() || !it->is_number_unsigned()) return;
  recent_requests_.push_back(it->get<std::uint64_t>());
  if (recent_requests_.size() > 100) recent_requests_.pop_front();
}

void repl::cmd_get(const arguments& args) {
  std::string why;
  std::optional<std::uint64_t> n;
  if (args.empty() || args.size() > 2) {
    why = "usage: get N [FILE], N the request number that stored it (the request= of a reply)";
  } else {
    n = typed_number(args[0], std::numeric_limits<std::int64_t>::max(), why);
  }
  if (!n) {
    error(why);
    return;
  }
  const std::string out = args.size() == 2 ? args[1] : std::string();
  ask("text", fetch_header(*n), "", [this, n, out](const reply& r) {
    fetched f = read_fetch_reply(reply(r));
    const std::string label = "get " + std::to_string(*n);
    if (!f.ok()) {
      error(label + ": " + f.reason);
      return;
    }
    if (out.empty()) {
      say(f.bytes);
      return;
    }
    if (auto failed = write_whole_file(out, f.bytes)) {
      error(label + ": " + *failed);
      return;
    }
    say(label + ": " + std::to_string(f.bytes.size()) + " bytes from " + f.worker + " (" +
        f.stored_as + ") written to " + out);
  });
}

void repl::cmd_stored(const arguments& args) {
  ask_listing(args, "stored", "mmi.stored", "does not list stored documents", format_stored);
}

}  // namespace carico
