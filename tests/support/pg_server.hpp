// A real PostgreSQL server for the tests: initdb in a fresh temporary
// directory, postgres on a free loopback port (its socket in that directory
// too), stopped by PID and removed on destruction. As root (CI), initdb and
// postgres run as the `postgres` user, which Debian's package creates.
//
//   std::string uri = carico::test::pg_server::shared().create_database();
//   auto j = carico::open_journal({.path = uri});
//
// Without PostgreSQL's server binaries (/usr/lib/postgresql/N/bin) the
// constructor throws std::runtime_error saying to run scripts/setup.sh --test:
// the tests that need it fail, they are not skipped.
#pragma once

#include <string>
#include <sys/types.h>

namespace carico::test {

class pg_server {
 public:
  pg_server();
  ~pg_server();
  pg_server(const pg_server&) = delete;
  pg_server& operator=(const pg_server&) = delete;

  // The one server of this test process, started on first use.
  static pg_server& shared();

  // A new empty database; returns its libpq URI.
  std::string create_database();
  // Runs SQL as the superuser in database `db` (a name); throws std::runtime_error.
  void exec(const std::string& db, const std::string& sql) const;
  // Ends a server process's session, as an operator's pg_terminate_backend() would.
  void terminate_backend(int pid) const;
  int port() const { return port_; }

 private:
  std::string uri_of(const std::string& db) const;
  void wait_until_ready();
  void stop();

  std::string dir_;       // the temporary directory: data/, the socket, server.log
  std::string bin_;       // PostgreSQL's server binaries
  int port_{0};           // the loopback port it listens on
  pid_t pid_{-1};         // the postmaster
  int databases_{0};      // made by create_database()
};

}  // namespace carico::test
