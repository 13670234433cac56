// A named service: its ring of workers and its queue of waiting requests.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "broker/packed_queue.hpp"
#include "broker/worker_ring.hpp"

namespace carico {

struct service {
  std::string name;                   // as clients and workers spell it
  worker_ring ring;                   // workers serving it, round robin
  std::deque<std::uint64_t> queue;    // numbers of waiting requests kept in full (in requests_),
                                      // served first
  packed_queue parked;                // waiting requests packed once queue is long, served after
};

}  // namespace carico
