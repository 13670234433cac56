#include "client/bench/mdp_floor.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shared/codec.hpp"
#include "shared/header.hpp"
#include "shared/map_writer.hpp"
#include "shared/raw_map.hpp"
#include "shared/runtime.hpp"

namespace carico {
namespace {

constexpr std::size_t batch = 256;  // messages read from one socket per turn, as carico-broker

std::string_view view(const zmq::message_t& frame) {
  return {static_cast<const char*>(frame.data()), frame.size()};
}

struct floor_worker {
  std::string identity;  // its routing id on the backend
  std::string service;   // from its READY
};

class mdp_floor {
 public:
  mdp_floor(const std::string& frontend_ep, const std::string& backend_ep, long heartbeat_ms)
      : frontend_(context_, zmq::socket_type::router),
        backend_(context_, zmq::socket_type::router),
        heartbeat_ms_(heartbeat_ms) {
    frontend_.set(zmq::sockopt::linger, 0);
    backend_.set(zmq::sockopt::linger, 0);
    frontend_.bind(frontend_ep);
    backend_.bind(backend_ep);
  }

  void run() {
    time_point next_heartbeat = clock::now() + milliseconds(heartbeat_ms_);
    while (!stop_signalled()) {
      if (clock::now() >= next_heartbeat) {
        for (const floor_worker& w : workers_) send_heartbeat(w.identity);
        next_heartbeat = clock::now() + milliseconds(heartbeat_ms_);
      }
      zmq::pollitem_t items[2] = {{frontend_.handle(), 0, ZMQ_POLLIN, 0},
                                  {backend_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, milliseconds(poll_timeout(next_heartbeat)));
      if (items[1].revents & ZMQ_POLLIN) {
        for (std::size_t i = 0; i < batch && frames_.recv(backend_, ZMQ_DONTWAIT); ++i) on_worker();
      }
      if (items[0].revents & ZMQ_POLLIN) {
        for (std::size_t i = 0; i < batch && frames_.recv(frontend_, ZMQ_DONTWAIT); ++i)
          on_client();
      }
    }
  }

 private:
  // [client][empty][MDPCX1][service][header][payload]
  void on_client() {
    if (frames_.size() != 6 || view(frames_[2]) != client_ext_signature) return;
    if (!head_.parse(frames_[4].data(), frames_[4].size())) return;
    const std::string_view service = view(frames_[3]);
    if (service.substr(0, 4) == "mmi.") return answer_mmi(service);
    const std::optional<std::uint64_t> id = head_.over(frames_[4].data()).get_uint("id");
    if (!id || workers_.empty()) return;
    const floor_worker& w = workers_[next_++ % workers_.size()];
    zmq::message_t head = append_uints(frames_[4], {{"request", *id}});
    send_addressed(backend_, w.identity, dialect::carico, command::request, view(frames_[0]), &head,
                   &frames_[5], 1);
  }

  // [worker][empty][MDPWX1][command][...]
  void on_worker() {
    if (frames_.size() < 4 || view(frames_[2]) != worker_ext_signature || frames_[3].size() != 1)
      return;
    const auto cmd = static_cast<command>(*static_cast<const std::uint8_t*>(frames_[3].data()));
    const std::string_view identity = view(frames_[0]);
    const auto known = std::find_if(workers_.begin(), workers_.end(),
                                    [&](const floor_worker& w) { return w.identity == identity; });
    if (cmd == command::ready && frames_.size() >= 5 && known == workers_.end()) {
      workers_.push_back({std::string(identity), std::string(view(frames_[4]))});
    } else if (cmd == command::disconnect && known != workers_.end()) {
      workers_.erase(known);
    } else if (cmd == command::reply && frames_.size() >= 7 && known != workers_.end()) {
      // [worker][empty][MDPWX1][REPLY][client][empty][header][body...]
      if (!head_.parse(frames_[6].data(), frames_[6].size())) return;
      const raw_view fields = head_.over(frames_[6].data());
      const std::optional<std::uint64_t> id = fields.get_uint("request");
      if (!id) return;
      const std::uint64_t code = fields.get_uint("code").value_or(code::ok);
      reply_.begin(3);
      reply_.add("id", *id);
      reply_.add("code", code);
      reply_.add("status", code == code::ok ? "ok" : "error");
      send_client(view(frames_[4]), known->service, 7);
    }
  }

  void answer_mmi(std::string_view service) {
    const std::optional<raw_view::entry> id = head_.over(frames_[4].data()).find("id");
    nlohmann::json result = nlohmann::json::object();
    if (service == "mmi.workers") {
      result["workers"] = nlohmann::json::array();
      for (std::size_t i = 0; i < workers_.size(); ++i)
        result["workers"].push_back({{"state", "ready"}});
    }
    const std::vector<std::uint8_t> packed = nlohmann::json::to_msgpack(result);
    reply_.begin(id ? 3 : 2);
    if (id) reply_.add_raw("id", id->value);
    reply_.add("code", code::ok);
    reply_.add_raw("result", {reinterpret_cast<const char*>(packed.data()), packed.size()});
    send_client(view(frames_[0]), service, frames_.size());
  }

  // [client][empty][MDPCX1][service][reply_][frames_ from `body` on]
  void send_client(std::string_view client, std::string_view service, std::size_t body) {
    constexpr auto more = zmq::send_flags::sndmore;
    frontend_.send(zmq::const_buffer(client.data(), client.size()), more);
    frontend_.send(zmq::const_buffer(nullptr, 0), more);
    frontend_.send(zmq::const_buffer(client_ext_signature.data(), client_ext_signature.size()), more);
    frontend_.send(zmq::const_buffer(service.data(), service.size()), more);
    const std::string_view head = reply_.bytes();
    frontend_.send(zmq::const_buffer(head.data(), head.size()),
                   body < frames_.size() ? more : zmq::send_flags::none);
    for (std::size_t i = body; i < frames_.size(); ++i) {
      frontend_.send(frames_[i], i + 1 < frames_.size() ? more : zmq::send_flags::none);
    }
  }

  void send_heartbeat(const std::string& identity) {
    zmq::multipart_t heartbeat = encode_heartbeat(dialect::carico);
    heartbeat.pushstr(identity);
    heartbeat.send(backend_);
  }

  zmq::context_t context_;             // one I/O thread, as carico-broker's
  zmq::socket_t frontend_;             // ROUTER for clients
  zmq::socket_t backend_;              // ROUTER for workers
  long heartbeat_ms_;                  // interval of the heartbeats sent to workers
  std::vector<floor_worker> workers_;  // in READY order; the round-robin ring
  std::size_t next_ = 0;               // the ring's turn
  zmq::multipart_t frames_;            // the message being handled (reused)
  raw_map head_;                       // its header, read in place
  map_writer reply_;                   // the client reply's header (reused)
};

}  // namespace

int run_mdp_floor(const std::string& frontend_ep, const std::string& backend_ep,
                  long heartbeat_ms) {
  mdp_floor floor(frontend_ep, backend_ep, heartbeat_ms);
  try {
    floor.run();
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR && e.num() != ETERM) throw;
  }
  return 0;
}

}  // namespace carico
