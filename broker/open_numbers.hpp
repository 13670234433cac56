// The numbers of the journal's unfinished rows, as the SQLite writer keeps
// track of them so that a restart need not find them through an index: a
// window of bits starting at a multiple of 64, one per number, set while the
// row is unfinished. Numbers arrive nearly in order and finish nearly in
// order, so the window is short. A number left open while more than
// window_numbers newer ones arrive (a request a hung worker holds, one parked
// for days) moves to a small set of stragglers, so memory stays bounded.
//
//   open_numbers open;
//   open.open(7); open.open(8);
//   open.close(7);           // floor() is now at most 8
//   meta.unfinished_from = open.floor();
#pragma once

#include <cstdint>
#include <deque>
#include <set>

namespace carico {

class open_numbers {
 public:
  // Numbers the window covers at most (64 KiB of bits).
  static constexpr std::uint64_t window_numbers = std::uint64_t{1} << 19;

  // Nothing open; every number below `from` is finished.
  explicit open_numbers(std::uint64_t from = 0) : base_(from & ~std::uint64_t{63}) {}
  // Row n is (again) unfinished.
  void open(std::uint64_t n);
  // Row n is finished (nothing if it was not open).
  void close(std::uint64_t n);
  // A multiple of 64 at or below the lowest open number, and within 64 of
  // it; with nothing open, at or below the numbers the window last covered.
  std::uint64_t floor() const;
  // How many numbers are open (counted: for tests and reports).
  std::uint64_t size() const;
  // How many stragglers are kept outside the window.
  std::uint64_t stragglers() const { return far_.size(); }

 private:
  void trim_front();

  std::uint64_t base_;                // the number of words_.front()'s bit 0
  std::deque<std::uint64_t> words_;   // bit i of words_[k]: base_ + 64k + i is open
  std::set<std::uint64_t> far_;       // open numbers below base_
};

}  // namespace carico
