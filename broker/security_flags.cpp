#include "broker/security_flags.hpp"

namespace carico {

void add_broker_security_options(CLI::App& app, broker_security_flags& flags) {
  app.add_flag("--curve", flags.curve,
               "CurveZMQ: encrypt and authenticate both sockets against allow lists");
  app.add_option("--curve-dir", flags.dir,
                 "key directory: broker.key, clients/*.pub, workers/*.pub")
      ->capture_default_str();
  app.add_option("--curve-key", flags.key, "the broker's key pair (default DIR/broker.key)");
  app.add_option("--curve-clients", flags.clients,
                 "client allow list: a directory of .pub files or a file of keys (default DIR/clients)");
  app.add_option("--curve-workers", flags.workers,
                 "worker allow list: a directory of .pub files or a file of keys (default DIR/workers)");
  app.add_flag("--insecure", flags.insecure,
               "allow binding a non-loopback address without --curve");
  app.add_option("--max-message-bytes", flags.max_message_bytes,
                 "largest frame and message accepted (ZMQ_MAXMSGSIZE)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 31));
  app.add_option("--max-payload-bytes", flags.max_payload_bytes,
                 "largest request payload, then 413 (default: max message bytes - 64 KiB)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 31));
  app.add_option("--max-frames", flags.max_frames, "frames per message, then 400 / DISCONNECT")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{8}, std::size_t{1024}));
  app.add_option("--max-inflight-per-client", flags.max_inflight_per_client,
                 "unanswered requests per client, then 503 for that client; 0 for no cap")
      ->capture_default_str();
}

void apply_broker_security(const broker_security_flags& flags, broker_options& options) {
  options.limits.max_message_bytes = flags.max_message_bytes;
  options.limits.max_frames = flags.max_frames;
  options.max_payload_bytes = flags.max_payload_bytes != 0
                                  ? flags.max_payload_bytes
                                  : default_max_payload_bytes(flags.max_message_bytes);
  if (options.max_payload_bytes > options.limits.max_message_bytes) {
    throw curve_error("--max-payload-bytes must not exceed --max-message-bytes");
  }
  options.max_inflight_per_client = flags.max_inflight_per_client;
  options.insecure = flags.insecure;
  options.curve = flags.curve;
  if (!flags.curve) return;
  const std::string dir = flags.dir.empty() ? "." : flags.dir;
  options.curve_key = load_key_pair(flags.key.empty() ? dir + "/broker.key" : flags.key);
  options.curve_clients = allow_list::load(flags.clients.empty() ? dir + "/clients" : flags.clients);
  options.curve_workers = allow_list::load(flags.workers.empty() ? dir + "/workers" : flags.workers);
}

}  // namespace carico
