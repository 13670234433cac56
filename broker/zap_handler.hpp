// The broker's ZeroMQ authentication (ZAP, RFC 27) handler for CurveZMQ: one
// thread with its own REP socket on inproc://zeromq.zap.01 that admits a CURVE
// peer only when its public key is on the allow list of the door it knocks on.
//
//   carico::zap_handler zap(context, logger);
//   zap.allow("carico.frontend", clients);   // before any socket binds
//   zap.allow("carico.backend", workers);
//   zap.start();
//   carico::apply_curve_server(frontend, key, "carico.frontend");
//
// Each socket names its door with ZMQ_ZAP_DOMAIN, so a client's key is refused
// on the backend (it cannot register as a worker) and a worker's on the
// frontend. Every refusal is logged with the key and the peer address.
// One handler per context: inproc://zeromq.zap.01 can be bound only once.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shared/curve.hpp"
#include "shared/runtime.hpp"

namespace carico {

inline constexpr std::string_view zap_endpoint = "inproc://zeromq.zap.01";
inline constexpr std::string_view frontend_zap_domain = "carico.frontend";
inline constexpr std::string_view backend_zap_domain = "carico.backend";

class zap_handler {
 public:
  // Binds inproc://zeromq.zap.01 at once (zmq::error_t EADDRINUSE when the
  // context already has a handler); answers nothing until start().
  zap_handler(zmq::context_t& context, std::shared_ptr<spdlog::logger> logger);
  ~zap_handler();  // stops and joins the thread
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;

  // Keys admitted on domain; call before start(). A domain with no list admits nobody.
  void allow(std::string_view domain, allow_list keys);
  // Logs failed handshakes on socket (a peer without CURVE, a wrong server
  // key), which never reach ZAP; label names the socket. Call before start().
  void monitor(zmq::socket_t& socket, std::string_view label);
  // Starts the thread that answers ZAP requests.
  void start();

  std::uint64_t admitted() const { return admitted_.load(); }
  std::uint64_t refused() const { return refused_.load(); }

 private:
  void run();
  void answer(zmq::multipart_t& request);
  void on_event(std::size_t index);

  struct watched {
    std::string label;    // "frontend", "backend"
    zmq::socket_t pair;   // receives the monitored socket's events
  };

  zmq::context_t& context_;                    // for the monitor sockets
  std::shared_ptr<spdlog::logger> log_;        // refusals are logged at warn
  zmq::socket_t socket_;                       // REP on inproc://zeromq.zap.01; thread only after start()
  loop_waker waker_;                           // wakes the thread to stop
  std::map<std::string, allow_list, std::less<>> domains_;  // ZAP domain -> its allow list
  std::vector<watched> monitors_;              // handshake events of the broker's sockets
  std::atomic<bool> stopping_{false};          // set by the destructor
  std::atomic<std::uint64_t> admitted_{0};     // peers let in
  std::atomic<std::uint64_t> refused_{0};      // peers refused
  std::thread thread_;                         // runs run() after start()
};

}  // namespace carico
