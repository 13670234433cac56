#include "broker/prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace carico {

namespace {

// The length of the valid UTF-8 sequence at text[i], 0 when it is not one.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned min = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  unsigned code = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

// Label values must be UTF-8: a service or worker name is whatever a peer
// sent, so a byte that is not part of valid UTF-8 becomes '?'.
std::string prometheus_text::escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size();) {
    const std::size_t n = utf8_length(value, i);
    if (n == 0) {
      out += '?';
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(value.substr(i, n));
      i += n;
      continue;
    }
    const char c = value[i++];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string prometheus_text::escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string prometheus_text::format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto [end, error] = std::to_chars(buf, buf + sizeof buf, value);
  if (error != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

void prometheus_text::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void prometheus_text::write_labels(const labels& with, std::string_view le) {
  if (with.empty() && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [key, value] : with) {
    if (!first) out_ += ',';
    first = false;
    out_ += key;
    out_ += "=\"";
    out_ += escape_label_value(value);
    out_ += '"';
  }
  if (!le.empty()) {
    if (!first) out_ += ',';
    out_ += "le=\"";
    out_ += le;
    out_ += '"';
  }
  out_ += '}';
}

void prometheus_text::sample(std::string_view name, const labels& with, double value) {
  out_ += name;
  write_labels(with);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void prometheus_text::histogram(std::string_view name, const labels& with,
                                const duration_histogram& h) {
  const std::vector<std::uint64_t> counts = h.cumulative();
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const std::string le = i < h.bounds().size() ? format_value(h.bounds()[i]) : "+Inf";
    out_ += bucket;
    write_labels(with, le);
    out_ += ' ';
    out_ += std::to_string(counts[i]);
    out_ += '\n';
  }
  sample(std::string(name) + "_sum", with, h.sum());
  out_ += name;
  out_ += "_count";
  write_labels(with);
  out_ += ' ';
  out_ += std::to_string(h.count());
  out_ += '\n';
}

}  // namespace carico
