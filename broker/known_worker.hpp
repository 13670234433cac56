// The broker's record of one worker connected to its backend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/codec.hpp"
#include "shared/runtime.hpp"

namespace carico {

struct service;

struct known_worker {
  std::string identity;                    // ZeroMQ routing id on the backend
  std::string name;                        // from READY, else the hex identity
  service* served{nullptr};                // the service whose ring holds it
  dialect from{dialect::carico};           // MDPWX1 (carico) or MDPW01 (stock)
  long heartbeat_ms{0};                    // the interval it is heartbeated at and held to
  worker_info info;                        // READY details (capacity, pid, host)
  load_report load;                        // the last load report
  std::vector<std::uint64_t> in_flight;    // request numbers it holds now
  time_point joined_at{};                  // when READY arrived
  time_point last_seen{};                  // when any message last arrived
  time_point expires_at{};                 // dead when silent past this
  time_point next_heartbeat{};             // when the broker heartbeats it next

  bool eligible() const {
    return load.state == worker_state::ready && in_flight.size() < info.capacity;
  }
};

}  // namespace carico
