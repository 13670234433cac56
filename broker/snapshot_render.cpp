#include "broker/snapshot_render.hpp"

#include <string_view>

#include "broker/prometheus_text.hpp"

namespace carico {
namespace {

using labels = prometheus_text::labels;

void counter(prometheus_text& out, std::string_view name, std::string_view help,
             std::uint64_t value) {
  out.family(name, "counter", help);
  out.sample(name, {}, static_cast<double>(value));
}

void gauge(prometheus_text& out, std::string_view name, std::string_view help, double value) {
  out.family(name, "gauge", help);
  out.sample(name, {}, value);
}

nlohmann::json histogram_json(const duration_histogram& h) {
  nlohmann::json buckets = nlohmann::json::array();
  const auto counts = h.cumulative();
  for (std::size_t i = 0; i < h.bounds().size(); ++i) buckets.push_back({h.bounds()[i], counts[i]});
  return {{"count", h.count()}, {"sum_s", h.sum()}, {"le", buckets}};
}

}  // namespace

std::string metrics_text(const broker_snapshot& s) {
  prometheus_text out;
  // Requests, by service and the code of their final reply.
  out.family("carico_requests_total", "counter",
             "Requests accepted and answered, by service and the final reply's code (a worker's "
             "code, or 504 when expired). Refused and malformed ones are counted apart.");
  for (const service_snapshot& svc : s.services) {
    for (const auto& [code, n] : svc.codes) {
      const std::string text = std::to_string(code);
      out.sample("carico_requests_total", {{"service", svc.name}, {"code", text}},
                 static_cast<double>(n));
    }
  }
  counter(out, "carico_requests_received_total", "Requests accepted for a service.", s.received);
  counter(out, "carico_redispatches_total",
          "Requests given back to their queue because the worker holding them was lost.",
          s.redispatched);
  counter(out, "carico_expiries_total",
          "Requests answered 504: out of attempts, or their deadline passed while queued.",
          s.expired);
  counter(out, "carico_refusals_total",
          "Requests refused 503: queue full, client over its in-flight cap or the byte budget.",
          s.refused);
  counter(out, "carico_malformed_total", "Client messages answered 400 or 413.", s.malformed);
  counter(out, "carico_late_replies_total",
          "Worker replies dropped: already answered or not held by that worker.", s.late_replies);
  counter(out, "carico_replies_dropped_total",
          "Replies dropped because their client left --client-send-hwm replies unread.",
          s.unread_dropped);
  counter(out, "carico_resends_total",
          "Keyed requests seen again: attached to the running one or answered again.", s.resends);
  counter(out, "carico_workers_joined_total", "READY messages accepted.", s.workers_joined);
  counter(out, "carico_workers_lost_total", "Workers forgotten: left, dead or disconnected.",
          s.workers_lost);
  gauge(out, "carico_requests_unanswered", "Requests accepted and not yet answered.",
        static_cast<double>(s.unanswered));

  out.family("carico_queue_depth", "gauge", "Requests waiting for a worker, by service.");
  for (const service_snapshot& svc : s.services) {
    if (!svc.active) continue;  // forgotten: no queue to report
    out.sample("carico_queue_depth", {{"service", svc.name}}, static_cast<double>(svc.queued));
  }
  out.family("carico_workers", "gauge", "Workers in each service's ring, by state.");
  for (const service_snapshot& svc : s.services) {
    if (!svc.active) continue;
    for (std::string_view state : {"ready", "overload", "drain"}) {
      std::size_t n = 0;
      for (const worker_snapshot& w : svc.ring) n += w.state == state ? 1 : 0;
      out.sample("carico_workers", {{"service", svc.name}, {"state", state}},
                 static_cast<double>(n));
    }
  }
  struct per_worker {
    std::string_view name, help;
    double (*value)(const worker_snapshot&);
  };
  const per_worker worker_gauges[] = {
      {"carico_worker_in_flight", "Requests a worker holds now.",
       [](const worker_snapshot& w) { return static_cast<double>(w.in_flight); }},
      {"carico_worker_capacity", "Requests a worker may hold at once.",
       [](const worker_snapshot& w) { return static_cast<double>(w.capacity); }},
      {"carico_worker_resident_memory_bytes",
       "A worker's resident memory, from its last heartbeat.",
       [](const worker_snapshot& w) { return static_cast<double>(w.rss_bytes); }},
      {"carico_worker_last_seen_seconds", "Seconds since a worker's last message.",
       [](const worker_snapshot& w) { return static_cast<double>(w.last_seen_ms) / 1000.0; }},
  };
  for (const per_worker& g : worker_gauges) {
    out.family(g.name, "gauge", g.help);
    for (const service_snapshot& svc : s.services) {
      for (const worker_snapshot& w : svc.ring) {
        out.sample(g.name, {{"service", svc.name}, {"worker", w.name}}, g.value(w));
      }
    }
  }
  out.family("carico_worker_answered_total", "counter",
             "Replies a worker gave since it joined (any code).");
  for (const service_snapshot& svc : s.services) {
    for (const worker_snapshot& w : svc.ring) {
      out.sample("carico_worker_answered_total", {{"service", svc.name}, {"worker", w.name}},
                 static_cast<double>(w.answered));
    }
  }

  struct per_service_histogram {
    std::string_view name, help;
    const duration_histogram service_snapshot::*field;
  };
  const per_service_histogram histograms[] = {
      {"carico_request_duration_seconds",
       "Seconds from a request's arrival to its answer, by service.", &service_snapshot::total},
      {"carico_request_queued_seconds",
       "Seconds a request waited before its last dispatch, by service.",
       &service_snapshot::queued_time},
      {"carico_request_worker_seconds",
       "Seconds from a request's last dispatch to its answer, by service.",
       &service_snapshot::worker_time},
  };
  for (const per_service_histogram& h : histograms) {
    out.family(h.name, "histogram", h.help);
    for (const service_snapshot& svc : s.services) {
      out.histogram(h.name, {{"service", svc.name}}, svc.*h.field);
    }
  }

  if (s.journal_enabled) {
    out.family("carico_journal_commit_seconds", "histogram",
               "Seconds per journal write transaction (SQLite, group commit).");
    out.histogram("carico_journal_commit_seconds", {}, s.journal_commit);
    gauge(out, "carico_journal_size_bytes",
          "The journal file, its write-ahead log and shared-memory index, in bytes.",
          static_cast<double>(s.journal_bytes));
    gauge(out, "carico_journal_failing", "1 when the journal's last write failed, else 0.",
          s.journal_failing ? 1 : 0);
  }
  gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
        static_cast<double>(s.rss_bytes));
  gauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        static_cast<double>(s.started_ms) / 1000.0);
  return out.take();
}

nlohmann::json state_json(const broker_snapshot& s, std::int64_t now_ms) {
  nlohmann::json services = nlohmann::json::array();
  for (const service_snapshot& svc : s.services) {
    nlohmann::json ring = nlohmann::json::array();
    for (const worker_snapshot& w : svc.ring) {
      ring.push_back({{"name", w.name},
                      {"state", w.state},
                      {"state_since_ms", w.state_since_ms},
                      {"in_flight", w.in_flight},
                      {"capacity", w.capacity},
                      {"answered", w.answered},
                      {"pid", w.pid},
                      {"host", w.host},
                      {"rss_bytes", w.rss_bytes},
                      {"mem_percent", w.mem_percent},
                      {"cpu_percent", w.cpu_percent},
                      {"last_seen_ms", w.last_seen_ms},
                      {"uptime_ms", w.uptime_ms}});
    }
    nlohmann::json codes = nlohmann::json::object();
    for (const auto& [code, n] : svc.codes) codes[std::to_string(code)] = n;
    services.push_back({{"name", svc.name},
                        {"active", svc.active},
                        {"queued", svc.queued},
                        {"ring", ring},
                        {"codes", codes},
                        {"duration", histogram_json(svc.total)}});
  }
  nlohmann::json history = nlohmann::json::array();
  for (const rate_point& p : s.history) {
    history.push_back({{"t", p.unix_ms}, {"finished", p.finished}, {"queued", p.queued}});
  }
  // req/s: the mean over the last ten points (seconds).
  double rate = 0;
  std::size_t points = 0;
  for (auto p = s.history.rbegin(); p != s.history.rend() && points < 10; ++p, ++points) {
    rate += static_cast<double>(p->finished);
  }
  if (points > 0) rate /= static_cast<double>(points);
  nlohmann::json events = nlohmann::json::array();
  for (const broker_event& e : s.events) {
    events.push_back({{"t", e.unix_ms}, {"kind", e.kind}, {"text", e.text}});
  }
  std::uint64_t queued = 0;
  for (const service_snapshot& svc : s.services) queued += svc.queued;
  const std::string problem = health_problem(&s, now_ms, 1 << 30);
  nlohmann::json out = {{"sequence", s.sequence},
                        {"taken_ms", s.taken_ms},
                        {"age_ms", now_ms - s.taken_ms},
                        {"started_ms", s.started_ms},
                        {"uptime_ms", s.taken_ms - s.started_ms},
                        {"health", {{"ok", problem.empty()}, {"reason", problem}}},
                        {"totals",
                         {{"received", s.received},
                          {"done", s.done},
                          {"failed", s.failed},
                          {"expired", s.expired},
                          {"redispatched", s.redispatched},
                          {"refused", s.refused},
                          {"malformed", s.malformed},
                          {"late_replies", s.late_replies},
                          {"unread_dropped", s.unread_dropped},
                          {"resends", s.resends},
                          {"workers_joined", s.workers_joined},
                          {"workers_lost", s.workers_lost}}},
                        {"unanswered", s.unanswered},
                        {"queued", queued},
                        {"rate_per_s", rate},
                        {"latency",
                         {{"window_s", 60},
                          {"samples", s.latency_samples},
                          {"p50_ms", s.p50_ms},
                          {"p99_ms", s.p99_ms}}},
                        {"rss_bytes", s.rss_bytes},
                        {"journal",
                         {{"enabled", s.journal_enabled},
                          {"failing", s.journal_failing},
                          {"path", s.journal_path},
                          {"size_bytes", s.journal_bytes},
                          {"commits", s.journal_commit.count()}}},
                        {"services", services},
                        {"history", history},
                        {"events", events}};
  return out;
}

std::string health_problem(const broker_snapshot* s, std::int64_t now_ms, std::int64_t stale_ms) {
  if (s == nullptr) return "starting: the broker has not published its state yet";
  if (s->stopping) return "shutting down";
  if (s->journal_enabled && s->journal_failing) {
    return "journal unavailable: the last write to " + s->journal_path + " failed" +
           (s->journal_error.empty() ? std::string() : ": " + s->journal_error);
  }
  if (now_ms - s->taken_ms > stale_ms) {
    return "the broker's loop has not published its state for " +
           std::to_string(now_ms - s->taken_ms) + " ms";
  }
  return {};
}

}  // namespace carico
