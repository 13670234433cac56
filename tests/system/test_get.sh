#!/usr/bin/env bash
# `get`: 3 workers with separate stores; 12 documents sent (the 1 MiB one and a
# non-ASCII title among them), each fetched back with `carico-client get N
# --out F` and compared byte for byte; an unknown request is a 404 and a
# non-zero exit; a damaged or deleted stored file is a 500 that says so; the REPL's `get N FILE` (with completion of N) and `stored`
# through a pty; the holder killed: 503 naming it within 5 s, --out untouched;
# with --curve, another client's key gets 404.
source "$(dirname "$0")/lib.sh"

docs=(abracadabra banana-bread citta-con-accenti grande-1mib haiku hello inferno-canto-1
      la-nebbia lettera pasta-alla-norma proverbi una-riga)
paths=()
for d in "${docs[@]}"; do paths+=("$CARICO_SOURCE/files/$d.json"); done

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer.log"
start_text_workers 3

"$CLIENT" --connect "$front" --json send --window 1 "${paths[@]}" >"$WORK/sent.jsonl" ||
  fail "carico-client send exited non-zero"
# "REQUEST WORKER FILE" per document sent.
python3 - "$WORK/sent.jsonl" >"$WORK/sent.txt" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["code"] == 200, r
    print(r["request"], r["worker"], r["file"])
PY
[ "$(wc -l <"$WORK/sent.txt")" -eq 12 ] || fail "expected 12 documents sent"
for i in 1 2 3; do
  grep -q " w$i " "$WORK/sent.txt" || fail "w$i stored none of the 12"
done

# Each one back, byte for byte, from the worker that stored it.
while read -r number worker file; do
  out="$WORK/got-$number.json"
  "$CLIENT" --connect "$front" get "$number" --out "$out" 2>"$WORK/get.err" ||
    fail "get $number exited non-zero: $(cat "$WORK/get.err")"
  cmp "$file" "$out" || fail "get $number ($file, on $worker) did not come back byte for byte"
  grep -q "from $worker " "$WORK/get.err" || fail "get $number: not served by $worker"
done <"$WORK/sent.txt"
# Without --out: the document on stdout.
read -r first _ first_file <"$WORK/sent.txt"
"$CLIENT" --connect "$front" get "$first" >"$WORK/stdout.json" || fail "get $first to stdout"
cmp "$first_file" "$WORK/stdout.json" || fail "get $first on stdout differs from $first_file"

# An unknown request: non-zero exit, 404 said, nothing written.
if "$CLIENT" --connect "$front" get 999999 --out "$WORK/none.json" 2>"$WORK/unknown.err"; then
  fail "get of an unknown request exited 0"
fi
grep -q "404 no such request: 999999" "$WORK/unknown.err" || fail "unknown request: no 404 said"
[ ! -e "$WORK/none.json" ] || fail "unknown request: --out was written"

# A stored file damaged, or gone, on its worker: 500 that says so.
read -r number worker _ < <(grep " w3 " "$WORK/sent.txt" | tail -n 1)
stored=$(find "$WORK/storage/w3" -name "$number-*.json")
printf '{"titolo": "tron' >"$stored"
if "$CLIENT" --connect "$front" get "$number" --out "$WORK/damaged.json" 2>"$WORK/damaged.err"; then
  fail "get of a damaged file exited 0"
fi
grep -q "500 stored file $number-.* is damaged" "$WORK/damaged.err" || fail "damaged: $(cat "$WORK/damaged.err")"
rm "$stored"
if "$CLIENT" --connect "$front" get "$number" --out "$WORK/damaged.json" 2>"$WORK/gone.err"; then
  fail "get of a deleted file exited 0"
fi
grep -q "500 the stored document of request $number is gone" "$WORK/gone.err" || fail "gone: $(cat "$WORK/gone.err")"
[ ! -e "$WORK/damaged.json" ] || fail "damaged or gone: --out was written"

# The REPL on a pty: send, `get <Tab>` completes the request number, the copy
# is the document; `stored` lists it; a get of an unknown request says 404.
HOME=$WORK timeout 40 python3 - "$CLIENT" "$front" "$CARICO_SOURCE/files" "$WORK" <<'PY' ||
import os, pty, re, select, sys, time
client, front, files, work = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execve(client, [client, "--connect", front, "--files", files],
              dict(os.environ, TERM="xterm", COLUMNS="160"))
seen = b""
def wait_for(pattern, seconds=10):
    global seen
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = re.search(pattern, seen)
        if m:
            return m
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    sys.exit("REPL: never saw %r; screen: %r" % (pattern, seen[-2000:]))
wait_for(rb"carico> ")
os.write(fd, b"send citta-con-accenti.json\r")
number = wait_for(rb"200 request=(\d+)").group(1)
seen = b""
os.write(fd, b"get \t")  # one recent number: completed in place
wait_for(rb"get \r?(\x1b\[[0-9]+G)?" + number + rb" ")  # the editor may move the cursor
os.write(fd, b" " + work.encode() + b"/repl-copy.json\r")
wait_for(rb"written to " + re.escape(work.encode()) + rb"/repl-copy\.json")
os.write(fd, b"stored 3\r")
wait_for(rb"REQUEST +TITLE +WORKER +BYTES")
wait_for(number + rb" +Perch\xc3\xa9")
os.write(fd, b"get 999999\r")
wait_for(rb"get 999999: 404 no such request")
os.write(fd, b"exit\r")
_, status = os.waitpid(pid, 0)
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
PY
  fail "the REPL's get on a pty"
cmp "$CARICO_SOURCE/files/citta-con-accenti.json" "$WORK/repl-copy.json" ||
  fail "the REPL's get FILE differs from the document sent"

# The holder killed: 503 naming it, at once (well within 5 s), --out untouched.
read -r number worker _ < <(grep " w2 " "$WORK/sent.txt" | head -n 1)
stop w2 KILL
echo "previous" >"$WORK/kept.json"
t0=$(date +%s%N)
if "$CLIENT" --connect "$front" --timeout-ms 5000 get "$number" --out "$WORK/kept.json" 2>"$WORK/gone.err"; then
  fail "get from a stopped holder exited 0"
fi
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "503 .*worker w2" "$WORK/gone.err" || fail "stopped holder: no 503 naming w2: $(cat "$WORK/gone.err")"
[ "$elapsed_ms" -lt 5000 ] || fail "stopped holder: the 503 took $elapsed_ms ms"
[ "$(cat "$WORK/kept.json")" = previous ] || fail "stopped holder: --out was overwritten"
stop broker TERM

# --curve: a document is fetched only with the key that sent it.
"$CARICO_BIN/shared/carico-keygen" --out "$WORK/keys" broker >/dev/null
for c in alice bob; do "$CARICO_BIN/shared/carico-keygen" --out "$WORK/keys/clients" "$c" >/dev/null; done
"$CARICO_BIN/shared/carico-keygen" --out "$WORK/keys/workers" w >/dev/null
mkdir -p "$WORK/secret"
mv "$WORK/keys/clients/"*.key "$WORK/keys/workers/"*.key "$WORK/secret/"
fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
start sbroker "$BROKER" --frontend "$front" --backend "$back" --curve --curve-dir "$WORK/keys" \
  --journal "$WORK/secure.db" --log "$WORK/secure.log"
start sw "$WORKER" --connect "$back" --name sw --storage "$WORK/storage/sw" \
  --curve-server-key "$WORK/keys/broker.pub" --curve-key "$WORK/secret/w.key"
as() { local who=$1; shift; "$CLIENT" --connect "$front" --curve-server-key "$WORK/keys/broker.pub" \
  --curve-key "$WORK/secret/$who.key" "$@"; }
wait_until 10 bash -c "$(declare -f as); CLIENT=$CLIENT front=$front WORK=$WORK; \
  as alice --json workers | grep -q '\"state\":\"ready\"'" || fail "secure worker did not join"
as alice --json send "$CARICO_SOURCE/files/hello.json" >"$WORK/alice.jsonl" || fail "alice's send"
number=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["request"])' "$WORK/alice.jsonl")
as alice get "$number" --out "$WORK/alice-copy.json" 2>/dev/null || fail "alice cannot get her own $number"
cmp "$CARICO_SOURCE/files/hello.json" "$WORK/alice-copy.json" || fail "alice's copy differs"
if as bob get "$number" --out "$WORK/bob-copy.json" 2>"$WORK/bob.err"; then
  fail "bob fetched alice's document"
fi
grep -q "404 no such request: $number" "$WORK/bob.err" || fail "bob: no 404: $(cat "$WORK/bob.err")"
[ ! -e "$WORK/bob-copy.json" ] || fail "bob: --out was written"
echo "PASS: 12 documents fetched back byte for byte; 404 unknown; REPL get/stored; 503 names the stopped holder; curve owner only"
