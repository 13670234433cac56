#include "shared/curve.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace carico {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t z85_key_size = 40;
constexpr std::size_t raw_key_size = 32;

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

std::string raw_of(std::string_view z85) {
  std::string z(z85);
  std::string raw(raw_key_size, '\0');
  if (zmq_z85_decode(reinterpret_cast<std::uint8_t*>(raw.data()), z.c_str()) == nullptr) return {};
  return raw;
}

// Writes text to path with exactly mode, creating or (when allowed) replacing it.
void write_file(const fs::path& path, const std::string& text, mode_t mode, bool overwrite) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    throw curve_error("cannot write " + path.string() + ": " + std::strerror(errno) +
                      (errno == EEXIST ? " (use --force to replace it)" : ""));
  }
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) throw curve_error("cannot write " + path.string() + ": " + std::strerror(saved));
}

// The `name = "value"` assignments of a key file, keyed by name.
std::unordered_map<std::string, std::string> read_assignments(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw curve_error("cannot read key file " + path + ": " + std::strerror(errno));
  std::unordered_map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string value = trim(std::string_view(t).substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    out[trim(std::string_view(t).substr(0, eq))] = value;
  }
  return out;
}

}  // namespace

bool is_z85_key(std::string_view text) {
  static constexpr std::string_view alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (text.size() != z85_key_size) return false;
  for (char c : text) {
    if (alphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string z85_of(std::string_view raw_key) {
  if (raw_key.size() != raw_key_size) return "(not a key)";
  char out[z85_key_size + 1] = {};
  zmq_z85_encode(out, reinterpret_cast<const std::uint8_t*>(raw_key.data()), raw_key.size());
  return out;
}

curve_key_pair generate_key_pair() {
  char pub[z85_key_size + 1] = {};
  char sec[z85_key_size + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw curve_error(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                      " (is libzmq built with CURVE?)");
  }
  return {pub, sec};
}

void save_key_pair(const std::string& dir, const std::string& name, const curve_key_pair& pair,
                   bool overwrite) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    throw curve_error("invalid key name '" + name + "': no '/', no leading dot");
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (!ec) fs::permissions(dir, fs::perms::owner_all, ec);  // 0700: it holds secrets
  }
  if (ec) throw curve_error("cannot create " + dir + ": " + ec.message());
  const fs::path base = fs::path(dir) / name;
  write_file(base.string() + ".key",
             "# carico CurveZMQ key pair '" + name + "': keep this file secret\n"
             "public-key = \"" + pair.public_key + "\"\n"
             "secret-key = \"" + pair.secret_key + "\"\n",
             0600, overwrite);
  write_file(base.string() + ".pub",
             "# carico CurveZMQ public key '" + name + "'\n"
             "public-key = \"" + pair.public_key + "\"\n",
             0644, overwrite);
}

curve_key_pair load_key_pair(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw curve_error("cannot read key file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw curve_error("key file " + path + " is readable by others (mode " + mode +
                      "); run: chmod 600 " + path);
  }
  auto values = read_assignments(path);
  curve_key_pair pair{values["public-key"], values["secret-key"]};
  if (!is_z85_key(pair.secret_key)) throw curve_error(path + " has no valid secret-key");
  char derived[z85_key_size + 1] = {};
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0) {
    throw curve_error(path + ": cannot derive the public key");
  }
  if (pair.public_key.empty()) pair.public_key = derived;
  if (pair.public_key != derived) {
    throw curve_error(path + ": public-key does not belong to secret-key");
  }
  return pair;
}

std::string load_public_key(const std::string& path) {
  auto values = read_assignments(path);
  const std::string key = values["public-key"];
  if (!is_z85_key(key)) throw curve_error(path + " has no valid public-key");
  return key;
}

allow_list allow_list::load(const std::string& path) {
  allow_list out;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.path().extension() == ".pub") files.push_back(entry.path());
    }
    if (ec) throw curve_error("cannot list " + path + ": " + ec.message());
    for (const fs::path& f : files) out.add(load_public_key(f.string()), f.stem().string());
    return out;
  }
  std::ifstream in(path);
  if (!in) throw curve_error("cannot read allow list " + path + ": " + std::strerror(errno));
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::string name = "line-" + std::to_string(number);
    if (const auto eq = t.find('='); eq != std::string::npos && t.rfind("public-key", 0) == 0) {
      t = trim(std::string_view(t).substr(eq + 1));
      if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
    } else if (const auto space = t.find_first_of(" \t"); space != std::string::npos) {
      name = t.substr(0, space);  // "NAME KEY"
      t = trim(std::string_view(t).substr(space));
    }
    if (!is_z85_key(t)) {
      throw curve_error(path + ":" + std::to_string(number) + ": not a Z85 public key");
    }
    out.add(t, name);
  }
  return out;
}

void allow_list::add(std::string_view z85_key, std::string name) {
  std::string raw = raw_of(z85_key);
  if (raw.empty()) throw curve_error("not a Z85 public key: " + std::string(z85_key));
  names_[raw] = std::move(name);
}

const std::string* allow_list::find_binary(std::string_view raw_key) const {
  auto it = names_.find(std::string(raw_key));
  return it == names_.end() ? nullptr : &it->second;
}

bool allow_list::contains_z85(std::string_view z85_key) const {
  const std::string raw = raw_of(z85_key);
  return !raw.empty() && names_.count(raw) != 0;
}

curve_client_keys load_client_keys(const std::string& server_public_path,
                                   const std::string& own_key_path) {
  curve_client_keys keys;
  keys.server_public = load_public_key(server_public_path);
  keys.own = load_key_pair(own_key_path);
  return keys;
}

void apply_curve_client(zmq::socket_t& socket, const curve_client_keys& keys) {
  if (!keys.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, keys.server_public);
  socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key);
}

void apply_curve_server(zmq::socket_t& socket, const curve_key_pair& server,
                        std::string_view zap_domain) {
  socket.set(zmq::sockopt::zap_domain, zap_domain);
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, server.secret_key);
}

bool is_local_endpoint(std::string_view endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string_view host = endpoint.substr(6);
  // A "source;destination" form names the local interface after the ';'.
  if (const auto semi = host.find(';'); semi != std::string_view::npos) host = host.substr(semi + 1);
  if (host.rfind("[::1]:", 0) == 0) return true;
  const auto colon = host.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = host.substr(0, colon);
  if (host == "localhost") return true;
  if (host.rfind("127.", 0) != 0) return false;
  // 127.a.b.c with digits only.
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3;
}

}  // namespace carico
