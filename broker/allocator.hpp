// The broker's memory allocator, as found at run time. carico-broker is
// linked with jemalloc (CMake option CARICO_JEMALLOC, on except under the
// sanitizers): its loop allocates what other threads free (journal events,
// ZeroMQ frames, access-log records), which glibc's malloc serves from its
// locked arena paths every time; jemalloc's per-thread caches take that
// traffic (docs/benchmarks.md). Code linked without it (the tests, the
// sanitizer build) gets the C library's malloc, and these still work.
// jemalloc is told to keep the pages it frees (allocator.cpp): the broker
// gives them back itself, with release_free_memory(), when traffic pauses.
//
//   log->info("allocator: {}", carico::allocator_name());  // "jemalloc 5.3.0-0-g54eaed1d…"
//   carico::release_free_memory();  // after a burst: free pages back to the system
#pragma once

#include <string>

namespace carico {

// "jemalloc VERSION" when jemalloc serves this process's malloc, else "libc malloc".
std::string allocator_name();
// Gives the pages the allocator keeps free back to the system: jemalloc purges
// every arena, glibc trims (malloc_trim). Costs a few system calls and page
// faults later if the memory is needed again: for after a burst, not per request.
void release_free_memory();

}  // namespace carico
