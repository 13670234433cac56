// A named service: its ring of workers and its queue of waiting requests.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "broker/worker_ring.hpp"

namespace carico {

struct service {
  std::string name;                   // as clients and workers spell it
  worker_ring ring;                   // workers serving it, round robin
  std::deque<std::uint64_t> queue;    // request numbers waiting for a worker
};

}  // namespace carico
