#include "tests/support/scratch_files.hpp"

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include <unistd.h>

namespace carico::test {

scratch_dir::scratch_dir(const std::string& tag) {
  static std::atomic<unsigned> made{0};
  path = std::filesystem::temp_directory_path() /
         ("carico-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++made));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
}

scratch_dir::~scratch_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string wait_for_text(const std::filesystem::path& file,
                          const std::function<bool(const std::string&)>& done,
                          std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  std::string text = read_file(file);
  while (!done(text) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    text = read_file(file);
  }
  return text;
}

}  // namespace carico::test
