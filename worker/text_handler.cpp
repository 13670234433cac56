#include "worker/text_handler.hpp"

#include <thread>

#include "worker/text_service.hpp"

namespace carico {
namespace {

// Sleeps for the simulated cost in short slices, so an abrupt stop is not delayed.
void simulate_work(std::chrono::microseconds cost, const std::atomic<bool>* cancel) {
  const time_point until = clock::now() + cost;
  while (clock::now() < until && !(cancel && cancel->load())) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - clock::now());
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(left, milliseconds(10)));
  }
}

// `get`: the document stored for request `of`, byte for byte, as the body.
// The broker asks only the worker its journal says stored it, so a file
// that is not here is gone (500), as is one unreadable or damaged.
job_result fetch_document(const document_store& store, std::uint64_t of) {
  job_result r;
  const std::string n = std::to_string(of);
  try {
    const std::optional<std::string> name = store.find(of);
    std::optional<std::string> bytes = name ? store.read(*name) : std::nullopt;
    if (!bytes) {
      r.code = code::worker_failed;
      r.error = "the stored document of request " + n + " is gone: no " + n + "-*.json in " +
                store.dir().string();
      return r;
    }
    if (decoded<document> doc = parse_document(*bytes); !doc) {
      r.code = code::worker_failed;
      r.error = "stored file " + *name + " is damaged: " + doc.error;
      return r;
    }
    r.result = {{"stored_as", *name}, {"bytes", bytes->size()}};
    r.body.emplace_back(bytes->data(), bytes->size());
  } catch (const std::exception& e) {
    r.code = code::worker_failed;
    r.error = "stored document of request " + n + " cannot be read: " + e.what();
  }
  return r;
}

}  // namespace

service_handler text_handler(std::shared_ptr<document_store> store, long work_us_per_char,
                             std::shared_ptr<spdlog::logger> log) {
  return [store = std::move(store), work_us_per_char, log = std::move(log)](job& j) {
    if (const msgpack::object* get = j.head().find("get")) {
      if (get->type != msgpack::type::POSITIVE_INTEGER) {
        job_result bad;
        bad.code = code::bad_request;
        bad.error = "get needs a request number";
        return bad;
      }
      return fetch_document(*store, get->via.u64);
    }
    job_result r;
    const std::string_view payload(static_cast<const char*>(j.payload.data()), j.payload.size());
    decoded<document> doc = parse_document(payload);
    if (!doc) {
      r.code = payload.size() > max_document_bytes ? code::too_large : code::bad_request;
      r.error = doc.error;
      return r;
    }
    const std::uint64_t count = count_a(doc->content);
    if (work_us_per_char > 0) {
      simulate_work(std::chrono::microseconds(work_us_per_char *
                                              static_cast<long>(count_chars(doc->content))),
                    j.cancel);
    }
    if (j.cancel && j.cancel->load()) throw std::runtime_error("worker stopped");
    if (!j.more.empty()) {
      r.code = code::bad_request;
      r.error = "text takes one body frame, not " + std::to_string(j.more.size() + 1);
      return r;
    }
    // Numbered by the broker, a document is stored under its request number;
    // from a stock broker, which numbers nothing, under the worker's own key.
    std::string stored_as;
    try {
      stored_as = j.local_key.empty() ? store->store(j.request, doc->title, payload)
                                      : store->store(j.local_key, doc->title, payload);
    } catch (const std::runtime_error& e) {
      // Not this document's fault: 503 "not executed here" (another worker
      // gets it), and the worker leaves the ring until its store works.
      r.code = code::queue_full;
      r.error = std::string("not executed here: storage failed: ") + e.what();
      return r;
    }
    // The title is the user's text: the logger escapes it (escaping_formatter).
    if (log) {
      log->info("request {} stored as {} title={} bytes={} count_a={}",
                j.local_key.empty() ? std::to_string(j.request) : j.local_key, stored_as,
                doc->title, payload.size(), count);
    }
    r.result = {{"title", doc->title},
                {"stored_as", stored_as},
                {"bytes", payload.size()},
                {"count_a", count}};
    return r;
  };
}

std::function<std::string()> storage_check(std::shared_ptr<document_store> store) {
  return [store = std::move(store)] { return store->probe(); };
}

}  // namespace carico
