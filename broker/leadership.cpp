#include "broker/leadership.hpp"

#include "shared/runtime.hpp"

namespace carico {

journal_options journal_options_for(const broker_options& options) {
  journal_options out;
  out.path = options.journal_path;
  out.keep = options.journal_keep;
  out.max_bytes = options.journal_max_bytes;
  return out;
}

std::shared_ptr<journal> wait_for_leadership(const broker_options& options,
                                             std::shared_ptr<spdlog::logger> log) {
  journal_options o = journal_options_for(options);
  o.keep_waiting = [] { return !stop_signalled(); };
  try {
    return open_journal(std::move(o), std::move(log));
  } catch (const journal_error&) {
    if (stop_signalled()) return nullptr;
    throw;
  }
}

}  // namespace carico
