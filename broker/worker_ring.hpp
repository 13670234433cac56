// The workers of one service in round-robin order.
//
//   ring.add(w1); ring.add(w2);
//   known_worker* w = ring.next_eligible();   // w1, then w2, then w1...
//
// next_eligible() starts after the worker it chose last and skips workers that
// are not eligible (not `ready`, or at capacity); dead workers are removed.
#pragma once

#include <cstddef>
#include <vector>

#include "broker/known_worker.hpp"

namespace carico {

class worker_ring {
 public:
  // Appends w at the end of the ring (it is reached after all current ones).
  void add(known_worker* w);
  // Unlinks w; the rotation carries on with the worker that followed it.
  void remove(known_worker* w);
  // The next eligible worker in ring order, or nullptr when none is.
  known_worker* next_eligible();
  // True when some worker could take a request now.
  bool any_eligible() const;

  std::size_t size() const { return ring_.size(); }
  bool empty() const { return ring_.empty(); }
  const std::vector<known_worker*>& workers() const { return ring_; }

 private:
  std::vector<known_worker*> ring_;  // rotation order; newcomers go just before next_
  std::size_t next_{0};              // index where the next search starts
};

}  // namespace carico
