#include "client/bench/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace carico {

proc_sample sample_process(pid_t pid) {
  proc_sample out;
  if (pid <= 0) return out;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may hold spaces) start at field 3.
    const std::size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 1));
      std::string field;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
      }
      out.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    auto kib = [&line](std::string_view key) -> std::uint64_t {
      return std::stoull(line.substr(key.size())) * 1024;
    };
    if (line.rfind("VmRSS:", 0) == 0) out.rss_bytes = kib("VmRSS:");
    if (line.rfind("VmHWM:", 0) == 0) out.peak_rss_bytes = kib("VmHWM:");
  }
  return out;
}

child_process::child_process(const std::vector<std::string>& argv, const std::string& log_path,
                             const std::string& work_dir) {
  if (argv.empty()) throw std::runtime_error("child_process: empty command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // In the child: die with the bench, lead a process group of its own (so a
    // wrapper that forks, such as heaptrack or perf record, is stopped with
    // everything it started), log to the file, enter work_dir, become the program.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    if (!work_dir.empty() && ::chdir(work_dir.c_str()) != 0) {
      // No allocation between fork and exec (the bench has threads): plain writes.
      static const char what[] = "carico-bench: cannot enter the working directory ";
      (void)!::write(2, what, sizeof what - 1);
      (void)!::write(2, work_dir.c_str(), work_dir.size());
      (void)!::write(2, "\n", 1);
      ::_exit(127);
    }
    ::execv(args[0], args.data());
    static const char failed[] = "carico-bench: cannot run ";
    (void)!::write(2, failed, sizeof failed - 1);
    (void)!::write(2, args[0], std::strlen(args[0]));
    (void)!::write(2, "\n", 1);
    ::_exit(127);
  }
  // Also here: the group must exist before the first kill(-pid_, ...), whichever
  // of the two runs first (EACCES once the child has exec'd: it already has).
  ::setpgid(pid, pid);
  pid_ = pid;
}

child_process::~child_process() { terminate(); }

child_process::child_process(child_process&& other) noexcept
    : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    terminate();
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

bool child_process::running() {
  if (pid_ <= 0) return false;
  const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void child_process::signal_group(int sig) const {
  // The group is named by the PID this object started; if it is gone (or the
  // child never got one), the child alone.
  if (::kill(-pid_, sig) < 0 && errno == ESRCH) ::kill(pid_, sig);
}

void child_process::kill_now() {
  if (pid_ <= 0) return;
  signal_group(SIGKILL);
  while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
  }
  // Members that outlived the leader (a wrapper's program): the group ID stays
  // theirs, not reusable, while any of them lives.
  ::kill(-pid_, SIGKILL);
  pid_ = -1;
}

int child_process::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  signal_group(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  bool reaped = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!reaped) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      reaped = r == pid_ || (r < 0 && errno != EINTR);
    }
    // Done once the child is reaped and nothing is left in its group.
    if (reaped && ::kill(-pid_, 0) < 0 && errno == ESRCH) {
      pid_ = -1;
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (reaped) {
    ::kill(-pid_, SIGKILL);
    pid_ = -1;
    return status_;
  }
  kill_now();
  return status_;
}

}  // namespace carico
