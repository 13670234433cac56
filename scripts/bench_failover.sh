#!/usr/bin/env bash
# Failover time with a PostgreSQL journal (docs/ha.md, docs/benchmarks.md): two
# brokers on one journal, workers and a client knowing both, a steady load; the
# active broker is killed -9 KILLS times (the killed one comes back as the
# standby before the next kill). Per kill it measures, from the kill:
#   listening   the new active bound its ports (its "broker listening" line)
#   first reply the new active answered its first request ("request N done")
# and prints each, then the median and the worst. Every process is started
# here (a PostgreSQL of Debian's in a scratch folder, as the postgres user when
# root, on a free port) and stopped by PID on every exit.
#
#   scripts/bench_failover.sh [--kills N] [--workers N] [--window N] [--build-dir DIR] [--keep]
#
# --kills (10), --workers (3, echo service), --window (requests the client keeps
# outstanding, 8), --build-dir (build/ in the source tree, or $CARICO_BIN; the
# programs as built by scripts/build.sh), --keep (leave the scratch folder: logs).
# The timestamps are the brokers' log lines (ms) against the kill's clock.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
prog=scripts/bench_failover.sh
die() { echo "$prog: $*" >&2; exit 1; }

kills=10
workers=3
window=8
build_dir=${CARICO_BIN:-$root/build}
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills)     kills=${2:?--kills needs a value}; shift 2 ;;
    --workers)   workers=${2:?--workers needs a value}; shift 2 ;;
    --window)    window=${2:?--window needs a value}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a value}; shift 2 ;;
    --keep)      keep=1; shift ;;
    -h|--help)   awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ $kills =~ ^[0-9]+$ ]] && [ "$kills" -ge 1 ] || die "--kills must be a number from 1"
[[ $workers =~ ^[0-9]+$ ]] && [ "$workers" -ge 1 ] || die "--workers must be a number from 1"
[[ $window =~ ^[0-9]+$ ]] && [ "$window" -ge 1 ] || die "--window must be a number from 1"

BROKER=$build_dir/broker/carico-broker
WORKER=$build_dir/worker/carico-worker
CLIENT=$build_dir/client/carico-client
for b in "$BROKER" "$WORKER" "$CLIENT"; do
  [ -x "$b" ] || die "$b is missing (build with scripts/build.sh, or give --build-dir)"
done
pgbin=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
  [ -x "$d/postgres" ] && pgbin=$d
done
[ -n "$pgbin" ] || die "PostgreSQL's server is not installed (scripts/setup.sh --test installs Debian's)"

work=$(mktemp -d "${TMPDIR:-/tmp}/carico-failover.XXXXXX")
declare -A pids=()

cleanup() {
  local status=$? name
  trap - EXIT INT TERM
  for name in "${!pids[@]}"; do
    [ "$name" = pg ] || kill -9 "${pids[$name]}" 2>/dev/null || true
  done
  if [ -n "${pids[pg]:-}" ]; then
    kill -INT "${pids[pg]}" 2>/dev/null || true  # PostgreSQL's fast shutdown
  fi
  for name in "${!pids[@]}"; do wait "${pids[$name]}" 2>/dev/null || true; done
  if [ "$keep" = 1 ] || [ $status -ne 0 ]; then echo "logs in $work" >&2; else rm -rf "$work"; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: in the background, output to $work/NAME.out.
start() {
  local name=$1; shift
  "$@" >>"$work/$name.out" 2>&1 &
  pids[$name]=$!
}

# wait_until SECONDS CMD...: retries CMD every 50 ms.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

free_ports() {
  python3 -c 'import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}
listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# ---------------------------------------------------------------- PostgreSQL
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  chmod o+x "$work"
fi
mkdir "$work/pg"
[ "$(id -u)" -ne 0 ] || chown postgres: "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres --no-sync \
  >"$work/initdb.out" 2>&1 || die "initdb failed (see $work/initdb.out)"
read -r pgport fa ba fb bb < <(free_ports)
start pg "${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -k "$work/pg" \
  -c listen_addresses=127.0.0.1
sql() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -At -c "$1" postgres; }
wait_until 60 sql "SELECT 1" || die "PostgreSQL did not start (see $work/pg.out)"
sql "CREATE DATABASE carico" >/dev/null
uri=postgresql://postgres@127.0.0.1:$pgport/carico

# ---------------------------------------------------------------- the cluster
declare -A front=([a]=$fa [b]=$fb) back=([a]=$ba [b]=$bb) log=()
# start_broker NAME: on its ports; each start logs to a new file, $work/NAME-K.log
# (a killed broker's last line may be cut short).
starts=0
start_broker() {
  starts=$((starts + 1))
  log[$1]=$work/$1-$starts.log
  start "$1" "$BROKER" --journal "$uri" --frontend "tcp://127.0.0.1:${front[$1]}" \
    --backend "tcp://127.0.0.1:${back[$1]}" --log "${log[$1]}"
}
logged() { grep -q "$1" "${log[$2]}"; }
start_broker a
wait_until 30 listening "$fa" || die "broker a does not listen (see $work/a.out)"
start_broker b
wait_until 30 logged standby b || die "broker b did not stand by (see $work/b.out)"
for i in $(seq 1 "$workers"); do
  start "w$i" "$WORKER" --connect "tcp://127.0.0.1:$ba,tcp://127.0.0.1:$bb" --name "w$i" \
    --service echo --storage "$work/storage"
done
sleep 1

# A steady load: documents of about 1 KB to the echo service, WINDOW outstanding,
# until this script stops it (SIGTERM).
"$CLIENT" gen --count 100 --size 1000 --out "$work/corpus" >/dev/null
start client "$CLIENT" --connect "tcp://127.0.0.1:$fa,tcp://127.0.0.1:$fb" --json send \
  --count 2000000 --window "$window" --service echo --files "$work/corpus"
replies() { wc -l <"$work/client.out"; }  # one line a reply (and a few warnings)
flowing() { [ "$(replies)" -gt "$1" ]; }  # more than N replies by now
wait_until 30 flowing 100 || die "no load: no replies (see $work/client.out)"

# first_line_after NAME STAMP PATTERN: the timestamp ("YYYY-mm-dd HH:MM:SS.mmm",
# local time, as the log writes it) of NAME's first line matching PATTERN at or
# after STAMP.
first_line_after() {
  awk -v since="$2" -v pat="$3" '($1 " " $2) >= since && $0 ~ pat { print $1 " " $2; exit }' \
    "${log[$1]}"
}
# logged_after NAME STAMP PATTERN: NAME's log has such a line (flushed every second).
logged_after() { [ -n "$(first_line_after "$@")" ]; }
# ms_after_kill STAMP NS: from the kill (date +%s%N) to a log timestamp, in ms.
ms_after_kill() {
  local s
  s=$(date -d "$1" +%s%N)
  echo $(( (s - $2) / 1000000 ))
}

echo "failover with a PostgreSQL journal: $kills kills -9 of the active broker," \
  "$workers echo workers, client window $window (PostgreSQL $(basename "${pgbin%/bin}")" \
  "on 127.0.0.1, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg))"
printf '%-5s %-7s %12s %14s\n' kill killed listening "first reply"
first=() listen=()
active=a
for k in $(seq 1 "$kills"); do
  standby=b; [ "$active" = b ] && standby=a
  n=$(replies)
  wait_until 10 flowing $((n + 50)) || die "the load stopped before kill $k (see $work/client.out)"
  t0=$(date +%s%N)
  stamp=$(date -d "@$((t0 / 1000000000))" +'%F %T').$(printf '%03d' $(( t0 / 1000000 % 1000 )))
  kill -9 "${pids[$active]}"
  wait "${pids[$active]}" 2>/dev/null || true
  unset "pids[$active]"
  # Its log lines reach the file within a second (flushed every second).
  wait_until 30 logged_after "$standby" "$stamp" ' request [0-9]+ done ' ||
    die "kill $k: $standby served nothing within 30 s (see ${log[$standby]})"
  done_at=$(first_line_after "$standby" "$stamp" ' request [0-9]+ done ')
  listen_at=$(first_line_after "$standby" "$stamp" 'broker listening')
  first+=("$(ms_after_kill "$done_at" "$t0")")
  listen+=("$(ms_after_kill "$listen_at" "$t0")")
  printf '%-5s %-7s %9s ms %11s ms\n' "$k" "$active" "${listen[-1]}" "${first[-1]}"
  # The killed broker comes back as the standby, as its service manager would.
  start_broker "$active"
  wait_until 30 logged standby "$active" ||
    die "the restarted $active did not stand by (see ${log[$active]})"
  active=$standby
done

kill -TERM "${pids[client]}" 2>/dev/null || true
wait "${pids[client]}" 2>/dev/null || true
unset "pids[client]"
total=$(grep -c '"code":' "$work/client.out" || true)
bad=$(grep '"code":' "$work/client.out" | grep -vc '"code":200' || true)

# median and worst of a list of ms
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %d ms, worst %d ms", m, v[NR] }'; }
echo "kill -9 -> new active listening:     $(stats "${listen[@]}")"
echo "kill -9 -> first reply by new active: $(stats "${first[@]}")"
echo "client: $total replies, $bad not 200"
