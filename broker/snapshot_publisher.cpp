#include "broker/snapshot_publisher.hpp"

#include <utility>

namespace carico {

void snapshot_publisher::publish(std::shared_ptr<const broker_snapshot> snapshot) {
  {
    std::lock_guard lock(mutex_);
    latest_.swap(snapshot);
  }
  // `snapshot` now holds the previous one: freed here, outside the lock, unless
  // a reader still has it.
}

std::shared_ptr<const broker_snapshot> snapshot_publisher::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

}  // namespace carico
