// Writes Prometheus' text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): one family
// at a time, HELP and TYPE first, then its samples.
//
//   prometheus_text out;
//   out.family("carico_requests_total", "counter", "Requests answered.");
//   out.sample("carico_requests_total", {{"service", "text"}, {"code", "200"}}, 42);
//   out.histogram("carico_request_duration_seconds", {{"service", "text"}}, h);
//   std::string body = out.take();
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/duration_histogram.hpp"

namespace carico {

class prometheus_text {
 public:
  using labels = std::vector<std::pair<std::string_view, std::string_view>>;

  // The "# HELP" and "# TYPE" lines of a family (type: counter, gauge, histogram).
  void family(std::string_view name, std::string_view type, std::string_view help);
  // name{labels} value
  void sample(std::string_view name, const labels& with, double value);
  // name_bucket{labels,le="..."} (cumulative, +Inf last), name_sum, name_count.
  void histogram(std::string_view name, const labels& with, const duration_histogram& h);

  // The text so far; the writer is empty afterwards.
  std::string take() { return std::move(out_); }

  // A label value with \, " and newline escaped as the format wants.
  static std::string escape_label_value(std::string_view value);
  // HELP text with \ and newline escaped.
  static std::string escape_help(std::string_view text);
  // A sample value: shortest round-trip decimal, or +Inf, -Inf, NaN.
  static std::string format_value(double value);

 private:
  void write_labels(const labels& with, std::string_view le = {});

  std::string out_;  // the exposition being written
};

}  // namespace carico
