#include "broker/open_numbers.hpp"

namespace carico {

void open_numbers::open(std::uint64_t n) {
  if (words_.empty()) floor_ = n & ~std::uint64_t{63};
  while (n < floor_) {
    words_.push_front(0);
    floor_ -= 64;
  }
  const std::uint64_t word = (n - floor_) / 64;
  while (words_.size() <= word) words_.push_back(0);
  const std::uint64_t bit = std::uint64_t{1} << ((n - floor_) % 64);
  if ((words_[word] & bit) == 0) ++count_;
  words_[word] |= bit;
}

void open_numbers::close(std::uint64_t n) {
  if (n < floor_) return;
  const std::uint64_t word = (n - floor_) / 64;
  if (word >= words_.size()) return;
  const std::uint64_t bit = std::uint64_t{1} << ((n - floor_) % 64);
  if ((words_[word] & bit) == 0) return;
  words_[word] &= ~bit;
  --count_;
  // The floor moves past words with nothing open; the last one stays, so
  // that the floor never passes a number that has not been seen yet.
  while (words_.size() > 1 && words_.front() == 0) {
    words_.pop_front();
    floor_ += 64;
  }
}

}  // namespace carico
