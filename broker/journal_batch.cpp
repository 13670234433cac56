#include "broker/journal_batch.hpp"

#include <algorithm>
#include <unordered_map>

namespace carico {

journal_batch fold_events(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                          std::int64_t hold_after_ms, std::vector<journal_event*>& held,
                          std::uint64_t& batch_max) {
  struct folded {
    journal_event* insert{nullptr};    // received or refused
    journal_event* dispatch{nullptr};  // the last dispatch
    journal_event* finish{nullptr};    // finished or refused
  };
  std::unordered_map<std::uint64_t, folded> rows;
  std::vector<std::uint64_t> order;
  rows.reserve(batch.size());
  batch_max = 0;
  for (journal_event& e : batch) {
    if (e.what == journal_event::kind::stop) continue;
    auto [it, fresh] = rows.try_emplace(e.row.number);
    if (fresh) order.push_back(e.row.number);
    folded& f = it->second;
    switch (e.what) {
      case journal_event::kind::received: f.insert = &e; break;
      case journal_event::kind::dispatched: f.dispatch = &e; break;
      case journal_event::kind::finished: f.finish = &e; break;
      case journal_event::kind::refused: f.insert = f.finish = &e; break;
      case journal_event::kind::stop: break;
    }
    batch_max = std::max(batch_max, e.row.number);
  }
  // A note carried from earlier batches joins its request's row when this
  // batch has news of it (a later dispatch replaces it); else it waits on
  // until hold_after_ms, then is written alone. Looked up, never added, so a
  // note waiting through many batches costs one lookup in each. Its time is
  // the wall clock's: one dated far ahead of hold_after_ms (the clock was set
  // back since) is written at once rather than held until the clock catches up.
  constexpr std::int64_t clock_set_back_ms = 60000;
  const auto lone_note_waits = [&](const journal_event& note) {
    return note.row.dispatched_ms > hold_after_ms &&
           note.row.dispatched_ms - hold_after_ms <= clock_set_back_ms;
  };
  for (journal_event& e : carried) {
    if (auto it = rows.find(e.row.number); it != rows.end()) {
      if (it->second.dispatch == nullptr) it->second.dispatch = &e;
    } else if (lone_note_waits(e)) {
      held.push_back(&e);
    } else {
      rows[e.row.number].dispatch = &e;
      order.push_back(e.row.number);
    }
  }
  std::erase_if(order, [&](std::uint64_t number) {
    const folded& f = rows[number];
    if (f.insert != nullptr || f.finish != nullptr || !lone_note_waits(*f.dispatch)) return false;
    held.push_back(f.dispatch);
    return true;
  });

  journal_batch out;
  out.rows.reserve(order.size());
  for (std::uint64_t number : order) {
    const folded& f = rows[number];
    row_write w;
    if (f.insert != nullptr) {
      w.what = row_write::kind::insert;
      const bool merges = f.dispatch != nullptr || (f.finish != nullptr && f.finish != f.insert);
      if (!merges) {
        w.source = &f.insert->row;  // the common case: no copy
      } else {
        journal_record& row = w.folded.emplace(f.insert->row);
        if (f.dispatch != nullptr) {
          row.state = request_state::dispatched;
          row.worker = f.dispatch->row.worker;
          row.attempts = f.dispatch->row.attempts;
          row.dispatched_ms = f.dispatch->row.dispatched_ms;
        }
        if (f.finish != nullptr && f.finish != f.insert) {
          const journal_record& done = f.finish->row;
          row.state = done.state;
          row.worker = done.worker;
          row.attempts = done.attempts;
          row.completed_ms = done.completed_ms;
          row.code = done.code;
          row.result = done.result;
        }
      }
      if (f.finish == nullptr) {
        w.request_head = f.insert->head;
        w.payload = std::string_view(f.insert->payload.data<char>(), f.insert->payload.size());
      }
    } else if (f.finish != nullptr) {
      w.what = row_write::kind::finish;
      w.source = &f.finish->row;
      if (f.dispatch != nullptr) w.dispatched_ms = f.dispatch->row.dispatched_ms;
    } else {
      w.what = row_write::kind::dispatch;
      w.source = &f.dispatch->row;
    }
    // An answered row keeps its reply when it can be asked for again.
    if (f.finish != nullptr && f.finish->reply_kept) {
      w.reply_head = f.finish->head;
      w.reply_body = f.finish->body;
    }
    out.rows.push_back(std::move(w));
  }
  return out;
}

}  // namespace carico
