// The broker's command-line flags for CurveZMQ and limits, and how they become
// broker_options. Kept out of main.cpp so they can be tested.
//
//   carico::broker_security_flags flags;
//   carico::add_broker_security_options(app, flags);
//   ... parse ...
//   carico::apply_broker_security(flags, options);   // throws curve_error
#pragma once

#include <cstddef>
#include <string>

#include <CLI/CLI.hpp>

#include "broker/broker.hpp"

namespace carico {

struct broker_security_flags {
  bool curve = false;                    // --curve
  std::string dir = "keys";              // --curve-dir: broker.key, clients/, workers/
  std::string key;                       // --curve-key: the broker's .key (default DIR/broker.key)
  std::string clients;                   // --curve-clients: allow list (default DIR/clients)
  std::string workers;                   // --curve-workers: allow list (default DIR/workers)
  bool insecure = false;                 // --insecure
  std::size_t max_message_bytes = default_max_message_bytes;  // --max-message-bytes
  std::size_t max_payload_bytes = 0;     // --max-payload-bytes; 0: max message bytes - 64 KiB
  std::size_t max_frames = 16;           // --max-frames
  std::size_t max_inflight_per_client = 10000;  // --max-inflight-per-client
};

void add_broker_security_options(CLI::App& app, broker_security_flags& flags);

// Fills the security and limit fields of options; loads keys and allow lists
// when flags.curve. Throws curve_error with a message that says what to fix.
void apply_broker_security(const broker_security_flags& flags, broker_options& options);

}  // namespace carico
