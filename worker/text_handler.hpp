// The handler of the `text` service: parse the document, count its "a"s,
// simulate the original's slow work, store it durably, answer the result.
#pragma once

#include <memory>

#include "worker/document_store.hpp"
#include "worker/worker.hpp"

namespace carico {

// work_us_per_char: simulated cost per character of content (0 for none).
service_handler text_handler(std::shared_ptr<document_store> store, long work_us_per_char);

}  // namespace carico
