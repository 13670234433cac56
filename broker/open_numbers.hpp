// The numbers of the journal's unfinished rows, as the SQLite writer keeps
// track of them so that a restart need not find them through an index: a
// window of bits starting at floor(), one per number, set while the row is
// unfinished. Every number below floor() is finished or has no row. Numbers
// arrive nearly in order and finish nearly in order, so the window is short:
// one bit per number from the oldest unfinished request to the newest.
//
//   open_numbers open;
//   open.open(7); open.open(8);
//   open.close(7);           // floor() is now at most 8
//   meta.unfinished_from = open.floor();
#pragma once

#include <cstdint>
#include <deque>

namespace carico {

class open_numbers {
 public:
  // Nothing open; every number below `from` is finished.
  explicit open_numbers(std::uint64_t from = 0) : floor_(from & ~std::uint64_t{63}) {}
  // Row n is (again) unfinished.
  void open(std::uint64_t n);
  // Row n is finished (nothing if it was not open).
  void close(std::uint64_t n);
  // A multiple of 64 at or below the lowest open number, and within 64 of
  // it; with nothing open, at or below every number above the highest
  // opened (so at or below every request number still to come).
  std::uint64_t floor() const { return floor_; }
  // How many numbers are open.
  std::uint64_t size() const { return count_; }

 private:
  std::uint64_t floor_;              // the number of words_.front()'s bit 0
  std::deque<std::uint64_t> words_;  // bit i of words_[k]: floor_ + 64k + i is open
  std::uint64_t count_{0};
};

}  // namespace carico
