// The text service's pure parts: documents, counting, safe names, durable store.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "worker/document_store.hpp"
#include "worker/text_handler.hpp"
#include "worker/text_service.hpp"

namespace fs = std::filesystem;
using namespace carico;

namespace {

fs::path temp_dir(const std::string& tag) {
  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("carico-test-" + tag + "-" + std::to_string(rd()));
  fs::remove_all(dir);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return false;
  if (name.find("..") != std::string::npos) return false;
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("parse_document accepts English and Italian keys") {
  auto en = parse_document(R"({"title": "Report", "content": "banana"})");
  REQUIRE(en);
  CHECK(en->title == "Report");
  CHECK(en->content == "banana");
  auto it = parse_document(R"({"titolo": "Relazione", "contenuto": "casa", "extra": 1})");
  REQUIRE(it);
  CHECK(it->title == "Relazione");
  CHECK(it->content == "casa");
}

TEST_CASE("parse_document rejects what is not a document") {
  const char* bad[] = {
      "",                                        // empty
      "not json",                                // garbage
      "[1, 2, 3]",                               // not an object
      "\"text\"",                                // a string
      R"({"titolo": "x"})",                      // no content
      R"({"contenuto": "x"})",                   // no title
      R"({"title": 5, "content": "x"})",         // title not a string
      R"({"title": "x", "content": ["a"]})",     // content not a string
      R"({"title": "x", "content": "y"} trailing)",
  };
  for (const char* payload : bad) {
    INFO(payload);
    auto doc = parse_document(payload);
    CHECK_FALSE(doc);
    CHECK_FALSE(doc.error.empty());
  }
  SECTION("nesting is bounded") {
    std::string deep = R"({"title": "x", "content": "y", "z": )" + std::string(10000, '[') +
                       std::string(10000, ']') + "}";
    auto doc = parse_document(deep);
    CHECK_FALSE(doc);
    CHECK(doc.error.find("deeper") != std::string::npos);
  }
}

TEST_CASE("count_a counts a and A only") {
  CHECK(count_a("") == 0);
  CHECK(count_a("banana") == 3);
  CHECK(count_a("AaBbàá") == 2);  // accented letters are not 'a'
  CHECK(count_a(std::string(1000, 'a')) == 1000);
  CHECK(count_chars("città") == 5);
}

TEST_CASE("safe_file_name keeps titles inside the storage directory") {
  CHECK(safe_file_name(17, "Relazione") == "17-Relazione.json");
  CHECK(safe_file_name(3, "") == "3-untitled.json");
  CHECK(safe_file_name(4, "Città di Pisa") == "4-Città_di_Pisa.json");
  const std::string hostile[] = {
      "../../etc/passwd", "..", ".", "/", "a/b\\c", std::string("nul\0byte", 8), "tab\there",
      "new\nline", "\x7f", "\xff\xfe invalid utf8", "\xc0\xaf overlong", ".hidden", "...",
      std::string(1000, 'x'), std::string(300, '/'), "\xe2\x82", "\xc2\x85 C1 control",
  };
  for (const std::string& title : hostile) {
    const std::string name = safe_file_name(123456789, title);
    INFO(name);
    CHECK(valid_name(name));
    CHECK(name.rfind("123456789-", 0) == 0);
    CHECK(name.size() >= 5);
    CHECK(name.substr(name.size() - 5) == ".json");
  }
  SECTION("long multi-byte titles are cut on a character boundary") {
    std::string title;
    for (int i = 0; i < 200; ++i) title += "è";
    const std::string name = safe_file_name(1, title);
    CHECK(name.size() <= 255);
    const std::string body = name.substr(2, name.size() - 7);
    CHECK(body.size() % 2 == 0);  // whole two-byte characters only
  }
}

TEST_CASE("document_store writes durably and atomically") {
  const fs::path dir = temp_dir("store");
  SECTION("a stored document has its exact bytes under the safe name") {
    document_store store(dir, false);
    const std::string name = store.store(7, "../escape", R"({"titolo":"../escape"})");
    CHECK(name == "7-_._escape.json");
    CHECK(fs::exists(dir / name));
    CHECK(read_file(dir / name) == R"({"titolo":"../escape"})");
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  }
  SECTION("storing the same request again replaces its file") {
    document_store store(dir, false);
    store.store(9, "t", "first");
    store.store(9, "t", "second");
    CHECK(read_file(dir / "9-t.json") == "second");
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  }
  SECTION("a crash mid-write leaves no partial document") {
    fs::create_directories(dir);
    // What a writer that died mid-write leaves (no process has that pid).
    std::ofstream(dir / ".tmp-99999999-0") << "{\"titolo\": \"half";
    // A writer still alive (our parent) sharing the directory keeps its file.
    const std::string live = ".tmp-" + std::to_string(::getppid()) + "-0";
    std::ofstream(dir / live) << "{\"titolo\": \"in progress";
    std::ofstream(dir / "1-kept.json") << "{}";
    document_store store(dir, false);
    CHECK_FALSE(fs::exists(dir / ".tmp-99999999-0"));
    CHECK(fs::exists(dir / live));
    CHECK(fs::exists(dir / "1-kept.json"));
  }
  SECTION("--clean empties the directory, and only then") {
    fs::create_directories(dir);
    std::ofstream(dir / "old.json") << "{}";
    { document_store keep(dir, false); }
    CHECK(fs::exists(dir / "old.json"));
    document_store clean(dir, true);
    CHECK_FALSE(fs::exists(dir / "old.json"));
  }
  SECTION("an unusable directory is a clear error from probe() and store(), not a crash") {
    fs::create_directories(dir);
    std::ofstream(dir / "file") << "x";
    auto store = std::make_shared<document_store>(dir / "file", false);
    CHECK_THAT(store->probe(), Catch::Contains("cannot create storage directory") &&
                                   Catch::Contains("file"));
    CHECK_THROWS_AS(store->store(1, "t", "{}"), std::runtime_error);
    // The text service answers 503 "not executed here", never 500: the broker
    // gives the request to another worker.
    job j;
    j.request = 4;
    const std::string doc = R"({"title": "t", "content": "a"})";
    j.payload = zmq::message_t(doc.data(), doc.size());
    job_result r = text_handler(store, 0)(j);
    CHECK(r.code == 503);
    CHECK_THAT(r.error, Catch::StartsWith("not executed here: storage failed: cannot create"));
    // Fixed (the file made way for a directory): the probe passes, and leaves nothing.
    fs::remove(dir / "file");
    CHECK(store->probe() == "");
    CHECK(fs::is_empty(dir / "file"));
    CHECK(text_handler(store, 0)(j).code == 200);
  }
  fs::remove_all(dir);
}

TEST_CASE("document_store finds a request's file, and text serves it to `get`") {
  const fs::path dir = temp_dir("fetch");
  auto store = std::make_shared<document_store>(dir, false);
  const std::string doc = "{\"title\":\"Citt\xc3\xa0\",\"content\":\"a\"}";
  const std::string name = store->store(17, "Citt\xc3\xa0", doc);
  store->store(170, "other", R"({"title":"other","content":""})");
  auto get = [&](std::uint64_t n) {
    job j;
    header h;
    h.set("get", n);
    j.decoded_head = std::move(h);
    return text_handler(store, 0)(j);
  };
  SECTION("lookup by request number, never by a longer number's prefix") {
    CHECK(store->find(17) == name);
    CHECK(store->find(1) == std::nullopt);
    CHECK(store->find(18) == std::nullopt);
    CHECK(store->read(name) == doc);
    CHECK(store->read("9-gone.json") == std::nullopt);
  }
  SECTION("the stored bytes exactly, as the body") {
    job_result r = get(17);
    REQUIRE(r.code == code::ok);
    REQUIRE(r.body.size() == 1);
    CHECK(r.body[0].to_string() == doc);
    CHECK(r.result["stored_as"] == name);
    CHECK(r.result["bytes"] == doc.size());
  }
  SECTION("a file not (or no longer) here: 500, gone") {
    job_result r = get(18);
    CHECK(r.code == code::worker_failed);
    CHECK_THAT(r.error, Catch::Contains("is gone"));
    CHECK(r.body.empty());
  }
  SECTION("a damaged file: 500 that says so") {
    std::ofstream(dir / name, std::ios::trunc) << "{\"title\": \"Citt";
    job_result r = get(17);
    CHECK(r.code == code::worker_failed);
    CHECK_THAT(r.error, Catch::Contains("damaged"));
    CHECK(r.body.empty());
  }
  fs::remove_all(dir);
}
