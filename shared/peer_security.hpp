// Command-line flags for the peers of a broker (workers, clients): CurveZMQ
// keys and the message size limit.
//
//   carico::peer_security_flags flags;
//   carico::add_peer_security_options(app, flags);
//   ... parse ...
//   options.curve = carico::load_peer_keys(flags);   // throws curve_error
#pragma once

#include <cstddef>
#include <string>

#include <CLI/CLI.hpp>

#include "shared/curve.hpp"
#include "shared/limits.hpp"

namespace carico {

struct peer_security_flags {
  std::string server_key;  // --curve-server-key: the broker's .pub
  std::string own_key;     // --curve-key: this peer's .key
  std::size_t max_message_bytes = default_max_message_bytes;  // --max-message-bytes
};

void add_peer_security_options(CLI::App& app, peer_security_flags& flags);

// The CURVE keys named by the flags; disabled keys when neither flag is given.
// Throws curve_error when only one is given or a file is unusable.
curve_client_keys load_peer_keys(const peer_security_flags& flags);

}  // namespace carico
