#include "client/document_fetch.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace carico {

nlohmann::json fetch_header(std::uint64_t number) {
  return nlohmann::json{{"get", number}};
}

fetched fetch_document(client& c, const std::string& service, std::uint64_t number) {
  return read_fetch_reply(c.call(service, fetch_header(number), ""));
}

fetched read_fetch_reply(reply&& r) {
  fetched out;
  out.code = r.code;
  out.worker = r.head.value("worker", "");
  if (!r.ok()) {
    out.reason = std::to_string(r.code) + " " + r.error();
    return out;
  }
  const nlohmann::json result = r.head.value("result", nlohmann::json::object());
  if (result.is_object()) out.stored_as = result.value("stored_as", "");
  if (r.body.size() != 1) {
    out.code = code::worker_failed;
    out.reason = "500 the reply holds " + std::to_string(r.body.size()) +
                 " body frames, not the one document";
    return out;
  }
  if (result.is_object() && result.contains("bytes") &&
      result.value("bytes", std::uint64_t{0}) != r.body.front().size()) {
    out.code = code::worker_failed;
    out.reason = "500 the document came incomplete: " + std::to_string(r.body.front().size()) +
                 " of " + result["bytes"].dump() + " bytes";
    return out;
  }
  out.bytes = std::move(r.body.front());
  return out;
}

std::optional<std::string> write_whole_file(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string temp = (dir / (".carico-get-XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0)
    return "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno);
  auto fail = [&](const std::string& what) {
    const std::string reason = what + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(temp.c_str());
    return reason;
  };
  std::string_view left = bytes;
  while (!left.empty()) {
    const ssize_t n = ::write(fd, left.data(), left.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write " + temp);
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) return fail("cannot write " + temp);
  if (::close(fd) != 0) {
    const std::string reason = "cannot close " + temp + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return reason;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = "cannot rename into " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return reason;
  }
  return std::nullopt;
}

}  // namespace carico
