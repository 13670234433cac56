#include "shared/peer_security.hpp"

namespace carico {

void add_peer_security_options(CLI::App& app, peer_security_flags& flags) {
  app.add_option("--curve-server-key", flags.server_key,
                 "CurveZMQ: the broker's public key (broker.pub); needs --curve-key");
  app.add_option("--curve-key", flags.own_key,
                 "CurveZMQ: this program's key pair (NAME.key, mode 0600)");
  app.add_option("--max-message-bytes", flags.max_message_bytes,
                 "largest frame accepted from the broker (ZMQ_MAXMSGSIZE)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 31));
}

curve_client_keys load_peer_keys(const peer_security_flags& flags) {
  if (flags.server_key.empty() && flags.own_key.empty()) return {};
  if (flags.server_key.empty() || flags.own_key.empty()) {
    throw curve_error("--curve-server-key and --curve-key go together");
  }
  return load_client_keys(flags.server_key, flags.own_key);
}

}  // namespace carico
