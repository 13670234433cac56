#!/usr/bin/env bash
# Starts a carico cluster on this machine — a broker and N workers — and opens the
# client REPL; leaving the REPL stops the cluster. Everything it starts lives under
# one run directory (logs, pids, stored documents, journal) and is stopped by PID.
#
#   scripts/start_cluster.sh                       # setup + build when needed, 3 workers, the REPL
#   scripts/start_cluster.sh --workers 5 --no-client   # in the background; returns when ready
#   scripts/start_cluster.sh add-worker [--name w9]    # one more worker, joins the ring at once
#   scripts/start_cluster.sh status                    # what runs: pids, ports, the ring
#   scripts/start_cluster.sh --ha --no-client          # two brokers on a PostgreSQL journal
#   scripts/start_cluster.sh stop                      # stops what it started, nothing else
#
# Options (any subcommand): --run-dir DIR (default run/ in the source tree, beside
# scripts/, wherever you call it from). Start options:
#   --workers N (3)  --frontend-port P (5555)  --backend-port P (5556)  --no-client
#   --http-port P (5557: the dashboard, /metrics; always on 127.0.0.1)
#   --build-dir DIR (default build/ in the source tree, or $CARICO_BIN)
#   --no-build (never run setup/build; else the four programs are built when needed)
#   --work-us-per-char N (simulated slowness of every worker)
#   --worker-args "ARGS"  --broker-args "ARGS" (extra flags, split on blanks)
#   --secure (CurveZMQ: keys made in RUN_DIR/keys, every program authenticated and encrypted)
#   --ha (high availability, docs/ha.md: a local PostgreSQL in RUN_DIR/pg on a free port, as
#         the postgres user when root; broker 1 active on the ports above, broker 2 standby on
#         each port + 10; workers and the client know both; stop stops PostgreSQL too)
set -euo pipefail

# The source tree: this script's own folder's parent (symlinks resolved), not
# the current directory and not git.
self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/.." && pwd)
prog="scripts/start_cluster.sh"
# The script as the user can type it from here: relative inside the current
# directory, else its full path.
here_prog=$self
[[ $self == "$PWD"/* ]] && here_prog=${self#"$PWD"/}

die() { echo "$prog: $*" >&2; exit 1; }
# The comment block at the top, without its '# '.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$self"; }

# ---------------------------------------------------------------- options
command=start
case "${1:-}" in
  start|add-worker|status|stop) command=$1; shift ;;
  -h|--help|help) usage; exit 0 ;;
esac

run_dir=$root/run
workers=3
frontend_port=5555
backend_port=5556
http_port=5557
no_client=0
no_build=${CARICO_NO_BUILD:-0}
build_dir=${CARICO_BIN:-$root/build}
work_us_per_char=0
worker_args=""
broker_args=""
name=""
secure=0
ha=0

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

while [ $# -gt 0 ]; do
  case "$1" in
    --run-dir)          need_value "$@"; run_dir=$2; shift 2 ;;
    --workers)          need_value "$@"; workers=$2; shift 2 ;;
    --frontend-port)    need_value "$@"; frontend_port=$2; shift 2 ;;
    --backend-port)     need_value "$@"; backend_port=$2; shift 2 ;;
    --http-port)        need_value "$@"; http_port=$2; shift 2 ;;
    --no-client)        no_client=1; shift ;;
    --no-build)         no_build=1; shift ;;
    --build-dir)        need_value "$@"; build_dir=$2; shift 2 ;;
    --work-us-per-char) need_value "$@"; work_us_per_char=$2; shift 2 ;;
    --worker-args)      need_value "$@"; worker_args=$2; shift 2 ;;
    --broker-args)      need_value "$@"; broker_args=$2; shift 2 ;;
    --name)             need_value "$@"; name=$2; shift 2 ;;
    --secure)           secure=1; shift ;;
    --ha)               ha=1; shift ;;
    -h|--help)          usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

is_count "$workers" 0 1000 || die "--workers must be a number from 0 to 1000, not '$workers'"
is_count "$frontend_port" 1 65535 || die "--frontend-port must be a port number, not '$frontend_port'"
is_count "$backend_port" 1 65535 || die "--backend-port must be a port number, not '$backend_port'"
is_count "$work_us_per_char" 0 10000000 || die "--work-us-per-char must be a number, not '$work_us_per_char'"
[ "$frontend_port" != "$backend_port" ] || die "--frontend-port and --backend-port must differ"
is_count "$http_port" 1 65535 || die "--http-port must be a port number, not '$http_port'"
[ "$http_port" != "$frontend_port" ] && [ "$http_port" != "$backend_port" ] ||
  die "--http-port must differ from --frontend-port and --backend-port"
if [ -n "$name" ] && ! [[ $name =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
  die "--name may hold letters, digits, '.', '_' and '-' only"
fi

# An absolute run dir; only `start` creates it (status, stop and add-worker read).
if [ "$command" = start ]; then
  mkdir -p "$run_dir"
fi
if [ -d "$run_dir" ]; then
  run_dir=$(cd "$run_dir" && pwd)
elif [[ $run_dir != /* ]]; then
  run_dir=$PWD/$run_dir
fi
env_file=$run_dir/cluster.env
pid_dir=$run_dir/pids
log_dir=$run_dir/logs

# ---------------------------------------------------------------- helpers

# alive PID NAME_PART: the process exists and runs a program whose command line holds NAME_PART
# (a PID reused by something else does not count).
alive() {
  local pid=$1 what=$2
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$what"
}

# running PID: the process exists and is not a zombie.
running() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# first_busy_port PORT...: prints the first PORT that something listens on at
# 127.0.0.1 or that we may not bind; nothing when all are free. Binds with
# SO_REUSEADDR, as the broker does (libzmq sets it): connections of a stopped
# broker left in TIME-WAIT do not count, a listener anywhere on the port does.
# One python3 for all (it takes seconds to start on a loaded machine).
first_busy_port() {
  python3 - "$@" <<'EOF'
import socket, sys
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError:
        print(port)
        break
    finally:
        s.close()
EOF
}

load_env() {
  [ -f "$env_file" ] || die "no cluster in $run_dir (start one with: $here_prog${run_dir_flag})"
  # shellcheck disable=SC1090
  source "$env_file"
}

# curve_flags clients|workers: the CurveZMQ flags of a client or a worker (none unless --secure).
curve_flags() {
  curve=()
  [ "${SECURE:-0}" = 1 ] && curve=(--curve-server-key "$KEYS/broker.pub" --curve-key "$KEYS/$1/$1.key")
  return 0
}

# The brokers' frontends and backends as --connect lists: one broker, or with
# --ha both (the client and the workers use whichever is active).
frontends() {
  local list=tcp://127.0.0.1:$FRONTEND_PORT
  [ "${HA:-0}" = 1 ] && list+=,tcp://127.0.0.1:$FRONTEND2_PORT
  echo "$list"
}
backends() {
  local list=tcp://127.0.0.1:$BACKEND_PORT
  [ "${HA:-0}" = 1 ] && list+=,tcp://127.0.0.1:$BACKEND2_PORT
  echo "$list"
}

client() { curve_flags clients; "$CLIENT" --connect "$(frontends)" "${curve[@]}" "$@"; }

# make_keys: the broker's key pair and one for clients and one for workers, each
# on its door's allow list (RUN_DIR/keys/{clients,workers}/*.pub).
make_keys() {
  local keygen=$build_dir/shared/carico-keygen
  [ -x "$keygen" ] || die "$keygen is missing (build with scripts/build.sh)"
  rm -rf "$KEYS"
  "$keygen" --out "$KEYS" broker >/dev/null
  "$keygen" --out "$KEYS/clients" clients >/dev/null
  "$keygen" --out "$KEYS/workers" workers >/dev/null
}

# broker_alive: a broker of this run dir runs (either, with --ha).
broker_alive() {
  local f
  for f in "$pid_dir/broker.pid" "$pid_dir/broker2.pid"; do
    [ -f "$f" ] && alive "$(cat "$f")" carico-broker && return 0
  done
  return 1
}

# The worker pid files, oldest first, one a line.
worker_pid_files() { ls -1tr "$pid_dir"/worker-*.pid 2>/dev/null || true; }

# worker_running NAME: the pid file of worker NAME names a live carico-worker.
worker_running() {
  local f=$pid_dir/worker-$1.pid
  [ -f "$f" ] && alive "$(cat "$f")" carico-worker
}

# start_worker NAME: starts one worker in the background, its pid in pids/worker-NAME.pid.
start_worker() {
  local w=$1
  local extra=()
  [ "$WORK_US_PER_CHAR" -gt 0 ] && extra+=(--work-us-per-char "$WORK_US_PER_CHAR")
  # shellcheck disable=SC2206
  [ -n "$WORKER_ARGS" ] && extra+=($WORKER_ARGS)
  # One document store for the whole cluster: a request re-dispatched after a
  # worker died overwrites its own file (named by request number), never a second copy.
  mkdir -p "$run_dir/storage"
  curve_flags workers
  extra+=("${curve[@]}")
  # setsid: its own session, so Ctrl-C in the REPL reaches the REPL only.
  # Its log rotates (--log); stderr, with warnings only, goes to NAME.console.log.
  (cd "$run_dir" && exec setsid "$WORKER" --connect "$(backends)" --name "$w" \
      --storage "$run_dir/storage" --log "$log_dir/$w.log" "${extra[@]}" \
      </dev/null >>"$log_dir/$w.console.log" 2>&1) &
  echo $! >"$pid_dir/worker-$w.pid"
}

# start_broker NAME FRONTEND-PORT BACKEND-PORT HTTP-PORT LOG ARGS...: one broker in
# the background (in the run dir: the SQLite journal's default place), its pid in
# pids/NAME.pid, its log in logs/LOG.log and what it prints outside it in
# logs/NAME.console.log.
start_broker() {
  local b=$1 front=$2 back=$3 http=$4 log=$5
  shift 5
  (cd "$run_dir" && exec setsid "$BROKER" --frontend "tcp://127.0.0.1:$front" \
      --backend "tcp://127.0.0.1:$back" --http "127.0.0.1:$http" \
      --log "$log_dir/$log.log" "$@" \
      </dev/null >>"$log_dir/$b.console.log" 2>&1) &
  echo $! >"$pid_dir/$b.pid"
}

# joined NAME...: every NAME is in the broker's ring.
joined() {
  local ring
  ring=$(client --timeout-ms 1000 --json workers 2>/dev/null) || return 1
  for w in "$@"; do
    grep -q "\"name\":\"$w\"" <<<"$ring" || return 1
  done
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s; fails when the broker dies meanwhile.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    broker_alive || return 2
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# signal_and_wait SECONDS PID...: SIGTERM, wait up to SECONDS, then SIGKILL the rest.
signal_and_wait() {
  local seconds=$1; shift
  local pids=("$@") left deadline
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$(( $(date +%s) + seconds ))
  while :; do
    left=()
    for p in "${pids[@]}"; do running "$p" && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.1
  done
  echo "$prog: killing ${left[*]} (did not stop within ${seconds}s)" >&2
  kill -KILL "${left[@]}" 2>/dev/null || true
  for p in "${left[@]}"; do
    while running "$p"; do sleep 0.05; done
  done
}

# ---------------------------------------------------------------- PostgreSQL (--ha)

# The newest of Debian's /usr/lib/postgresql/N/bin holding a server; "" when none.
find_pg_bin() {
  local d best=""
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [ -x "$d/postgres" ] && best=$d
  done
  echo "$best"
}

# PostgreSQL refuses to run as root: as root, its programs run as the postgres
# user (setpriv execs, so a recorded PID is the server's own).
as_postgres=()
[ "$(id -u)" -eq 0 ] && as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)

psql_run() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -At "$@"; }

# start_postgres: the run dir's own PostgreSQL, RUN_DIR/pg/data (made by initdb
# on the first run, kept afterwards like the SQLite journal), listening on
# 127.0.0.1:PG_PORT only, its pid in pids/postgresql.pid; returns once it
# answers and its database `carico` exists.
start_postgres() {
  local pg=$run_dir/pg
  mkdir -p "$pg"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pg"
    "${as_postgres[@]}" test -w "$pg" ||
      die "the postgres user cannot reach $pg: every directory above it needs o+x (chmod o+x DIR), or use another --run-dir"
  fi
  if [ ! -f "$pg/data/PG_VERSION" ]; then
    # Trust on 127.0.0.1: a cluster for this machine's user, reachable from nowhere else.
    "${as_postgres[@]}" "$PG_BIN/initdb" -D "$pg/data" -A trust -U postgres --no-sync \
      >"$log_dir/initdb.log" 2>&1 || die "initdb failed (see $log_dir/initdb.log)"
  fi
  (exec setsid "${as_postgres[@]}" "$PG_BIN/postgres" -D "$pg/data" -p "$PG_PORT" -k "$pg" \
      -c listen_addresses=127.0.0.1 </dev/null >>"$log_dir/postgresql.log" 2>&1) &
  echo $! >"$pid_dir/postgresql.pid"
  local deadline=$(( $(date +%s) + 30 ))
  until psql_run -c "SELECT 1" >/dev/null 2>&1; do
    alive "$(cat "$pid_dir/postgresql.pid")" bin/postgres ||
      { tail -n 5 "$log_dir/postgresql.log" >&2; die "PostgreSQL did not start (see $log_dir/postgresql.log)"; }
    if [ "$(date +%s)" -ge "$deadline" ]; then
      stop_postgres >/dev/null
      die "PostgreSQL did not answer within 30 s (see $log_dir/postgresql.log)"
    fi
    sleep 0.1
  done
  if [ "$(psql_run -c "SELECT 1 FROM pg_database WHERE datname = 'carico'")" != 1 ] &&
     ! psql_run -c "CREATE DATABASE carico" >/dev/null; then
    stop_postgres >/dev/null
    die "cannot create the database carico in PostgreSQL (see $log_dir/postgresql.log)"
  fi
}

# stop_postgres: a fast shutdown (SIGINT: sessions ended, everything flushed);
# an immediate one (SIGQUIT) after 10 s. Prints what it stopped.
stop_postgres() {
  local pid
  pid=$(cat "$pid_dir/postgresql.pid" 2>/dev/null || true)
  rm -f "$pid_dir/postgresql.pid"
  alive "$pid" bin/postgres || return 0
  kill -INT "$pid" 2>/dev/null || true
  local deadline=$(( $(date +%s) + 10 ))
  while running "$pid"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "$prog: PostgreSQL ($pid) did not stop within 10 s: immediate shutdown" >&2
      kill -QUIT "$pid" 2>/dev/null || true
      deadline=$(( $(date +%s) + 5 ))
      while running "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
      running "$pid" && kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.1
  done
  while running "$pid"; do sleep 0.05; done
  echo "postgresql ($pid)"
}

# broker_role NAME: what broker NAME (broker, broker2) does now: "not running";
# "standby" (it runs and binds nothing: it waits for the journal's lock, or is
# still starting); else what its mmi.stats says: "active, term N" with a
# PostgreSQL journal ("fenced, term N" once it lost it), "serving" without.
broker_role() {
  local pid port stats
  pid=$(cat "$pid_dir/$1.pid" 2>/dev/null || true)
  alive "$pid" carico-broker || { echo "not running"; return 0; }
  port=${FRONTEND_PORT:-}
  [ "$1" = broker2 ] && port=${FRONTEND2_PORT:-}
  [ -n "$port" ] || { echo running; return 0; }
  [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || { echo standby; return 0; }
  curve_flags clients
  stats=$("$CLIENT" --connect "tcp://127.0.0.1:$port" "${curve[@]}" --timeout-ms 1000 --json stats \
            2>/dev/null) || { echo "not answering"; return 0; }
  # mmi.stats' "journal" is one flat object: {"active":true,"backend":"postgresql",...,"term":1}.
  local journal term
  journal=$(grep -o '"journal":{[^}]*}' <<<"$stats" || true)
  if [[ $journal != *'"backend":"postgresql"'* ]]; then
    echo serving
    return 0
  fi
  term=$(grep -o '"term":[0-9]*' <<<"$journal" | cut -d: -f2)
  if [[ $journal == *'"active":true'* ]]; then echo "active, term $term"; else echo "fenced, term $term"; fi
}

# Stops the processes of the run dir by their pid files: workers first (they drain),
# then the brokers (a standby first: it exits at once, and the active does not
# hand over while it drains), then PostgreSQL. Only PIDs that still run carico's
# programs (and PostgreSQL's) are signalled.
stop_cluster() {
  local f w pid wpids=() names=()
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    pid=$(cat "$f"); w=$(basename "$f" .pid); w=${w#worker-}
    if alive "$pid" carico-worker; then wpids+=("$pid"); names+=("$w ($pid)"); fi
  done < <(worker_pid_files)
  signal_and_wait 10 "${wpids[@]+"${wpids[@]}"}"
  rm -f "$pid_dir"/worker-*.pid
  local b order=(broker) bnames=()
  if [ -f "$pid_dir/broker2.pid" ]; then
    if [ "$(broker_role broker)" = standby ]; then order=(broker broker2); else order=(broker2 broker); fi
  fi
  for b in "${order[@]}"; do
    pid=$(cat "$pid_dir/$b.pid" 2>/dev/null || true)
    if alive "$pid" carico-broker; then
      signal_and_wait 5 "$pid"
      bnames+=("$b ($pid)")
    fi
    rm -f "$pid_dir/$b.pid"
  done
  names=("${bnames[@]+"${bnames[@]}"}" "${names[@]+"${names[@]}"}")
  pid=$(stop_postgres)
  [ -n "$pid" ] && names+=("$pid")
  if [ ${#names[@]} -gt 0 ]; then
    echo "stopped: ${names[*]}"
  else
    echo "nothing was running in $run_dir"
  fi
}

# The programs a cluster runs (carico-keygen for --secure), as built in build_dir.
programs=(broker/carico-broker worker/carico-worker client/carico-client shared/carico-keygen)

# True when the programs are missing or a source is newer than the oldest of them.
needs_build() {
  local b
  for b in "${programs[@]}"; do
    [ -x "$build_dir/$b" ] || return 0
  done
  local oldest
  oldest=$(cd "$build_dir" && ls -1tr "${programs[@]}" | head -n 1)
  oldest=$build_dir/$oldest
  [ -n "$(find "$root/broker" "$root/worker" "$root/client" "$root/shared" "$root/CMakeLists.txt" \
            \( -name '*.cpp' -o -name '*.hpp' -o -name CMakeLists.txt \) -newer "$oldest" -print -quit)" ]
}

# ---------------------------------------------------------------- subcommands

cmd_start() {
  # Refuse before starting anything: a cluster already here, or a port taken.
  if broker_alive || alive "$(cat "$pid_dir/postgresql.pid" 2>/dev/null)" bin/postgres; then
    die "a cluster already runs from $run_dir (pids in $pid_dir); use '$here_prog status${run_dir_flag}' or '$here_prog stop${run_dir_flag}'"
  fi
  command -v python3 >/dev/null || "$root/scripts/setup.sh"
  local ports=("$frontend_port" "$backend_port" "$http_port") p pg_bin="" pg_port=""
  if [ "$ha" = 1 ]; then
    # The standby broker: each port + 10.
    ports+=($((frontend_port + 10)) $((backend_port + 10)) $((http_port + 10)))
    pg_bin=$(find_pg_bin)
    [ -n "$pg_bin" ] || die "--ha needs PostgreSQL's server (no /usr/lib/postgresql/*/bin/postgres): install Debian's postgresql (scripts/setup.sh --test does)"
    pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  fi
  for p in "${ports[@]}"; do
    is_count "$p" 1 65535 || die "port $p (a port + 10, for --ha's standby broker) is not a port number"
  done
  p=$(first_busy_port "${ports[@]}")
  [ -z "$p" ] || die "port $p on 127.0.0.1 is already in use: stop what holds it ('ss -ltnp | grep :$p') or choose another with --frontend-port/--backend-port/--http-port$([ "$ha" = 1 ] && echo " (--ha: each + 10 too)"); nothing was started"

  if [ "$no_build" != 1 ] && needs_build; then
    echo "building carico's programs into $build_dir (first run: installs Debian packages, takes a few minutes) ..."
    # The programs only; scripts/test.sh builds the tests.
    CARICO_BUILD_TARGETS="carico-broker carico-worker carico-client carico-keygen" \
      "$root/scripts/build.sh" "$build_dir"
  fi
  for b in broker/carico-broker worker/carico-worker client/carico-client; do
    [ -x "$build_dir/$b" ] || die "$build_dir/$b is missing (build with scripts/build.sh, or give --build-dir)"
  done

  mkdir -p "$pid_dir" "$log_dir" "$run_dir/storage"
  rm -f "$pid_dir"/*.pid
  cat >"$env_file" <<EOF
# Written by $prog; read by its add-worker, status and stop.
FRONTEND_PORT=$frontend_port
BACKEND_PORT=$backend_port
HTTP_PORT=$http_port
BROKER=$build_dir/broker/carico-broker
WORKER=$build_dir/worker/carico-worker
CLIENT=$build_dir/client/carico-client
FILES=$root/files
WORK_US_PER_CHAR=$work_us_per_char
WORKER_ARGS="$worker_args"
SECURE=$secure
KEYS=$run_dir/keys
HA=$ha
FRONTEND2_PORT=$((frontend_port + 10))
BACKEND2_PORT=$((backend_port + 10))
HTTP2_PORT=$((http_port + 10))
PG_BIN=$pg_bin
PG_PORT=$pg_port
EOF
  load_env

  # Interrupted while starting: stop what already started, leave nothing half-up.
  trap 'echo "$prog: interrupted; stopping what was started" >&2; stop_cluster >&2; exit 130' INT TERM
  local extra=()
  if [ "$SECURE" = 1 ]; then
    make_keys
    extra+=(--curve --curve-dir "$KEYS")
  fi
  # shellcheck disable=SC2206
  [ -n "$broker_args" ] && extra+=($broker_args)
  # Everything the broker logs goes to loadbalancer.log, which rotates; its stderr
  # would be a second, never-rotated copy of it, so the logger leaves stderr alone
  # and broker.console.log keeps only what is printed outside the log (a bad flag,
  # a crash). --broker-args may still set --console-level.
  [[ " $broker_args " == *" --console-level"* ]] || extra+=(--console-level off)
  if [ "$HA" = 1 ]; then
    # One journal for both brokers: the first to take its lock is active (the
    # first broker, started alone); the second stands by and binds nothing.
    start_postgres
    extra+=(--journal "postgresql://postgres@127.0.0.1:$PG_PORT/carico")
    start_broker broker "$FRONTEND_PORT" "$BACKEND_PORT" "$HTTP_PORT" loadbalancer "${extra[@]}"
    local rc=0
    curve_flags clients
    wait_for 30 "$CLIENT" --connect "tcp://127.0.0.1:$FRONTEND_PORT" "${curve[@]}" \
      --timeout-ms 500 stats || rc=$?
    if [ $rc -ne 0 ]; then
      echo "$prog: the first broker did not come up; last log lines:" >&2
      tail -n 5 "$log_dir/broker.console.log" "$log_dir/loadbalancer.log" 2>/dev/null >&2 || true
      stop_cluster >&2
      exit 1
    fi
    start_broker broker2 "$FRONTEND2_PORT" "$BACKEND2_PORT" "$HTTP2_PORT" loadbalancer2 "${extra[@]}"
    rc=0
    wait_for 30 grep -q "standby" "$log_dir/loadbalancer2.log" || rc=$?
    if [ $rc -ne 0 ]; then
      echo "$prog: the second broker did not stand by; last log lines:" >&2
      tail -n 5 "$log_dir/broker2.console.log" "$log_dir/loadbalancer2.log" 2>/dev/null >&2 || true
      stop_cluster >&2
      exit 1
    fi
  else
    start_broker broker "$FRONTEND_PORT" "$BACKEND_PORT" "$HTTP_PORT" loadbalancer "${extra[@]}"
  fi

  local names=() i
  for i in $(seq 1 "$workers"); do
    start_worker "w$i"
    names+=("w$i")
  done

  local rc=0
  if [ "$workers" -gt 0 ]; then
    wait_for 30 client --timeout-ms 500 service text || rc=$?
    [ $rc -eq 0 ] && { wait_for 30 joined "${names[@]}" || rc=$?; }
  else
    wait_for 30 client --timeout-ms 500 stats || rc=$?
  fi
  if [ $rc -ne 0 ]; then
    echo "$prog: the cluster did not come up ($([ $rc -eq 2 ] && echo "the broker exited" || echo "timed out")); last log lines:" >&2
    tail -n 5 "$log_dir/broker.console.log" "$log_dir/loadbalancer.log" 2>/dev/null >&2 || true
    stop_cluster >&2
    exit 1
  fi

  local rel=$run_dir
  [[ $run_dir == "$PWD"/* ]] && rel=./${run_dir#"$PWD"/}
  if [ "$HA" = 1 ]; then
    cat <<EOF
carico is running: two brokers on a PostgreSQL journal (broker active, broker2 standby)
and $workers worker(s) (${names[*]:-none}), text service ready.
  clients connect to   $(frontends)
  workers connect to   $(backends)
  dashboard            http://127.0.0.1:$HTTP_PORT/ (broker2: http://127.0.0.1:$HTTP2_PORT/ once active)
  journal              postgresql://postgres@127.0.0.1:$PG_PORT/carico (data in $rel/pg/data, log $rel/logs/postgresql.log)
  routing logs         $rel/logs/loadbalancer.log, $rel/logs/loadbalancer2.log
EOF
  else
    cat <<EOF
carico is running: a broker and $workers worker(s) (${names[*]:-none}), text service ready.
  clients connect to   tcp://127.0.0.1:$FRONTEND_PORT
  workers connect to   tcp://127.0.0.1:$BACKEND_PORT
  dashboard            http://127.0.0.1:$HTTP_PORT/  (Prometheus: /metrics)
  routing log          $rel/logs/loadbalancer.log
EOF
  fi
  cat <<EOF
  worker logs          $rel/logs/<name>.log
  stored documents     $rel/storage/
  pids                 $rel/pids/
  more workers         $here_prog add-worker${run_dir_flag}
  what runs            $here_prog status${run_dir_flag}
  stop it              $here_prog stop${run_dir_flag}
EOF
  trap - INT TERM
  [ "$no_client" = 1 ] && return 0

  local files=$FILES
  [ "$PWD" = "$root" ] && files=files  # shorter paths beside each reply
  curve_flags clients
  local client_cmd=$CLIENT
  [[ $CLIENT == "$PWD"/* ]] && client_cmd=${CLIENT#"$PWD"/}
  echo "  the client           $client_cmd --connect $(frontends)${curve[*]:+ ${curve[*]}} --files $files"
  echo "                       (exit, quit or Ctrl-D leaves it and stops the cluster)"
  echo
  # The REPL owns the terminal; Ctrl-C is its own. Leaving it (or this script being
  # stopped) stops the cluster.
  trap 'stop_cluster' EXIT
  trap ':' INT
  trap 'exit 143' TERM
  local status=0
  curve_flags clients
  "$CLIENT" --connect "$(frontends)" "${curve[@]}" --files "$files" || status=$?
  echo "stopping the cluster ..."
  return $status
}

cmd_add_worker() {
  load_env
  broker_alive || die "no broker runs from $run_dir (start the cluster first)"
  if [ -z "$name" ]; then
    # The first wN no live worker of this cluster has (old logs do not count).
    local i=1
    while worker_running "w$i"; do i=$((i + 1)); done
    name=w$i
  fi
  if worker_running "$name"; then
    die "worker $name already runs (pid $(cat "$pid_dir/worker-$name.pid"))"
  fi
  start_worker "$name"
  if ! wait_for 20 joined "$name"; then
    echo "$prog: worker $name did not join; its log:" >&2
    tail -n 5 "$log_dir/$name.console.log" "$log_dir/$name.log" 2>/dev/null >&2 || true
    exit 1
  fi
  echo "worker $name joined (pid $(cat "$pid_dir/worker-$name.pid"), log $log_dir/$name.log)"
}

cmd_status() {
  load_env
  local pid f w b state
  echo "run dir  $run_dir"
  echo "ports    clients $(frontends), workers $(backends)"
  [ -n "${HTTP_PORT:-}" ] && echo "dashboard http://127.0.0.1:$HTTP_PORT/"
  printf '%-10s %-8s %s\n' "PROCESS" "PID" "STATE"
  if [ "${HA:-0}" = 1 ]; then
    # PostgreSQL, and each broker's role: which one serves.
    pid=$(cat "$pid_dir/postgresql.pid" 2>/dev/null || true)
    if alive "$pid" bin/postgres; then
      state="running (127.0.0.1:$PG_PORT, database carico)"
    else
      state="not running"
    fi
    printf '%-10s %-8s %s\n' "postgresql" "${pid:--}" "$state"
    for b in broker broker2; do
      pid=$(cat "$pid_dir/$b.pid" 2>/dev/null || true)
      state=$(broker_role "$b")
      [ "$state" = "not running" ] || state="running, $state"
      printf '%-10s %-8s %s\n' "$b" "${pid:--}" "$state"
    done
  else
    pid=$(cat "$pid_dir/broker.pid" 2>/dev/null || true)
    if alive "$pid" carico-broker; then state=running; else state="not running"; fi
    printf '%-10s %-8s %s\n' "broker" "${pid:--}" "$state"
  fi
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    w=$(basename "$f" .pid); w=${w#worker-}
    pid=$(cat "$f")
    if alive "$pid" carico-worker; then state=running; else state="not running"; fi
    printf '%-10s %-8s %s\n' "$w" "$pid" "$state"
  done < <(worker_pid_files)
  if broker_alive; then
    echo
    echo "the ring (mmi.workers):"
    client --timeout-ms 2000 workers || echo "(the broker did not answer)"
  fi
}

cmd_stop() {
  [ -d "$pid_dir" ] || { echo "nothing was running in $run_dir"; return 0; }
  # shellcheck disable=SC1090
  [ -f "$env_file" ] && source "$env_file"  # the ports: which broker is the standby
  stop_cluster
}

run_dir_flag=""
[ "$run_dir" != "$root/run" ] && run_dir_flag=" --run-dir $run_dir"

case "$command" in
  start) cmd_start ;;
  add-worker) cmd_add_worker ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
esac
