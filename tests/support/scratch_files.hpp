// Files for tests: a scratch directory of the test's own, removed with it,
// and reading a file another thread or process is still writing.
//
//   carico::test::scratch_dir dir("escape");            // $TMPDIR/carico-escape-PID-N
//   const auto log = dir.path / "loadbalancer.log";
//   std::string text = carico::test::wait_for_text(log, [](const std::string& t) {
//     return t.find("request 1 done") != std::string::npos;
//   });
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace carico::test {

// A fresh, empty directory under the system's temporary directory; removed,
// with what it holds, on destruction.
struct scratch_dir {
  explicit scratch_dir(const std::string& tag);
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  // The path of `name` in it, as a string.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};

// The file's whole content ("" when it cannot be read).
std::string read_file(const std::filesystem::path& file);
// The file's content once `done` accepts it, read every 10 ms; as it is
// after `within` otherwise (the caller's assertion then fails).
std::string wait_for_text(const std::filesystem::path& file,
                          const std::function<bool(const std::string&)>& done,
                          std::chrono::milliseconds within = std::chrono::seconds(5));

}  // namespace carico::test
