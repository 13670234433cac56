#include "client/document.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

namespace carico {

namespace fs = std::filesystem;

document_result load_named_document(const std::string& name, const std::string& files_dir) {
  std::error_code ec;
  std::string path = name;
  if (!fs::exists(path, ec) && !files_dir.empty() && fs::exists(fs::path(files_dir) / name, ec)) {
    path = (fs::path(files_dir) / name).string();
  }
  if (!fs::exists(path, ec)) {
    document_result out;
    out.error = "no such file: " + name + " (looked in . and " + files_dir + "/)";
    return out;
  }
  document_result out = load_document(path);
  if (!out) out.error = "cannot read " + out.error;
  return out;
}

std::optional<std::string> document_title(const std::string& payload) {
  nlohmann::json parsed = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  for (const char* key : {"title", "titolo"}) {
    auto it = parsed.find(key);
    if (it != parsed.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

document_result load_document(const std::string& path) {
  document_result out;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec) {
    out.error = path + ": " + ec.message();
    return out;
  }
  if (!fs::is_regular_file(status)) {
    out.error = path + ": not a regular file";
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = path + ": " + std::strerror(errno);
    return out;
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) {
    out.error = path + ": read error";
    return out;
  }
  auto doc = std::make_shared<document>();
  doc->path = path;
  doc->payload = std::move(bytes).str();
  doc->title = document_title(doc->payload).value_or(fs::path(path).filename().string());
  out.value = std::move(doc);
  return out;
}

std::vector<std::string> list_documents(const std::string& dir, std::string& error) {
  std::vector<std::string> paths;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    error = dir + ": " + ec.message();
    return {};
  }
  for (const fs::directory_entry& entry : it) {
    std::error_code type_ec;
    if (entry.path().extension() == ".json" && entry.is_regular_file(type_ec)) {
      paths.push_back(entry.path().string());
    }
  }
  if (paths.empty()) {
    error = dir + ": no *.json documents in this folder";
    return {};
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

document_batch pick_documents(const std::string& dir, std::size_t count, unsigned seed) {
  document_batch out;
  std::string why;
  const std::vector<std::string> pool = list_documents(dir, why);
  if (pool.empty()) {
    out.error = "cannot pick documents: " + why;
    return out;
  }
  std::mt19937 random(seed);
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  std::map<std::size_t, std::shared_ptr<const document>> loaded;  // by index in pool
  out.documents.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t k = pick(random);
    std::shared_ptr<const document>& doc = loaded[k];
    if (!doc) {
      document_result r = load_document(pool[k]);
      if (!r) return document_batch{{}, "cannot read " + r.error};
      doc = std::move(r.value);
    }
    out.documents.push_back(doc);
  }
  return out;
}

document_batch load_named_documents(const std::vector<std::string>& names,
                                    const std::string& files_dir) {
  document_batch out;
  std::map<std::string, std::shared_ptr<const document>> loaded;  // by name as given
  out.documents.reserve(names.size());
  for (const std::string& name : names) {
    std::shared_ptr<const document>& doc = loaded[name];
    if (!doc) {
      document_result r = load_named_document(name, files_dir);
      if (!r) return document_batch{{}, r.error};
      doc = std::move(r.value);
    }
    out.documents.push_back(doc);
  }
  return out;
}

}  // namespace carico
