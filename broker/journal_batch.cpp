#include "broker/journal_batch.hpp"

#include <algorithm>
#include <unordered_map>

namespace carico {

journal_batch fold_events(std::vector<journal_event>& carried, std::vector<journal_event>& batch,
                          bool hold, std::vector<journal_event*>& held, std::uint64_t& batch_max) {
  struct folded {
    journal_event* insert{nullptr};    // received or refused
    journal_event* dispatch{nullptr};  // the last dispatch
    journal_event* finish{nullptr};    // finished or refused
    bool was_carried{false};           // its dispatch note waited one batch already
  };
  std::unordered_map<std::uint64_t, folded> rows;
  std::vector<std::uint64_t> order;
  rows.reserve(carried.size() + batch.size());
  batch_max = 0;
  auto fold = [&](journal_event& e, bool from_carried) {
    if (e.what == journal_event::kind::stop) return;
    auto [it, fresh] = rows.try_emplace(e.row.number);
    if (fresh) order.push_back(e.row.number);
    folded& f = it->second;
    switch (e.what) {
      case journal_event::kind::received: f.insert = &e; break;
      case journal_event::kind::dispatched:
        f.dispatch = &e;
        f.was_carried = from_carried;
        break;
      case journal_event::kind::finished: f.finish = &e; break;
      case journal_event::kind::refused: f.insert = f.finish = &e; break;
      case journal_event::kind::stop: break;
    }
    batch_max = std::max(batch_max, e.row.number);
  };
  for (journal_event& e : carried) fold(e, true);
  for (journal_event& e : batch) fold(e, false);
  if (hold) {
    std::erase_if(order, [&](std::uint64_t number) {
      folded& f = rows[number];
      if (f.insert != nullptr || f.finish != nullptr || f.was_carried) return false;
      held.push_back(f.dispatch);
      return true;
    });
  }

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
      if (f.finish != nullptr) {
        w.reply_head = f.finish->head;
        w.reply_body = f.finish->body;
      } else {
        w.request_head = f.insert->head;
        w.payload = std::string_view(f.insert->payload.data<char>(), f.insert->payload.size());
      }
    } else if (f.finish != nullptr) {
      w.what = row_write::kind::finish;
      w.source = &f.finish->row;
      if (f.dispatch != nullptr) w.dispatched_ms = f.dispatch->row.dispatched_ms;
      w.reply_head = f.finish->head;
      w.reply_body = f.finish->body;
    } else {
      w.what = row_write::kind::dispatch;
      w.source = &f.dispatch->row;
    }
    out.rows.push_back(std::move(w));
  }
  return out;
}

}  // namespace carico
