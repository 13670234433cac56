// Documents read from disk for the `text` service: the file's bytes are the
// payload, its JSON title (or titolo) the header's `title`.
//
//   auto doc = carico::load_document("files/pasta.json");
//   if (!doc) std::cerr << doc.error;
//   auto paths = carico::list_documents("files");   // every *.json, sorted
//   carico::document_batch b = carico::pick_documents("files", 100, seed);  // `send N`
//   if (!b) std::cerr << b.error;
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace carico {

struct document {
  std::string path;     // as given: printed beside each reply
  std::string title;    // the JSON's title/titolo, else the file name
  std::string payload;  // the file's bytes, sent as is (even when not JSON)
};

// A document, or why it could not be read.
struct document_result {
  std::shared_ptr<const document> value;  // set on success
  std::string error;                      // e.g. "files/x.json: No such file or directory"
  explicit operator bool() const { return value != nullptr; }
};

// Reads path whole. A file that is not JSON, or has no string title, is still
// a document (the broker's worker decides what it thinks of it); only a file
// that cannot be read, or is not a regular file, is an error.
document_result load_document(const std::string& path);

// The document a user named: name as a path when it exists, else
// files_dir/name (a bare "hello.json" is found in the --files folder); when
// neither exists, the error says where it looked ("no such file: ..."), and
// one that cannot be read says so ("cannot read ..."). The REPL's `send FILE...`
// and `carico-client send FILE...` both resolve names this way.
document_result load_named_document(const std::string& name, const std::string& files_dir);

// The title a payload announces: "title" or else "titolo" when the payload is a
// JSON object with such a string; otherwise nothing.
std::optional<std::string> document_title(const std::string& payload);

// The paths of the regular *.json files in dir, sorted. Sets error (and
// returns nothing) when dir cannot be listed or holds no such file.
std::vector<std::string> list_documents(const std::string& dir, std::string& error);

// The documents of one batch, or why it cannot be made.
struct document_batch {
  std::vector<std::shared_ptr<const document>> documents;  // in sending order; repeats share one
  std::string error;                                       // set on failure (documents then empty)
  explicit operator bool() const { return error.empty(); }
};

// The document picker of `send N` (the REPL) and `carico-client send --count N`:
// count documents drawn uniformly, with repeats, from dir's *.json
// (list_documents); the same seed draws the same sequence. Each file is read
// once however often it is drawn. Errors: "cannot pick documents: DIR: ..." when
// dir has none, "cannot read PATH: ..." when a drawn file cannot be read.
document_batch pick_documents(const std::string& dir, std::size_t count, unsigned seed);

// The documents named, in order (load_named_document: a bare name is also
// looked for in files_dir); a name given twice is read once. The first name
// that cannot be loaded sets error (load_named_document's) and nothing is kept.
document_batch load_named_documents(const std::vector<std::string>& names,
                                    const std::string& files_dir);

}  // namespace carico
