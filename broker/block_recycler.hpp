// Freed blocks of one size kept for reuse, for a node-based container whose
// inserts and erases follow each other closely: the broker's requests_, where
// each reply frees a request's node moments before the next request needs
// one. A kept block costs a pop and is still in cache; one from malloc costs
// a search of its bins and often a cache miss (glibc's per-thread cache keeps
// only 7 blocks of a size, and hundreds of requests are freed in a burst).
//
//   carico::block_recycler nodes(1024);  // keeps at most 1024 freed blocks
//   std::unordered_map<K, V, std::hash<K>, std::equal_to<K>,
//                      carico::recycling_allocator<std::pair<const K, V>>>
//       map{carico::recycling_allocator<std::pair<const K, V>>(nodes)};
//
// The first single object allocated fixes the block size (for an unordered
// map, its node). Other sizes, arrays (bucket arrays) and blocks past the cap
// go to operator new and delete. The recycler must outlive the container.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

// Under AddressSanitizer a kept block is poisoned until it is handed out
// again, so a use after erase is still reported as one.
#if defined(__SANITIZE_ADDRESS__)
#define CARICO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CARICO_ASAN 1
#endif
#endif
#ifdef CARICO_ASAN
#include <sanitizer/asan_interface.h>
#define CARICO_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define CARICO_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define CARICO_POISON(p, n) ((void)(p), (void)(n))
#define CARICO_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace carico {

class block_recycler {
 public:
  explicit block_recycler(std::size_t keep) : keep_(keep) { free_.reserve(keep); }
  block_recycler(const block_recycler&) = delete;
  block_recycler& operator=(const block_recycler&) = delete;
  ~block_recycler() { release(); }

  void* allocate(std::size_t bytes) {
    if (bytes == block_ && !free_.empty()) {
      void* p = free_.back();
      free_.pop_back();
      CARICO_UNPOISON(p, bytes);
      return p;
    }
    if (block_ == 0) block_ = bytes;
    return ::operator new(bytes);
  }
  void deallocate(void* p, std::size_t bytes) noexcept {
    if (bytes == block_ && free_.size() < keep_) {
      CARICO_POISON(p, bytes);
      free_.push_back(p);  // within the capacity reserved: cannot throw
      return;
    }
    ::operator delete(p, bytes);
  }
  // Gives every kept block back to the heap.
  void release() noexcept {
    for (void* p : free_) {
      CARICO_UNPOISON(p, block_);
      ::operator delete(p, block_);
    }
    free_.clear();
  }
  std::size_t kept() const { return free_.size(); }

 private:
  std::size_t block_{0};     // the size recycled; 0 until the first single object
  std::size_t keep_;         // most blocks kept
  std::vector<void*> free_;  // kept blocks, the last freed at the back
};

// A standard allocator over a block_recycler: single objects through it,
// arrays straight to std::allocator.
template <class T>
class recycling_allocator {
 public:
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "over-aligned types are not supported");

  explicit recycling_allocator(block_recycler& recycler) noexcept : recycler_(&recycler) {}
  template <class U>
  recycling_allocator(const recycling_allocator<U>& other) noexcept : recycler_(other.recycler()) {}

  T* allocate(std::size_t n) {
    if (n != 1) return std::allocator<T>().allocate(n);
    return static_cast<T*>(recycler_->allocate(sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n != 1) {
      std::allocator<T>().deallocate(p, n);
    } else {
      recycler_->deallocate(p, sizeof(T));
    }
  }
  block_recycler* recycler() const noexcept { return recycler_; }


 private:
  block_recycler* recycler_;  // not owned
};

// Equal when they share a recycler, whatever their value types.
template <class T, class U>
bool operator==(const recycling_allocator<T>& a, const recycling_allocator<U>& b) noexcept {
  return a.recycler() == b.recycler();
}
template <class T, class U>
bool operator!=(const recycling_allocator<T>& a, const recycling_allocator<U>& b) noexcept {
  return !(a == b);
}

}  // namespace carico
