// Active / standby for brokers that share a PostgreSQL journal (docs/ha.md):
// before the broker binds anything, carico-broker opens the journal here,
// which waits as a standby until this process holds leadership.
//
//   options.opened_journal = carico::wait_for_leadership(options, log);
//   if (!options.opened_journal) return 0;   // stopped (SIGTERM) while standby
#pragma once

#include <memory>

#include "broker/broker.hpp"

namespace carico {

// The journal options a broker's options ask for (path, keep, bound).
journal_options journal_options_for(const broker_options& options);

// Opens options.journal_path (a PostgreSQL URI): returns once this broker is
// the active one (a new term taken, unfinished requests loaded), or null when
// SIGINT/SIGTERM came while it was a standby. Throws journal_error.
std::shared_ptr<journal> wait_for_leadership(const broker_options& options,
                                             std::shared_ptr<spdlog::logger> log);

}  // namespace carico
