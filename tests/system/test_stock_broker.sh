#!/usr/bin/env bash
# carico-worker and carico-client with --protocol mdp through a minimal stock
# MDP/0.1 broker (carico-test-stock-broker, RFC 7 only, no carico code): every
# document answered 200 with the worker's result, every one stored under a name
# of its own (two documents with the same title are two files), and not one
# message from carico's programs that breaks RFC 7.
source "$(dirname "$0")/lib.sh"
STOCK_BROKER=$CARICO_BIN/tests/carico-test-stock-broker

port=$(free_port)
endpoint=tcp://127.0.0.1:$port
start broker "$STOCK_BROKER" --bind "$endpoint"
start w1 "$WORKER" --protocol mdp --connect "$endpoint" --storage "$WORK/storage" --name w1
wait_until 10 grep -q "READY for text" "$WORK/broker.log" || fail "carico-worker did not say READY for text"

# Two documents with one title, and three of the project's samples.
printf '%s' '{"title": "Stesso titolo", "content": "prima versione: a a a"}' >"$WORK/same-1.json"
printf '%s' '{"title": "Stesso titolo", "content": "seconda versione, diversa"}' >"$WORK/same-2.json"
docs=("$CARICO_SOURCE/files/abracadabra.json" "$CARICO_SOURCE/files/haiku.json"
      "$CARICO_SOURCE/files/escape-passwd.json" "$WORK/same-1.json" "$WORK/same-2.json")

"$CLIENT" --protocol mdp --connect "$endpoint" --timeout-ms 10000 --json send --window 2 \
  "${docs[@]}" >"$WORK/replies.jsonl" 2>"$WORK/client.log" \
  || fail "carico-client --protocol mdp send exited non-zero"

python3 - "$WORK/replies.jsonl" "$WORK/storage" "${docs[@]}" <<'EOF' || fail "replies or storage wrong (above)"
import collections, json, os, sys

replies_path, storage, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
problems = []
lines = [l for l in open(replies_path, encoding="utf-8") if l.strip()]
if len(lines) != len(docs):
    problems.append(f"{len(lines)} replies for {len(docs)} documents")

def expected_count(path):
    doc = json.load(open(path, encoding="utf-8"))
    content = doc.get("content", doc.get("contenuto", ""))
    return content.count("a") + content.count("A")

stored_as = []
for line in lines:
    reply = json.loads(line)
    path = reply.get("file")
    if reply.get("code") != 200:
        problems.append(f"{path}: code {reply.get('code')}, not 200: {line.strip()}")
        continue
    result = reply.get("result")
    if isinstance(result, str):  # the worker's body as text
        try:
            result = json.loads(result)
        except ValueError:
            problems.append(f"{path}: result is not the worker's JSON result: {result!r}")
            continue
    if not isinstance(result, dict):
        problems.append(f"{path}: no result map: {line.strip()}")
        continue
    if path in docs and result.get("count_a") != expected_count(path):
        problems.append(f"{path}: count_a {result.get('count_a')}, expected {expected_count(path)}")
    stored_as.append(result.get("stored_as"))

if len(set(stored_as)) != len(stored_as):
    problems.append(f"stored_as names repeat: {stored_as}")
files = sorted(f for f in os.listdir(storage) if os.path.isfile(os.path.join(storage, f)))
for name in stored_as:
    if name not in files:
        problems.append(f"stored_as {name!r} is not a file in the storage folder")
sent = collections.Counter(open(d, "rb").read() for d in docs)
kept = collections.Counter(open(os.path.join(storage, f), "rb").read() for f in files)
if sent != kept:
    problems.append(f"stored files {files} do not hold exactly the {len(docs)} documents sent")

for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# The worker drains (DISCONNECT) on SIGTERM; then nothing carico sent may have broken RFC 7.
stop w1 TERM
stop broker TERM
! grep -q "violation" "$WORK/broker.log" || fail "carico's programs broke RFC 7: $(grep violation "$WORK/broker.log" | head -3)"
echo "PASS: ${#docs[@]} documents through a stock MDP/0.1 broker, all answered 200 and stored apart"
