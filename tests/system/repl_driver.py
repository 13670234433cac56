#!/usr/bin/env python3
"""Drives carico-client's REPL through a pseudo-terminal, as a user would.

Usage: repl_driver.py TRANSCRIPT CLIENT ARGS...   (exit 0 when every step passed)
The steps are below; each waits (with a deadline) for what the user should see.
"""
import os
import pty
import re
import select
import sys
import time


transcript_path, argv = sys.argv[1], sys.argv[2:]
env = dict(os.environ, TERM="xterm", COLUMNS="160")
pid, fd = pty.fork()
if pid == 0:
    os.execve(argv[0], argv, env)

class Screen:
    """Just enough of a terminal to see what the user sees: text, CR/LF, backspace,
    cursor up (CSI n A), column (CSI n G), erase line (CSI K), erase below (CSI J).
    Lines scrolled off are kept: the screen is the whole session."""

    CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")

    def __init__(self):
        self.lines = [[]]
        self.row = 0
        self.col = 0
        self.pending = b""

    def feed(self, data):
        data = self.pending + data
        try:
            text = data.decode()
            self.pending = b""
        except UnicodeDecodeError as e:
            text = data[:e.start].decode()
            self.pending = data[e.start:]
        i = 0
        while i < len(text):
            m = self.CSI.match(text, i)
            if m:
                self.control(m.group(1), m.group(2))
                i = m.end()
                continue
            c = text[i]
            i += 1
            if c == "\r":
                self.col = 0
            elif c == "\n":
                self.row += 1
                if self.row == len(self.lines):
                    self.lines.append([])
            elif c == "\b":
                self.col = max(0, self.col - 1)
            elif c in "\x07\x1b":
                pass
            else:
                line = self.lines[self.row]
                while len(line) < self.col:
                    line.append(" ")
                if self.col < len(line):
                    line[self.col] = c
                else:
                    line.append(c)
                self.col += 1

    def control(self, args, op):
        n = int(args) if args.isdigit() else 1
        if op == "A":
            self.row = max(0, self.row - n)
        elif op == "G":
            self.col = n - 1
        elif op == "K":
            del self.lines[self.row][self.col:]
        elif op == "J":
            del self.lines[self.row][self.col:]
            del self.lines[self.row + 1:]

    def text(self, from_row=0):
        return "\n".join("".join(l) for l in self.lines[from_row:])


raw = b""          # everything the REPL wrote
screen = Screen()  # what it shows
mark = 0           # the screen row where the current step's output starts


def fail(message):
    with open(transcript_path, "wb") as f:
        f.write(raw)
    print("FAIL:", message, file=sys.stderr)
    print("--- screen since the step began:", file=sys.stderr)
    print(screen.text(mark)[-3000:], file=sys.stderr)
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    sys.exit(1)


def read_for(seconds):
    global raw
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            raw += chunk
            screen.feed(chunk)
    return True


def wait_for(pattern, seconds=10):
    """Reads until pattern (a regex on plain text since the step began) matches."""
    end = time.time() + seconds
    rx = re.compile(pattern, re.M)
    while time.time() < end:
        m = rx.search(screen.text(mark))
        if m:
            return m
        if not read_for(0.05) and not rx.search(screen.text(mark)):
            break
    fail("did not see /%s/ within %ss" % (pattern, seconds))


def step(keys):
    """Types keys; the step's output starts here."""
    global mark
    read_for(0.05)
    mark = screen.row
    os.write(fd, keys)


def replies_200():
    return len(re.findall(r"^200 request=\d+ worker=\S+", screen.text(mark), re.M))


wait_for(r"carico> $")

# send 5: five replies, then the summary
step(b"send 5\r")
wait_for(r"^batch 1: 5 documents in .*5 ok, 0 failed", 20)
wait_for(r"^  latency +p50 .* p99 ")
wait_for(r"^  workers +w\d+ \d+")
wait_for(r"carico> $")
if replies_200() != 5:
    fail("send 5 printed %d replies 200, expected 5" % replies_200())
# while it ran, the status line above the prompt named the broker the client is
# on, whole (it comes first: the line is cut at the terminal's width)
front = argv[argv.index("--connect") + 1]
named = re.findall(rb"\[batch 1 on (tcp://[0-9.:]*)\] sent \d+/5 ", raw)
if not named or not all(n.decode() == front for n in named):
    fail("the batch's status line does not name the broker %s: %r" % (front, named[:3]))

# FTP asks how many files, as the original did
step(b"FTP\r")
wait_for(r"how many files\? $")
step(b"3\r")
wait_for(r"^batch 2: 3 documents in .*3 ok, 0 failed", 20)
wait_for(r"carico> $")
if replies_200() != 3:
    fail("FTP 3 printed %d replies 200, expected 3" % replies_200())

# list shows the files
step(b"list\r")
wait_for(r"^hello\.json +\d+ B +Hello$")
wait_for(r"^\d+ documents in ")
wait_for(r"carico> $")

# workers: the ring as a table
step(b"workers\r")
wait_for(r"^broker tcp://\S+\n+NAME +STATE +IN FLIGHT +MEMORY +LAST HEARTBEAT")
wait_for(r"^w1 +ready +0 / 1 ")
wait_for(r"carico> $")

# a bad command: an error, a suggestion, and the REPL goes on
step(b"sned 2\r")
wait_for(r"unknown command 'sned'\. Did you mean 'send'\?")
wait_for(r"carico> $")

# bad numbers
for bad in (b"0", b"-4", b"2.5"):
    step(b"send " + bad + b"\r")
    wait_for(r"N must be a positive integer, not '%s'" % re.escape(bad.decode()))
    wait_for(r"carico> $")
step(b"FTP\r")
wait_for(r"how many files\? $")
step(b"many\r")
wait_for(r"N must be a positive integer, not 'many'")
wait_for(r"carico> $")

# tab completion of a command and of a file name
step(b"wor\t")
wait_for(r"carico> workers $")
step(b"\x15send hell\t")
wait_for(r"carico> send hello\.json $")
step(b"\r")
wait_for(r"^200 request=\d+ .*hello\.json$", 10)
wait_for(r"carico> $")

# help lists every command with an example, within 80 columns (the terminal
# here is 160 wide: help does not merely fit the terminal)
step(b"help\r")
for name in ("send N", "FTP", "list", "workers", "stats", "status N", "history [N]", "exit", "quit"):
    wait_for(r"^  %s .*e\.g\. " % re.escape(name))
wait_for(r"carico> $")
wide = [line for line in screen.text(mark).split("\n") if len(line) > 80]
if wide:
    fail("help is wider than 80 columns: %r" % wide[0])

# Ctrl-C at the prompt drops the text typed so far, as a shell does
step(b"send hel")
wait_for(r"carico> send hel$")
step(b"\x03")
wait_for(r"^carico> $")
step(b"list\r")
wait_for(r"^hello\.json +\d+ B +Hello$")
wait_for(r"carico> $")
if "unknown command" in screen.text(mark):
    fail("the text typed before Ctrl-C was kept: %r" % screen.text(mark)[:200])

# Ctrl-C during a batch stops it: nothing more is sent, the replies in flight
# still count, and the summary says it was stopped
step(b"send 100000\r")
wait_for(r"^batch \d+: sending 100000 documents to \S+ \(only failed replies shown; Ctrl-C stops\)")
step(b"\x03")
mark = max(0, mark - 2)  # printed above the prompt: where the status line was
m = wait_for(r"^stopping batch \d+: nothing more is sent, (\d+) replies still to come")
if not 0 < int(m.group(1)) <= 64:
    fail("%s replies in flight, expected 1 to the window of 64" % m.group(1))
m = wait_for(r"^batch \d+ \(stopped\): (\d+) documents? in .*: (\d+) ok, 0 failed", 20)
if not int(m.group(1)) < 100000 or m.group(1) != m.group(2):
    fail("the stopped batch answered %s documents, %s ok" % (m.group(1), m.group(2)))
wait_for(r"carico> $")

# still alive after all that: exit leaves with 0
step(b"exit\r")
read_for(0.5)
_, status = os.waitpid(pid, 0)
with open(transcript_path, "wb") as f:
    f.write(raw)
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    fail("exit left with status %r" % status)
print("PASS: REPL through a pty")
