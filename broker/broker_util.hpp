// Small helpers the broker's rooms (broker_*.cpp) share.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <zmq_addon.hpp>

#include "shared/logging.hpp"
#include "shared/runtime.hpp"

namespace carico {

// RFC 8: names under mmi. are the broker's own services.
inline bool starts_with_mmi(std::string_view name) { return name.rfind("mmi.", 0) == 0; }

inline long ms_between(time_point from, time_point to) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(to - from).count());
}

// A message's first frames, sampled, for a log line about a bad message.
inline std::string describe(const zmq::multipart_t& frames) {
  std::string out = std::to_string(frames.size()) + " frames";
  for (std::size_t i = 0; i < frames.size() && i < 4; ++i) {
    out += i == 0 ? ": [" : ", [";
    out += sample(frames[i].data(), frames[i].size(), 24) + "]";
  }
  return out;
}

}  // namespace carico
