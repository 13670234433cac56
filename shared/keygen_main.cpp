// carico-keygen: writes a CurveZMQ key pair for a broker, worker or client.
//   carico-keygen --out keys broker          # keys/broker.key (0600), keys/broker.pub
//   carico-keygen --out keys/workers w1      # a worker's pair; its .pub goes on the allow list
#include <iostream>

#include <zmq.h>

#include "shared/curve.hpp"
#include "shared/runtime.hpp"

int main(int argc, char** argv) {
  std::string out = ".";
  std::string name;
  bool force = false;
  CLI::App app{"carico-keygen: writes a CurveZMQ key pair NAME.key (secret, 0600) and NAME.pub"};
  carico::add_version_flag(app, "carico-keygen");
  app.add_option("--out", out, "directory to write to (created 0700 if missing)")
      ->capture_default_str();
  app.add_option("name", name, "key name: broker, a worker or a client")->required();
  app.add_flag("--force", force, "replace existing files");
  if (auto code = carico::parse_command_line(app, argc, argv)) return *code;
  if (!zmq_has("curve")) {
    std::cerr << "carico-keygen: this libzmq has no CURVE support\n";
    return 1;
  }
  try {
    const carico::curve_key_pair pair = carico::generate_key_pair();
    carico::save_key_pair(out, name, pair, force);
    std::cout << out << "/" << name << ".key\n" << out << "/" << name << ".pub\n";
  } catch (const carico::curve_error& e) {
    std::cerr << "carico-keygen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
