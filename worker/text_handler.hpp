// The handler of the `text` service: parse the document, count its "a"s,
// simulate the original's slow work, store it durably, answer the result.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "worker/document_store.hpp"
#include "worker/worker.hpp"

namespace carico {

// work_us_per_char: simulated cost per character of content (0 for none).
// A document the store cannot write is answered 503 "not executed here: storage
// failed: ..." (the broker gives it to another worker), never 500.
// Each stored document gets one info line in log (none when null).
service_handler text_handler(std::shared_ptr<document_store> store, long work_us_per_char,
                             std::shared_ptr<spdlog::logger> log = nullptr);

// The worker's health check for the text service: "" when store can write,
// else why not (document_store::probe).
std::function<std::string()> storage_check(std::shared_ptr<document_store> store);

}  // namespace carico
