#include "worker/document_store.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "worker/text_service.hpp"

namespace carico {
namespace {

namespace fs = std::filesystem;

std::runtime_error os_error(const std::string& what, const fs::path& path) {
  return std::runtime_error(what + " " + path.string() + ": " + std::strerror(errno));
}

// Writes all of bytes to fd, retrying short writes and EINTR.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw os_error("cannot open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw os_error("cannot fsync directory", dir);
}

}  // namespace

document_store::document_store(fs::path dir, bool clean) : dir_(std::move(dir)) {
  std::error_code ec;
  if (clean && fs::is_directory(dir_, ec)) {
    for (const auto& entry : fs::directory_iterator(dir_, ec)) fs::remove_all(entry.path(), ec);
  }
  fs::create_directories(dir_, ec);
  if (!fs::is_directory(dir_, ec)) return;  // probe() says why
  // Temporary files left by a crashed writer are incomplete documents: drop
  // them. Workers may share the directory, so a live process's are left alone.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(temp_prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + temp_prefix.size(), nullptr, 10);
    const bool writer_alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (!writer_alive || pid == ::getpid()) fs::remove(entry.path(), ec);
  }
}

std::string document_store::probe() {
  std::error_code made;
  fs::create_directories(dir_, made);
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) {
    return "cannot create storage directory " + dir_.string() + ": " +
           (made ? made.message() : ec ? ec.message() : "a file is in the way");
  }
  // Named as a temporary file: one a crash leaves behind is removed at the next start.
  const fs::path path = dir_ / (std::string(temp_prefix) + std::to_string(::getpid()) + "-probe");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("cannot create", path).what();
  const char byte = '\n';
  if (!write_all(fd, std::string_view(&byte, 1)) || ::fsync(fd) != 0) {
    const std::string error = os_error("cannot write", path).what();
    ::close(fd);
    ::unlink(path.c_str());
    return error;
  }
  ::close(fd);
  if (::unlink(path.c_str()) != 0) return os_error("cannot remove", path).what();
  try {
    fsync_dir(dir_);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

std::string document_store::store(std::uint64_t request, std::string_view title,
                                  std::string_view bytes) {
  return store(std::string_view(std::to_string(request)), title, bytes);
}

std::string document_store::store(std::string_view key, std::string_view title,
                                  std::string_view bytes) {
  static std::atomic<std::uint64_t> temp_counter{0};
  const std::string name = safe_file_name(key, title);
  const fs::path final_path = dir_ / name;
  const fs::path temp_path =
      dir_ / (std::string(temp_prefix) + std::to_string(::getpid()) + "-" +
              std::to_string(temp_counter.fetch_add(1)));

  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw os_error("cannot create", temp_path);
  if (!write_all(fd, bytes) || ::fsync(fd) != 0) {
    const auto error = os_error("cannot write", temp_path);
    ::close(fd);
    ::unlink(temp_path.c_str());
    throw error;
  }
  if (::close(fd) != 0) {
    const auto error = os_error("cannot close", temp_path);
    ::unlink(temp_path.c_str());
    throw error;
  }
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    const auto error = os_error("cannot rename into", final_path);
    ::unlink(temp_path.c_str());
    throw error;
  }
  fsync_dir(dir_);
  return name;
}

std::optional<std::string> document_store::find(std::uint64_t request) const {
  const std::string prefix = std::to_string(request) + "-";
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > prefix.size() + 5 && name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - 5, 5, ".json") == 0) {
      return name;
    }
  }
  if (ec) throw std::runtime_error("cannot list " + dir_.string() + ": " + ec.message());
  return std::nullopt;
}

std::optional<std::string> document_store::read(const std::string& name) const {
  const fs::path path = dir_ / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw os_error("cannot open", path);
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw os_error("cannot read", path);
  return bytes;
}

}  // namespace carico
