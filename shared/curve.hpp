// CurveZMQ for carico: key pairs on disk, allow lists, and the socket options
// that turn a socket into an authenticated, encrypted CURVE client or server.
//
//   carico::curve_key_pair broker_key = carico::generate_key_pair();
//   carico::save_key_pair("keys", "broker", broker_key);   // keys/broker.key (0600), keys/broker.pub
//   carico::allow_list clients = carico::allow_list::load("keys/clients");  // every *.pub there
//   carico::apply_curve_server(frontend, broker_key, "carico.frontend");
//   carico::apply_curve_client(dealer, {.server_public = ..., .own = my_key});
//
// Keys are Z85 text (40 characters for 32 bytes). A .key file holds a pair and
// must not be readable by group or others; a .pub file holds a public key.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include <zmq.hpp>

namespace carico {

// A key file or allow list that cannot be written, read or understood.
class curve_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct curve_key_pair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty in a public-only key
};

// A fresh pair from libzmq (needs a libzmq built with CURVE).
curve_key_pair generate_key_pair();

// Writes dir/name.key (both keys, mode 0600) and dir/name.pub (public key, 0644).
// Creates dir (0700) when missing. Refuses to overwrite unless overwrite is set.
void save_key_pair(const std::string& dir, const std::string& name, const curve_key_pair& pair,
                   bool overwrite = false);

// Reads a .key file: both keys, checked to belong together. Refuses a file
// that group or others may read.
curve_key_pair load_key_pair(const std::string& path);

// Reads the public key of a .pub or .key file.
std::string load_public_key(const std::string& path);

// True when text is a well-formed Z85 CURVE key (40 characters of the alphabet).
bool is_z85_key(std::string_view text);

// The public keys allowed through one door of the broker, with a name for each.
class allow_list {
 public:
  // A directory (every *.pub in it, named after the file) or a file (one key
  // per line, `#` comments, optionally `public-key = "..."` or `NAME KEY`).
  static allow_list load(const std::string& path);

  void add(std::string_view z85_key, std::string name);
  // The name of a key given as 32 raw bytes, or nullptr when it is not allowed.
  const std::string* find_binary(std::string_view raw_key) const;
  bool contains_z85(std::string_view z85_key) const;
  std::size_t size() const { return names_.size(); }
  bool empty() const { return names_.empty(); }

 private:
  std::unordered_map<std::string, std::string> names_;  // raw 32-byte key -> its name
};

// What a connecting socket (worker, client) needs for CURVE.
struct curve_client_keys {
  std::string server_public;  // the broker's public key, Z85; empty: CURVE off
  curve_key_pair own;         // this peer's pair
  bool enabled() const { return !server_public.empty(); }
};

// Loads a client's keys: the broker's .pub (or .key) and the peer's .key.
curve_client_keys load_client_keys(const std::string& server_public_path,
                                   const std::string& own_key_path);

// Makes socket a CURVE client of the server; no-op when keys are not enabled.
// Call before connect().
void apply_curve_client(zmq::socket_t& socket, const curve_client_keys& keys);
// Makes socket a CURVE server whose ZAP requests carry zap_domain. Call before bind().
void apply_curve_server(zmq::socket_t& socket, const curve_key_pair& server,
                        std::string_view zap_domain);

// True for endpoints only this machine can reach: inproc, ipc, and tcp on a
// loopback address (127.x.x.x, localhost, [::1]). tcp://*, 0.0.0.0, other
// addresses and interface names are not local.
bool is_local_endpoint(std::string_view endpoint);

// Z85 text of 32 raw key bytes (for logs).
std::string z85_of(std::string_view raw_key);

}  // namespace carico
