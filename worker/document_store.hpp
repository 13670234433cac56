// Durable storage of received documents in one directory.
//
//   carico::document_store store("storage/w1", /*clean=*/false);
//   std::string name = store.store(17, "Relazione", bytes);  // "17-Relazione.json"
//
// A document is written to a temporary file, fsynced, renamed into place and
// the directory fsynced: after a crash a name holds the whole document or
// does not exist. Temporary files of dead processes are removed when the store
// opens; several workers may share one directory.
//
// A store that cannot write (read-only mount, full disk, a file where the
// directory should be) is still built: probe() says why it cannot store, and
// the worker stays out of the ring (state overload) until probe() passes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace carico {

class document_store {
 public:
  // Creates dir if it can; with clean, removes everything in it first. A
  // directory that cannot be made or written is left for probe() to report.
  document_store(std::filesystem::path dir, bool clean);

  // Whether a document can be stored now: creates the directory if it is
  // missing, then creates, writes, fsyncs and removes a probe file. Returns
  // "" when that works, else why not ("cannot create /x/.tmp-12-probe:
  // Read-only file system"). Safe from any thread.
  std::string probe();

  // Stores bytes as safe_file_name(request, title); a second store of the
  // same request replaces the first. Returns the file name (not the path).
  // Throws std::runtime_error when the disk refuses.
  std::string store(std::uint64_t request, std::string_view title, std::string_view bytes);
  // The same under another key than a request number (safe_file_name(key, title)).
  std::string store(std::string_view key, std::string_view title, std::string_view bytes);

  const std::filesystem::path& dir() const { return dir_; }

  // The name of the file stored for `request` ("<request>-<title>.json"), if
  // this store has one. Throws std::runtime_error when dir cannot be listed.
  std::optional<std::string> find(std::uint64_t request) const;
  // The bytes of stored file `name` (a name find() returned), exactly as
  // stored; nothing when it is gone. Throws std::runtime_error when it exists
  // but cannot be read.
  std::optional<std::string> read(const std::string& name) const;

  // Prefix of temporary files, never a stored document's name.
  static constexpr std::string_view temp_prefix = ".tmp-";

 private:
  std::filesystem::path dir_;  // where documents live
};

}  // namespace carico
