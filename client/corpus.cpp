#include "client/corpus.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

namespace carico {
namespace {

const std::vector<const char*> italian = {
    "la",      "casa",    "sulla",    "collina", "guarda",   "il",       "mare",     "e",        "sera",
    "arriva",  "piano",   "mentre",   "le",      "barche",   "tornano",  "al",       "porto",    "cariche",
    "di",      "pesce",   "racconti", "antichi", "una",      "città",    "perché",   "però",     "caffè",
    "nonna",   "pane",    "strada",   "vento",   "sole",     "piazza",   "mercato",  "lavoro",   "treno",
    "domani",  "sempre",  "ancora",   "bella",   "tavola",   "famiglia", "amica",    "parola",   "lettera",
    "montagna", "fiume",  "campagna", "notte",   "giornata", "estate",   "primavera", "ragazza", "bambino"};
const std::vector<const char*> english = {
    "a",       "quiet",   "harbour",  "town",    "wakes",    "before",   "dawn",     "and",      "the",
    "bakers",  "carry",   "warm",     "bread",   "along",    "narrow",   "streets",  "while",    "gulls",
    "argue",   "above",   "market",   "square",  "data",     "request",  "answer",   "worker",   "balance",
    "load",    "station", "train",    "late",    "again",    "afternoon", "rain",    "window",   "paper",
    "garden",  "family",  "letter",   "mountain", "river",   "night",    "summer",   "spring",   "about",
    "table",   "banana",  "saga",     "canal",   "avalanche"};
const std::vector<const char*> title_words = {
    "Cronaca", "Lettera", "Racconto", "Notes", "Report", "Diario", "Storia", "Letter", "Story", "Memo",
    "Appunti", "Ricetta", "Journal", "Viaggio", "Journey"};

}  // namespace

std::string make_document(std::size_t n, std::size_t size, unsigned seed) {
  std::mt19937 random(seed * 2654435761u + static_cast<unsigned>(n));
  const bool in_italian = random() % 2 == 0;
  const auto& words = in_italian ? italian : english;
  std::uniform_int_distribution<std::size_t> word(0, words.size() - 1);
  std::uniform_int_distribution<int> sentence_length(5, 16);
  std::uniform_int_distribution<int> paragraph_length(3, 7);

  char title[96];
  std::snprintf(title, sizeof title, "%s %zu", title_words[random() % title_words.size()], n);
  const std::size_t overhead = nlohmann::json{{"titolo", title}, {"contenuto", ""}}.dump().size();
  const std::size_t target = size > overhead ? size - overhead : 1;

  std::string content;
  int sentences_in_paragraph = 0;
  int paragraph = paragraph_length(random);
  while (content.size() < target) {
    std::string sentence;
    const int length = sentence_length(random);
    for (int i = 0; i < length; ++i) {
      if (i > 0) sentence += ' ';
      sentence += words[word(random)];
    }
    if (!sentence.empty() && sentence[0] >= 'a' && sentence[0] <= 'z') sentence[0] = static_cast<char>(sentence[0] - 32);
    sentence += random() % 6 == 0 ? "?" : ".";
    if (!content.empty()) content += ++sentences_in_paragraph % paragraph == 0 ? "\n\n" : " ";
    content += sentence;
  }
  // Trim to the target at a UTF-8 boundary (JSON escapes may add a few bytes back).
  if (content.size() > target) {
    std::size_t cut = target;
    while (cut > 0 && (static_cast<unsigned char>(content[cut]) & 0xC0) == 0x80) --cut;
    content.resize(cut);
    while (!content.empty() && content.back() == ' ') content.pop_back();
    if (content.empty()) content = words[word(random)];
  }
  // json.dump() escapes the newlines: one more byte each.
  return nlohmann::ordered_json{{"titolo", title}, {"contenuto", content}}.dump();
}

bool generate_corpus(const corpus_options& options, std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) {
    error = options.out + ": " + ec.message();
    return false;
  }
  for (std::size_t i = 1; i <= options.count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "doc-%06zu.json", i);
    const fs::path path = fs::path(options.out) / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << make_document(i, options.size, options.seed) << '\n';
    if (!out) {
      error = path.string() + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

}  // namespace carico
