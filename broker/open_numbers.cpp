#include "broker/open_numbers.hpp"

#include <bit>

namespace carico {

namespace {

constexpr std::uint64_t word_mask = ~std::uint64_t{63};
constexpr std::uint64_t window_words = open_numbers::window_numbers / 64;

}  // namespace

// Every straggler is below base_, and the window's first word has an open
// number unless the window has none (trim_front after every change).
void open_numbers::open(std::uint64_t n) {
  const std::uint64_t above_far = far_.empty() ? 0 : (*far_.rbegin() & word_mask) + 64;
  const bool window_empty = words_.empty() || words_.front() == 0;
  const bool straggler =
      n < above_far || (!window_empty && n < base_ &&
                        (base_ - n) / 64 + words_.size() >= window_words);
  if (straggler) {
    far_.insert(n);
    return;
  }
  if (window_empty) {  // start the window at n
    words_.clear();
    base_ = n & word_mask;
  }
  while (n < base_) {
    words_.push_front(0);
    base_ -= 64;
  }
  const std::uint64_t word = (n - base_) / 64;
  while (words_.size() <= word) words_.push_back(0);
  words_[word] |= std::uint64_t{1} << ((n - base_) % 64);
  // Too long: the oldest word's open numbers become stragglers.
  while (words_.size() > window_words) {
    for (std::uint64_t w = words_.front(); w != 0; w &= w - 1) {
      far_.insert(base_ + static_cast<std::uint64_t>(std::countr_zero(w)));
    }
    words_.pop_front();
    base_ += 64;
  }
  trim_front();
}

void open_numbers::close(std::uint64_t n) {
  if (n < base_) {
    far_.erase(n);
    return;
  }
  const std::uint64_t word = (n - base_) / 64;
  if (word >= words_.size()) return;
  words_[word] &= ~(std::uint64_t{1} << ((n - base_) % 64));
  trim_front();
}

// The window's start moves past words with nothing open; the last word
// stays, so that it never passes a number it has not seen.
void open_numbers::trim_front() {
  while (words_.size() > 1 && words_.front() == 0) {
    words_.pop_front();
    base_ += 64;
  }
}

std::uint64_t open_numbers::size() const {
  std::uint64_t n = far_.size();
  for (const std::uint64_t w : words_) n += static_cast<std::uint64_t>(std::popcount(w));
  return n;
}

std::uint64_t open_numbers::floor() const {
  return far_.empty() ? base_ : (*far_.begin() & word_mask);
}

}  // namespace carico
