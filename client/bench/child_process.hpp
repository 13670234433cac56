// A program started by carico-bench (broker, proxy, workers), owned by PID.
//
//   carico::child_process broker({"/path/carico-broker", "--frontend", ep}, "broker.log");
//   carico::proc_sample s = broker.sample();   // CPU seconds, RSS, peak RSS
//   broker.kill_now();                         // SIGKILL and reap
//
// The child leads a process group of its own, and stopping it signals the
// whole group: a wrapper that forks (heaptrack, perf record) takes its program
// with it. The destructor terminates the child (SIGTERM, then SIGKILL after a
// grace period) and reaps it, so every exit path of the bench leaves no process
// behind; the child (not its own children) also gets SIGKILL if the bench
// itself dies (PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace carico {

// Figures read from /proc for one process.
struct proc_sample {
  double cpu_seconds{0};          // utime + stime
  std::uint64_t rss_bytes{0};     // VmRSS
  std::uint64_t peak_rss_bytes{0};// VmHWM
};

// Reads /proc/PID/stat and /proc/PID/status; zeros when the process is gone.
proc_sample sample_process(pid_t pid);

class child_process {
 public:
  child_process() = default;
  // Starts argv[0] with stdout and stderr appended to log_path, in work_dir
  // when one is given (relative paths, such as a program's default files, land
  // there); throws std::runtime_error when it cannot be started.
  child_process(const std::vector<std::string>& argv, const std::string& log_path,
                const std::string& work_dir = {});
  ~child_process();
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool running();
  proc_sample sample() const { return sample_process(pid_); }
  // SIGKILL to the child's process group now, then reap the child.
  void kill_now();
  // SIGTERM to the child's process group, wait up to grace for the child to
  // exit and the group to empty, then SIGKILL the group; reaps the child.
  // Returns the child's exit status as waitpid gave it, or -1 when there was
  // no child.
  int terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  // kill(-pid_, sig); kill(pid_, sig) when there is no such group.
  void signal_group(int sig) const;

  pid_t pid_{-1};          // -1 when there is no child (not started, or reaped)
  int status_{0};          // waitpid status once reaped
};

}  // namespace carico
