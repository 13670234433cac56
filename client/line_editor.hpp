// A line editor for the REPL on a terminal, on libedit's native API (histedit.h):
// emacs key bindings, history kept in a file, tab completion, and output printed
// above the line being typed (with an optional status line) without corrupting it.
//
// It never blocks: poll STDIN_FILENO and call read() when it is readable.
//
//   carico::line_editor ed("~/.carico_history", 1000, complete_fn);
//   ed.set_prompt("carico> ");
//   ed.start();                                    // draws the prompt
//   ... poll stdin ...  auto in = ed.read();       // in.kind == line: run it, then ed.start()
//   ed.print("200 request=1 ...\n");               // from anywhere on this thread
//   ed.set_status("sent 40/100  done 37 ...");     // drawn above the prompt
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

struct editline;
struct history;

namespace carico {

class line_editor {
 public:
  // Candidates for the word being completed: given the text before the cursor
  // and that word (the text after its last blank), whole replacement words.
  using completer = std::function<std::vector<std::string>(const std::string& before, const std::string& word)>;

  struct input {
    enum kind_t { none, line, eof } kind = none;  // nothing finished yet / a line / Ctrl-D on an empty line
    std::string text;                              // the line, without its newline
  };

  // history_path: the history file, read now and rewritten at every add ("" for none);
  // history_size: entries kept (the file stays bounded).
  line_editor(std::string history_path, int history_size, completer complete);
  ~line_editor();  // restores the terminal
  line_editor(const line_editor&) = delete;
  line_editor& operator=(const line_editor&) = delete;

  // The prompt for the next start().
  void set_prompt(std::string prompt);
  // Draws the prompt and starts editing a new line.
  void start();
  // Takes the bytes available on stdin. After a line or eof, editing stops until start().
  input read();
  // Writes text (whole lines) above the status line and the prompt, then redraws both
  // with the line being typed as it was. When not editing, writes text as is.
  void print(const std::string& text);
  // The line drawn just above the prompt while editing; "" for none. With
  // redraw false it shows at the next print() or redraw.
  void set_status(std::string status, bool redraw = true);
  // Ctrl-C at the prompt: drops the text typed so far and redraws an empty
  // line. False (and nothing done) when nothing was typed or not editing.
  bool clear_line();
  // Adds a line to the history (blank lines and repeats of the last are skipped).
  void add_history(const std::string& line);

 private:
  static const char* prompt_of(editline* el);
  static unsigned char on_eof_key(editline* el, int ch);
  static unsigned char on_tab(editline* el, int ch);
  unsigned char complete();
  // Moves to where the status line (or prompt) starts and clears to the end of the screen.
  void erase();
  // Draws the status line and the prompt with the current line.
  void redraw();

  editline* el_;                 // libedit's editor
  history* history_;             // libedit's history
  std::string history_path_;     // where history is saved; "" for nowhere
  completer complete_;           // the REPL's candidates
  std::string prompt_;           // as drawn
  std::string status_;           // the line above the prompt, "" for none
  std::string shown_status_;     // the status line on screen now ("" for none)
  bool editing_{false};          // the prompt is on screen and a line is being typed
  bool eof_{false};              // Ctrl-D on an empty line
};

}  // namespace carico
