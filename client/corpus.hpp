// A generator of load-test documents in the original format
// ({"titolo": ..., "contenuto": ...}): Italian- and English-ish prose, about
// the requested size each. Deterministic for a given seed.
//
//   carico::corpus_options o{.count = 1000, .size = 4096, .out = "/tmp/corpus"};
//   std::string error;
//   if (!carico::generate_corpus(o, error)) std::cerr << error;
#pragma once

#include <cstddef>
#include <string>

namespace carico {

struct corpus_options {
  std::size_t count = 100;   // documents to write
  std::size_t size = 2048;   // bytes per document, about (the JSON file as written)
  std::string out;           // folder, created when missing
  unsigned seed = 1;         // same seed, same bytes
};

// Writes out/doc-000001.json ... Returns false with error set when the folder
// cannot be made or a file cannot be written.
bool generate_corpus(const corpus_options& options, std::string& error);

// One document's JSON text of about size bytes (never less than a short title
// and one word); the n-th of the seed's sequence.
std::string make_document(std::size_t n, std::size_t size, unsigned seed);

}  // namespace carico
