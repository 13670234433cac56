#include "worker/load_probe.hpp"

#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace carico {
namespace {

std::uint64_t read_mem_total() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

std::uint64_t read_rss() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t read_cpu_ticks() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  // Fields after the parenthesised command name; utime and stime are 14 and 15.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

}  // namespace

load_probe::load_probe() : mem_total_bytes_(read_mem_total()) {
  last_cpu_ticks_ = read_cpu_ticks();
  last_sample_ = clock::now();
  sample();
}

void load_probe::sample() {
  rss_bytes_ = read_rss();
  mem_percent_ = mem_total_bytes_ ? 100.0 * static_cast<double>(rss_bytes_) /
                                        static_cast<double>(mem_total_bytes_)
                                  : 0.0;
  const time_point now = clock::now();
  const std::uint64_t ticks = read_cpu_ticks();
  const double wall = std::chrono::duration<double>(now - last_sample_).count();
  if (wall > 0.05) {
    const double cpu = static_cast<double>(ticks - last_cpu_ticks_) /
                       static_cast<double>(::sysconf(_SC_CLK_TCK));
    cpu_percent_ = 100.0 * cpu / wall;
    last_cpu_ticks_ = ticks;
    last_sample_ = now;
  }
}

}  // namespace carico
