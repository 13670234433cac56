#include "tests/support/pg_server.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace carico::test {
namespace {

namespace fs = std::filesystem;

// The newest /usr/lib/postgresql/N/bin holding a postgres binary; "" when none.
std::string find_server_binaries() {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    const int version = std::atoi(name.c_str());
    if (version > best_version && fs::exists(entry.path() / "bin" / "postgres")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  return best;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("pg_server: no free loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts argv with stdout and stderr to log_path; as root, as the postgres
// user. With die_with_parent, the child gets SIGQUIT (PostgreSQL's immediate
// shutdown) should this process die without stopping it.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path,
            bool die_with_parent) {
  const bool root = ::geteuid() == 0;
  uid_t uid = 0;
  gid_t gid = 0;
  if (root) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      throw std::runtime_error(
          "pg_server: running as root, but there is no `postgres` user to run PostgreSQL as "
          "(scripts/setup.sh --test installs Debian's postgresql, which creates it)");
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("pg_server: fork failed");
  if (pid == 0) {
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (root && (::setgid(gid) != 0 || ::setuid(uid) != 0)) ::_exit(126);
    // After setuid: a change of credentials clears the parent-death signal.
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
      if (::getppid() != parent) ::_exit(1);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

pg_server::pg_server() {
  bin_ = find_server_binaries();
  if (bin_.empty()) {
    throw std::runtime_error(
        "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/postgres): "
        "run scripts/setup.sh --test, which installs Debian's postgresql");
  }
  char templ[] = "/tmp/carico-pg-XXXXXX";
  if (::mkdtemp(templ) == nullptr) throw std::runtime_error("pg_server: mkdtemp failed");
  dir_ = templ;
  try {
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr || ::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("pg_server: cannot give " + dir_ + " to the postgres user");
      }
    }
    const std::string init_log = dir_ + "/initdb.log";
    const pid_t init = spawn({bin_ + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U",
                              "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
                             init_log, false);
    int status = 0;
    ::waitpid(init, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("pg_server: initdb failed: " + read_file(init_log));
    }
    port_ = free_loopback_port();
    pid_ = spawn({bin_ + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_), "-k",
                  dir_, "-c", "listen_addresses=127.0.0.1"},
                 dir_ + "/server.log", true);
    wait_until_ready();
  } catch (...) {
    stop();
    throw;
  }
}

pg_server::~pg_server() { stop(); }

pg_server& pg_server::shared() {
  static pg_server server;
  return server;
}

void pg_server::wait_until_ready() {
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=postgres "
      "connect_timeout=2";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("pg_server: postgres exited at start: " +
                               read_file(dir_ + "/server.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("pg_server: postgres not ready within 60 s: " +
                           read_file(dir_ + "/server.log"));
}

void pg_server::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGINT);  // fast shutdown: sessions are ended
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::string pg_server::uri_of(const std::string& db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

std::string pg_server::create_database() {
  const std::string name = "carico_t" + std::to_string(++databases_);
  exec("postgres", "CREATE DATABASE " + name);
  return uri_of(name);
}

void pg_server::exec(const std::string& db, const std::string& sql) const {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(uri_of(db).c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("pg_server: cannot connect: ") + PQerrorMessage(c.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
  const ExecStatusType s = PQresultStatus(r.get());
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    throw std::runtime_error("pg_server: " + sql + ": " + PQresultErrorMessage(r.get()));
  }
}

void pg_server::terminate_backend(int pid) const {
  exec("postgres", "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
}

}  // namespace carico::test
