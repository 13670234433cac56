// carico-bench's child_process: stopping a child stops what it forked too (a
// --broker-prefix wrapper such as heaptrack or perf record runs the broker as
// its own child), by the process group of the PID it started.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "client/bench/child_process.hpp"

namespace {

using namespace std::chrono_literals;

// The PID the wrapper wrote to path, waiting up to 5 s for it; 0 if none.
pid_t read_pid(const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    long pid = 0;
    std::string line;
    if (std::getline(in, line) && !line.empty() && line.back() == '.') {
      pid = std::stol(line);
      if (pid > 0) return static_cast<pid_t>(pid);
    }
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

// True when pid no longer runs: gone, or a zombie nobody has reaped yet (its
// parent, the wrapper, is gone, and init may be slow to reap or not reap at all).
bool dead(pid_t pid) {
  if (::kill(pid, 0) < 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const std::size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

bool dies_within(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!dead(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A shell that forks `sleep 60`, writes its PID ("123.") to path, and waits.
carico::child_process forking_wrapper(const std::string& path) {
  return carico::child_process(
      {"/bin/sh", "-c", "sleep 60 & echo \"$!.\" > '" + path + "'; wait"}, "/dev/null");
}

struct temp_file {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("carico-child-" + std::to_string(::getpid()) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
                         .string();
  ~temp_file() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("child_process: terminate() also stops what the child forked") {
  temp_file file;
  carico::child_process child = forking_wrapper(file.path);
  const pid_t grandchild = read_pid(file.path);
  REQUIRE(grandchild > 0);
  REQUIRE_FALSE(dead(grandchild));
  child.terminate(2000ms);
  CHECK_FALSE(child.running());
  const bool gone = dies_within(grandchild, 3000ms);
  if (!gone) ::kill(grandchild, SIGKILL);  // leave nothing behind, even failing
  CHECK(gone);
}

TEST_CASE("child_process: kill_now() also kills what the child forked") {
  temp_file file;
  carico::child_process child = forking_wrapper(file.path);
  const pid_t grandchild = read_pid(file.path);
  REQUIRE(grandchild > 0);
  child.kill_now();
  CHECK(child.pid() == -1);
  const bool gone = dies_within(grandchild, 3000ms);
  if (!gone) ::kill(grandchild, SIGKILL);
  CHECK(gone);
}

TEST_CASE("child_process: the destructor stops what the child forked") {
  temp_file file;
  pid_t grandchild = 0;
  {
    carico::child_process child = forking_wrapper(file.path);
    grandchild = read_pid(file.path);
    REQUIRE(grandchild > 0);
  }
  const bool gone = dies_within(grandchild, 3000ms);
  if (!gone) ::kill(grandchild, SIGKILL);
  CHECK(gone);
}
