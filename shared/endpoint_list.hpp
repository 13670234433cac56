// The `--connect` list of clients and workers: one endpoint, or several
// separated by commas, one per broker that may be the active one.
//
//   carico::endpoint_list l = carico::parse_endpoint_list("tcp://a:5555, tcp://b:5555");
//   if (!l) fail(l.error);      // "empty item 2 in --connect list ..."
//   for (const std::string& e : l.endpoints) socket.connect(e);
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace carico {

struct endpoint_list {
  std::vector<std::string> endpoints;  // in the order given, each once; empty on error
  std::string error;                   // why the text is not a list; empty when it is

  explicit operator bool() const { return error.empty(); }
};

// Splits text at commas. Blanks around an item are dropped ("a, b" is two
// endpoints); an empty item, blanks inside one, an item that is not
// TRANSPORT://ADDRESS, or the same endpoint twice is an error that names it.
endpoint_list parse_endpoint_list(std::string_view text);

// Adds --connect to app, into target (whose value is the default shown). The
// value is a list as above; a config file may also give a TOML array, and the
// flag may be repeated: the items are joined with commas, each item kept as
// written (so "a,,b" still reaches parse_endpoint_list and its error).
CLI::Option* add_connect_option(CLI::App& app, std::string& target, const std::string& description);

// "a" for one endpoint, "a, b" for more: for messages.
std::string describe_endpoints(const std::vector<std::string>& endpoints);

}  // namespace carico
