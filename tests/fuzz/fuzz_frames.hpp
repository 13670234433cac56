// Turns a fuzzer's byte string into ZeroMQ frames, for the codec targets.
//
//   zmq::multipart_t frames = carico::fuzz::split_frames(data, size);
//
// Layout: repeated [length: 1 byte][bytes: length], the last frame truncated to
// what is left. A length byte of 0xff means "the rest of the input", so large
// frames are reachable. At most 64 frames.
#pragma once

#include <cstddef>
#include <cstdint>

#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace carico::fuzz {

inline zmq::multipart_t split_frames(const std::uint8_t* data, std::size_t size) {
  zmq::multipart_t frames;
  std::size_t at = 0;
  while (at < size && frames.size() < 64) {
    std::size_t length = data[at++];
    if (length == 0xff || length > size - at) length = size - at;
    frames.addmem(data + at, length);
    at += length;
  }
  return frames;
}

}  // namespace carico::fuzz
