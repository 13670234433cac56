#include "broker/allocator.hpp"

#include <cstddef>

#ifdef __GLIBC__
#include <malloc.h>  // malloc_trim
#endif

// jemalloc's control interface, declared weak: resolved when jemalloc is linked
// in (or preloaded), null otherwise. No jemalloc header, so that this file
// builds, and the library links, without it.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp,
                       std::size_t newlen) __attribute__((weak));

// jemalloc's settings, read from this symbol when the process starts (the
// MALLOC_CONF environment variable still overrides them). Freed pages stay
// with jemalloc until release_free_memory(): by default it would hand them back
// on a timer (dirty_decay_ms, 10 s, smoothly), and every large buffer reused
// after that faults its pages in again. With 4 MiB documents that was most of
// the broker's CPU time (docs/benchmarks.md). The broker releases memory itself
// once traffic pauses and after a parking burst (broker.cpp). The C library's
// malloc ignores this symbol.
extern "C" {
const char* malloc_conf = "dirty_decay_ms:-1";
}

namespace carico {
namespace {

// jemalloc's MALLCTL_ARENAS_ALL: "arena.4096.purge" purges every arena.
constexpr const char* purge_all_arenas = "arena.4096.purge";

}  // namespace

std::string allocator_name() {
  if (mallctl != nullptr) {
    const char* version = nullptr;
    std::size_t size = sizeof(version);
    if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) {
      return std::string("jemalloc ") + version;
    }
    return "jemalloc";
  }
  return "libc malloc";
}

void release_free_memory() {
  if (mallctl != nullptr) {
    mallctl(purge_all_arenas, nullptr, nullptr, nullptr, 0);
    return;
  }
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace carico
