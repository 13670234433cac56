// The hand-off of broker snapshots from the broker's loop to the HTTP threads.
// The loop builds a whole snapshot apart, then swaps the pointer in; a reader
// takes the pointer and keeps the snapshot alive for as long as it reads it.
// Neither side ever waits for more than that pointer swap.
//
//   publisher.publish(std::make_shared<const broker_snapshot>(std::move(s)));  // loop
//   std::shared_ptr<const broker_snapshot> now = publisher.latest();           // any thread
#pragma once

#include <memory>
#include <mutex>

#include "broker/metrics_snapshot.hpp"

namespace carico {

class snapshot_publisher {
 public:
  // Replaces the latest snapshot. The old one lives on while a reader holds it.
  void publish(std::shared_ptr<const broker_snapshot> snapshot);
  // The latest snapshot; null before the first publish().
  std::shared_ptr<const broker_snapshot> latest() const;

 private:
  // A mutex, not std::atomic<std::shared_ptr>: libstdc++ 12's is a lock too,
  // and this one is held for a pointer copy only (the old snapshot is freed
  // outside it).
  mutable std::mutex mutex_;                       // guards latest_
  std::shared_ptr<const broker_snapshot> latest_;  // what readers get
};

}  // namespace carico
