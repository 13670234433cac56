// `get`: fetch back, by request number, a document stored through the broker,
// and write it to a file only when the whole of it came.
//
//   carico::fetched f = carico::fetch_document(client, "text", 17);
//   if (!f.ok()) std::cerr << f.reason << "\n";
//   else if (auto error = carico::write_whole_file("copy.json", f.bytes)) ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "client/client.hpp"

namespace carico {

struct fetched {
  std::uint64_t code{0};  // the reply's code (200: bytes is the whole document)
  std::string reason;     // "CODE message" when code is not 200
  std::string bytes;      // the document, byte for byte as it was sent
  std::string worker;     // the worker that held it
  std::string stored_as;  // its file name in that worker's store

  bool ok() const { return code == 200; }
};

// Asks the broker for the document stored by request `number` of `service`
// (a carico request whose header says `get`). Blocks until the reply.
fetched fetch_document(client& c, const std::string& service, std::uint64_t number);
// The header a `get` of request `number` sends.
nlohmann::json fetch_header(std::uint64_t number);
// What the reply to a `get` says: 200 only with exactly the whole document.
fetched read_fetch_reply(reply&& r);

// Writes bytes to path through a temporary file in the same directory,
// renamed into place: path never holds part of a document. Returns the
// reason on failure (path is then untouched).
std::optional<std::string> write_whole_file(const std::string& path, std::string_view bytes);

}  // namespace carico
