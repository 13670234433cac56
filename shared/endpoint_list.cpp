#include "shared/endpoint_list.hpp"

#include <algorithm>

namespace carico {
namespace {

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

endpoint_list failed(std::string why, std::string_view text) {
  endpoint_list l;
  l.error = std::move(why) + " in endpoint list '" + std::string(text) +
            "' (give TRANSPORT://ADDRESS, or several separated by commas)";
  return l;
}

}  // namespace

endpoint_list parse_endpoint_list(std::string_view text) {
  endpoint_list l;
  std::size_t item = 0;
  std::size_t from = 0;
  for (;;) {
    ++item;
    const std::size_t comma = text.find(',', from);
    const std::string_view raw =
        text.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from);
    const std::string_view e = trim(raw);
    const std::string number = std::to_string(item);
    if (e.empty()) return failed("item " + number + " is empty", text);
    if (std::any_of(e.begin(), e.end(), blank)) {
      return failed("item " + number + " ('" + std::string(e) + "') has blanks inside", text);
    }
    const std::size_t scheme = e.find("://");
    if (scheme == 0 || scheme == std::string_view::npos || scheme + 3 == e.size()) {
      return failed("item " + number + " ('" + std::string(e) + "') is not TRANSPORT://ADDRESS",
                    text);
    }
    if (std::find(l.endpoints.begin(), l.endpoints.end(), e) != l.endpoints.end()) {
      return failed("item " + number + " ('" + std::string(e) + "') is listed twice", text);
    }
    l.endpoints.emplace_back(e);
    if (comma == std::string_view::npos) break;
    from = comma + 1;
  }
  return l;
}

CLI::Option* add_connect_option(CLI::App& app, std::string& target,
                                const std::string& description) {
  CLI::Option* option = app.add_option_function<std::vector<std::string>>(
      "--connect",
      [&target](const std::vector<std::string>& items) {
        target.clear();
        for (const std::string& item : items) target += (target.empty() ? "" : ",") + item;
      },
      description);
  // One value per --connect: a subcommand or file name after it is not an endpoint.
  option->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  option->default_str(target);
  return option;
}

std::string describe_endpoints(const std::vector<std::string>& endpoints) {
  std::string text;
  for (const std::string& e : endpoints) {
    if (!text.empty()) text += ", ";
    text += e;
  }
  return text;
}

}  // namespace carico
