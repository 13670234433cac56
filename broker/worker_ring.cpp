#include "broker/worker_ring.hpp"

#include <algorithm>

namespace carico {

void worker_ring::add(known_worker* w) {
  // Insert just before the search start, so the newcomer is reached after
  // every current worker has had its turn.
  if (ring_.empty()) {
    ring_.push_back(w);
    next_ = 0;
    return;
  }
  ring_.insert(ring_.begin() + static_cast<std::ptrdiff_t>(next_), w);
  ++next_;
  if (next_ == ring_.size()) next_ = 0;
}

void worker_ring::remove(known_worker* w) {
  auto it = std::find(ring_.begin(), ring_.end(), w);
  if (it == ring_.end()) return;
  const auto index = static_cast<std::size_t>(it - ring_.begin());
  ring_.erase(it);
  if (index < next_) --next_;
  if (next_ >= ring_.size()) next_ = 0;
}

known_worker* worker_ring::next_eligible() {
  const std::size_t n = ring_.size();
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t i = (next_ + step) % n;
    if (ring_[i]->eligible()) {
      next_ = (i + 1) % n;
      return ring_[i];
    }
  }
  return nullptr;
}

bool worker_ring::any_eligible() const {
  return std::any_of(ring_.begin(), ring_.end(), [](const known_worker* w) { return w->eligible(); });
}

}  // namespace carico
