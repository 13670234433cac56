// `carico-broker journal`: the journal's rows as an aligned table or JSON lines.
//
//   std::vector<carico::journal_record> rows = carico::read_journal_history(path, 20, {});
//   std::cout << carico::format_journal_table(rows);
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "broker/journal.hpp"

namespace carico {

// One line per row, newest first, columns aligned; a header line first.
std::string format_journal_table(const std::vector<journal_record>& rows);

// Prints the newest `last` rows of the journal at path (of one state when
// state is not empty) to out; errors go to err. Returns the exit code.
int print_journal(const std::string& path, std::size_t last, const std::string& state, bool json,
                  std::ostream& out, std::ostream& err);

}  // namespace carico
