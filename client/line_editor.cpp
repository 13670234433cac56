#include "client/line_editor.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include <histedit.h>

namespace carico {
namespace {

line_editor* owner_of(EditLine* el) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  return static_cast<line_editor*>(data);
}

// Terminal columns; 80 when unknown.
std::size_t columns() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

// Display width of UTF-8 text, one column per code point.
std::size_t width_of(const char* begin, const char* end) {
  std::size_t n = 0;
  for (const char* p = begin; p < end; ++p) {
    if ((static_cast<unsigned char>(*p) & 0xC0) != 0x80) ++n;
  }
  return n;
}

void write_all(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

line_editor::line_editor(std::string history_path, int history_size, completer complete)
    : history_path_(std::move(history_path)), complete_(std::move(complete)) {
  el_ = el_init("carico", stdin, stdout, stderr);
  history_ = history_init();
  HistEvent ev;
  history(history_, &ev, H_SETSIZE, std::max(history_size, 1));
  history(history_, &ev, H_SETUNIQUE, 1);
  if (!history_path_.empty()) history(history_, &ev, H_LOAD, history_path_.c_str());
  el_set(el_, EL_CLIENTDATA, this);
  el_set(el_, EL_EDITOR, "emacs");
  el_set(el_, EL_PROMPT, &line_editor::prompt_of);
  el_set(el_, EL_HIST, ::history, history_);
  el_source(el_, nullptr);  // ~/.editrc, when the user has one
  // Ctrl-D ends the session on an empty line and deletes forward otherwise.
  el_set(el_, EL_ADDFN, "carico-eof", "end of input on an empty line", &line_editor::on_eof_key);
  el_set(el_, EL_BIND, "^D", "carico-eof", nullptr);
  el_set(el_, EL_ADDFN, "carico-complete", "complete a command or a file name", &line_editor::on_tab);
  el_set(el_, EL_BIND, "^I", "carico-complete", nullptr);
}

line_editor::~line_editor() {
  if (editing_) el_set(el_, EL_UNBUFFERED, 0);  // back to cooked mode
  el_end(el_);
  history_end(history_);
}

void line_editor::set_prompt(std::string prompt) { prompt_ = std::move(prompt); }

const char* line_editor::prompt_of(EditLine* el) { return owner_of(el)->prompt_.c_str(); }

void line_editor::start() {
  eof_ = false;
  shown_status_ = status_;
  if (!status_.empty()) {
    write_all(status_ + "\n");
    std::fflush(stdout);
  }
  // Leaving and re-entering unbuffered mode resets the line and draws the prompt.
  el_set(el_, EL_UNBUFFERED, 0);
  el_set(el_, EL_UNBUFFERED, 1);
  editing_ = true;
}

line_editor::input line_editor::read() {
  input in;
  if (!editing_) return in;
  int count = 0;
  const char* text = el_gets(el_, &count);
  if (eof_) {
    in.kind = input::eof;
  } else if (text != nullptr && count > 0 && (text[count - 1] == '\n' || text[count - 1] == '\r')) {
    in.kind = input::line;
    in.text.assign(text, static_cast<std::size_t>(count - 1));
  } else {
    return in;
  }
  editing_ = false;
  el_set(el_, EL_UNBUFFERED, 0);
  return in;
}

unsigned char line_editor::on_eof_key(EditLine* el, int) {
  const LineInfo* li = el_line(el);
  if (li->lastchar == li->buffer) {
    owner_of(el)->eof_ = true;
    return CC_EOF;
  }
  if (li->cursor < li->lastchar) {
    el_cursor(el, 1);
    el_deletestr(el, 1);
    return CC_REFRESH;
  }
  return CC_ERROR;
}

unsigned char line_editor::on_tab(EditLine* el, int) { return owner_of(el)->complete(); }

unsigned char line_editor::complete() {
  const LineInfo* li = el_line(el_);
  const std::string before(li->buffer, li->cursor);
  const std::size_t blank = before.find_last_of(" \t");
  const std::string word = blank == std::string::npos ? before : before.substr(blank + 1);
  std::vector<std::string> found;
  for (std::string& c : complete_(before, word)) {
    if (c.compare(0, word.size(), word) == 0) found.push_back(std::move(c));
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  if (found.empty()) return CC_ERROR;  // a bell
  std::string common = found.front();
  for (const std::string& c : found) {
    std::size_t n = 0;
    while (n < common.size() && n < c.size() && common[n] == c[n]) ++n;
    common.resize(n);
  }
  std::string insert = common.substr(word.size());
  if (found.size() == 1 && !common.empty() && common.back() != '/') insert += ' ';
  if (!insert.empty()) {
    el_insertstr(el_, insert.c_str());
    return CC_REFRESH;
  }
  // Ambiguous and nothing more in common: list the candidates below the line.
  std::size_t widest = 0;
  for (const std::string& c : found) widest = std::max(widest, width_of(c.data(), c.data() + c.size()));
  const std::size_t per_row = std::max<std::size_t>(1, columns() / (widest + 2));
  std::string list = "\n";
  for (std::size_t i = 0; i < found.size(); ++i) {
    list += found[i];
    if ((i + 1) % per_row == 0 || i + 1 == found.size()) {
      list += '\n';
    } else {
      list += std::string(widest + 2 - width_of(found[i].data(), found[i].data() + found[i].size()), ' ');
    }
  }
  write_all(list);
  shown_status_ = status_;
  if (!status_.empty()) write_all(status_ + "\n");
  return CC_REDISPLAY;
}

void line_editor::erase() {
  const LineInfo* li = el_line(el_);
  const std::size_t cols = columns();
  const std::size_t cursor_col = width_of(prompt_.data(), prompt_.data() + prompt_.size()) +
                                 width_of(li->buffer, li->cursor);
  std::size_t up = cursor_col / cols + (shown_status_.empty() ? 0 : 1);
  std::string seq = "\r";
  if (up > 0) seq += "\033[" + std::to_string(up) + "A";
  seq += "\033[J";
  write_all(seq);
}

void line_editor::redraw() {
  shown_status_ = status_;
  if (!status_.empty()) write_all(status_ + "\n");
  std::fflush(stdout);
  el_set(el_, EL_REFRESH);
}

void line_editor::print(const std::string& text) {
  if (!editing_) {
    write_all(text);
    std::fflush(stdout);
    return;
  }
  erase();
  write_all(text);
  redraw();
}

void line_editor::set_status(std::string status, bool redraw_now) {
  // One terminal row: a longer status would wrap and break erase().
  const std::size_t cols = columns();
  if (status.size() >= cols) status.resize(cols - 1);
  if (status == status_) return;
  status_ = std::move(status);
  if (!editing_ || !redraw_now) return;
  erase();
  redraw();
}

bool line_editor::clear_line() {
  if (!editing_) return false;
  const LineInfo* li = el_line(el_);
  if (li->lastchar == li->buffer) return false;
  erase();  // what is on screen, before the buffer changes
  el_cursor(el_, static_cast<int>(li->lastchar - li->cursor));  // to the end
  li = el_line(el_);
  el_deletestr(el_, static_cast<int>(li->cursor - li->buffer));
  redraw();
  return true;
}

void line_editor::add_history(const std::string& line) {
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  HistEvent ev;
  history(history_, &ev, H_ENTER, line.c_str());
  if (!history_path_.empty()) history(history_, &ev, H_SAVE, history_path_.c_str());
}

}  // namespace carico
