// One group commit, as the writer hands it to a backend: the posted events
// folded into one write per request, plus the meta updates that go with them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "broker/journal_record.hpp"

namespace carico {

// One statement of a batch.
struct row_write {
  enum class kind : std::uint8_t {
    insert,    // a whole row (received or refused, maybe already answered)
    finish,    // an answered row: reply kept, request payload dropped
    dispatch,  // a row given to a worker
  };
  kind what{kind::insert};          // which statement
  const journal_record* source{nullptr};  // the event's row, when nothing was folded into it
  std::optional<journal_record> folded;   // else the row with later events folded in
  // insert: the row as folded; finish: the answer; dispatch: number, worker,
  // attempts, dispatched_ms.
  const journal_record& row() const { return folded ? *folded : *source; }
  std::int64_t dispatched_ms{0};    // finish: a dispatch folded in (0: none)
  std::string_view reply_head;      // insert/finish: reply header (empty while unanswered)
  std::string_view reply_body;      // insert/finish: reply frames, see encode_frames()
  std::string_view request_head;    // insert while unanswered: the request header
  std::string_view payload;         // insert while unanswered: the client's payload
};

// What one transaction writes.
struct journal_batch {
  std::vector<row_write> rows;   // in request order of first appearance
  std::uint64_t high_water{0};   // meta max_number := max(it, this); 0: unchanged
  std::uint64_t reserve{0};      // meta reserved_number := max(it, this); 0: unchanged
};

// Folds carried (dispatch notes held from earlier batches) and batch into one
// write per request: a request received, dispatched and answered within one
// batch is a single insert without payload, and a dispatch note joins the
// answer that follows it. A dispatch note of a request that saw nothing else,
// made after hold_after_ms (unix ms; INT64_MAX holds nothing), is left out
// and listed in held, to wait for its answer in a later batch. The events
// must outlive the result (it points into them). batch_max: the highest number.
journal_batch fold_events(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                          std::int64_t hold_after_ms, std::vector<journal_event*>& held,
                          std::uint64_t& batch_max);

}  // namespace carico
