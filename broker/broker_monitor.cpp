#include "broker/broker_monitor.hpp"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include "broker/broker.hpp"
#include "broker/journal.hpp"

namespace carico {
namespace {

constexpr std::size_t kept_events = 20;     // the dashboard's list
constexpr std::size_t latency_ring = 4096;  // durations kept for p50/p99
constexpr auto latency_window = std::chrono::seconds(60);
constexpr std::size_t history_points = 300;  // five minutes, one a second

double seconds_between(time_point from, time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::int64_t ms_from_to(time_point from, time_point to) {
  return std::chrono::duration_cast<milliseconds>(to - from).count();
}

// This process's resident memory, from /proc/self/statm; 0 when unreadable.
std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

broker_monitor::broker_monitor(milliseconds every)
    : every_(every.count() > 0 ? every : milliseconds(0)),
      next_publish_(every_.count() > 0 ? clock::now() : time_point::max()),
      publisher_(std::make_shared<snapshot_publisher>()),
      started_ms_(unix_ms()) {
  if (enabled()) samples_.reserve(latency_ring);
}

void broker_monitor::on_finished(const request& r, std::uint64_t code, time_point now) {
  if (!enabled() || r.target == nullptr) return;
  if (last_counts_ == nullptr || r.target->name != last_service_) {  // mostly the last one's
    auto it = counts_.find(r.target->name);
    if (it == counts_.end()) {
      const bool room = counts_.size() < max_counted_services;
      it = counts_.try_emplace(room ? r.target->name : std::string("_other")).first;
    }
    last_counts_ = &it->second;
    last_service_ = r.target->name;
  }
  service_counts& c = *last_counts_;
  auto found = std::find_if(c.codes.begin(), c.codes.end(),
                            [code](const auto& entry) { return entry.first == code; });
  if (found == c.codes.end()) {
    c.codes.emplace_back(code, 1);
  } else {
    ++found->second;
  }
  const double total = seconds_between(r.received_at, now);
  c.total.observe(total);
  // A request answered without a dispatch (expired waiting) was queued throughout.
  const time_point dispatched = r.dispatched_at == time_point{} ? now : r.dispatched_at;
  c.queued_time.observe(seconds_between(r.received_at, dispatched));
  c.worker_time.observe(seconds_between(dispatched, now));
  const finished_sample s{now, static_cast<float>(total)};
  if (samples_.size() < latency_ring) {
    samples_.push_back(s);
  } else {
    samples_[next_sample_] = s;
  }
  next_sample_ = (next_sample_ + 1) % latency_ring;
}

void broker_monitor::on_redispatch(std::uint64_t number, std::string_view worker,
                                   std::string_view service) {
  if (!enabled()) return;
  note("redispatch", "request " + std::to_string(number) + " (" + std::string(service) +
                         ") re-dispatched: worker " + std::string(worker) + " was lost");
}

void broker_monitor::on_expiry(std::uint64_t number, std::string_view service,
                               std::string_view why) {
  if (!enabled()) return;
  note("expiry", "request " + std::to_string(number) + " (" + std::string(service) +
                     ") answered 504: " + std::string(why));
}

void broker_monitor::on_refusal(std::string_view service, std::string_view reason) {
  if (!enabled()) return;
  note("refusal", "request for " + std::string(service.substr(0, 64)) +
                      " refused 503: " + std::string(reason.substr(0, 160)));
}

void broker_monitor::note(std::string_view kind, std::string text) {
  events_.push_back({unix_ms(), std::string(kind), std::move(text)});
  if (events_.size() > kept_events) events_.pop_front();
}

void broker_monitor::publish(const broker_view& view, time_point now) {
  if (!enabled()) return;
  next_publish_ = now + every_;
  const std::int64_t now_ms = unix_ms();
  sample_rates(view, now_ms, now);

  broker_snapshot out;
  out.sequence = ++sequence_;
  out.taken_ms = now_ms;
  out.started_ms = started_ms_;
  out.stopping = view.stopping;
  const broker_stats& s = view.stats;
  out.received = s.received;
  out.done = s.done;
  out.failed = s.failed;
  out.expired = s.expired;
  out.redispatched = s.redispatched;
  out.refused = s.refused;
  out.malformed = s.malformed;
  out.late_replies = s.late_replies;
  out.unread_dropped = s.unread_dropped;
  out.resends = s.resends;
  out.workers_joined = s.workers_joined;
  out.workers_lost = s.workers_lost;
  out.unanswered = view.in_memory;

  std::unordered_map<std::string, seen_state> states;
  auto add_counts = [](service_snapshot& o, const service_counts& c) {
    for (const auto& [code, n] : c.codes) o.codes[code] = n;
    o.total = c.total;
    o.queued_time = c.queued_time;
    o.worker_time = c.worker_time;
  };
  for (const auto& [name, svc] : view.services) {
    service_snapshot& o = out.services.emplace_back();
    o.name = name;
    o.queued = svc->queue.size() + svc->parked.size();
    out.unanswered += svc->parked.size();
    if (auto c = counts_.find(name); c != counts_.end()) add_counts(o, c->second);
    for (const known_worker* w : svc->ring.workers()) {
      worker_snapshot& ws = o.ring.emplace_back();
      ws.name = w->name;
      ws.state = std::string(state_name(w->load.state));
      ws.in_flight = w->in_flight.size();
      ws.capacity = w->info.capacity;
      ws.answered = w->answered;
      ws.pid = w->info.pid;
      ws.host = w->info.host;
      ws.rss_bytes = w->load.rss_bytes;
      ws.mem_percent = w->load.mem_percent;
      ws.cpu_percent = w->load.cpu_percent;
      ws.last_seen_ms = ms_from_to(w->last_seen, now);
      ws.uptime_ms = ms_from_to(w->joined_at, now);
      // Since when it is in this state, as the snapshots saw it.
      std::string key = name + '\0' + w->name;
      seen_state seen{ws.state, now_ms};
      if (auto before = states_.find(key);
          before != states_.end() && before->second.state == ws.state) {
        seen.since_ms = before->second.since_ms;
      }
      ws.state_since_ms = seen.since_ms;
      states.emplace(std::move(key), std::move(seen));
    }
  }
  states_ = std::move(states);  // workers gone are forgotten
  // Services the broker forgot (idle) keep their counters: a counter never
  // goes back unless the broker restarts.
  for (const auto& [name, c] : counts_) {
    if (view.services.count(name) != 0) continue;
    service_snapshot& o = out.services.emplace_back();
    o.name = name;
    o.active = false;
    add_counts(o, c);
  }
  std::sort(out.services.begin(), out.services.end(),
            [](const service_snapshot& a, const service_snapshot& b) { return a.name < b.name; });

  out.rss_bytes = resident_bytes();
  if (view.request_journal != nullptr) {
    out.journal_enabled = true;
    out.journal_path = view.request_journal->path();
    if (!view.request_journal->writable()) {
      out.journal_failing = true;
      out.journal_error = view.request_journal->health().error;
    }
    out.journal_bytes = view.request_journal->disk_bytes();
    out.journal_commit = view.request_journal->commit_latency();
  }
  out.history.assign(history_.begin(), history_.end());
  fill_latency(out, now);
  out.events.assign(events_.begin(), events_.end());
  publisher_->publish(std::make_shared<const broker_snapshot>(std::move(out)));
}

// One point a second: the requests finished since the last one.
void broker_monitor::sample_rates(const broker_view& view, std::int64_t now_ms, time_point now) {
  const broker_stats& s = view.stats;
  const std::uint64_t finished = s.done + s.failed + s.expired;
  if (next_rate_ == time_point{}) {  // the first publish starts the count
    finished_at_rate_ = finished;
    next_rate_ = now + std::chrono::seconds(1);
    return;
  }
  if (now < next_rate_) return;
  rate_point p;
  p.unix_ms = now_ms;
  p.finished = finished - finished_at_rate_;
  for (const auto& [name, svc] : view.services) p.queued += svc->queue.size() + svc->parked.size();
  history_.push_back(p);
  if (history_.size() > history_points) history_.pop_front();
  finished_at_rate_ = finished;
  // On the one-second grid; a stalled loop skips the seconds it missed.
  next_rate_ += std::chrono::seconds(1);
  if (next_rate_ <= now) next_rate_ = now + std::chrono::seconds(1);
}

void broker_monitor::fill_latency(broker_snapshot& out, time_point now) const {
  std::vector<float> recent;
  recent.reserve(samples_.size());
  for (const finished_sample& s : samples_) {
    if (now - s.at <= latency_window) recent.push_back(s.seconds);
  }
  out.latency_samples = recent.size();
  if (recent.empty()) return;
  // The nearest-rank percentile: the smallest value with at least p of them at or below.
  auto rank = [&](double p) {
    std::size_t k = static_cast<std::size_t>(p * static_cast<double>(recent.size()) + 0.999999);
    k = std::clamp<std::size_t>(k, 1, recent.size()) - 1;
    std::nth_element(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(k), recent.end());
    return static_cast<double>(recent[k]) * 1000.0;
  };
  out.p50_ms = rank(0.50);
  out.p99_ms = rank(0.99);
}

}  // namespace carico
