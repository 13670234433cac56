#!/usr/bin/env bash
# Starts a carico cluster on this machine — a broker and N workers — and opens the
# client REPL; leaving the REPL stops the cluster. Everything it starts lives under
# one run directory (logs, pids, stored documents, journal) and is stopped by PID.
#
#   scripts/start_cluster.sh                       # setup + build when needed, 3 workers, the REPL
#   scripts/start_cluster.sh --workers 5 --no-client   # in the background; returns when ready
#   scripts/start_cluster.sh add-worker [--name w9]    # one more worker, joins the ring at once
#   scripts/start_cluster.sh status                    # what runs: pids, ports, the ring
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

# port_free PORT: nothing listens on 127.0.0.1:PORT and we may bind it. With
# SO_REUSEADDR, as the broker binds (libzmq sets it): connections of a stopped
# broker left in TIME-WAIT do not count, a listener anywhere on the port does.
port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
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

client() { curve_flags clients; "$CLIENT" --connect "tcp://127.0.0.1:$FRONTEND_PORT" "${curve[@]}" "$@"; }

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
  (cd "$run_dir" && exec setsid "$WORKER" --connect "tcp://127.0.0.1:$BACKEND_PORT" --name "$w" \
      --storage "$run_dir/storage" --log "$log_dir/$w.log" "${extra[@]}" \
      </dev/null >>"$log_dir/$w.console.log" 2>&1) &
  echo $! >"$pid_dir/worker-$w.pid"
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
    alive "$(cat "$pid_dir/broker.pid" 2>/dev/null)" carico-broker || return 2
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

# Stops the processes of the run dir by their pid files: workers first (they drain),
# then the broker. Only PIDs that still run carico's programs are signalled.
stop_cluster() {
  local f w pid wpids=() names=()
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    pid=$(cat "$f"); w=$(basename "$f" .pid); w=${w#worker-}
    if alive "$pid" carico-worker; then wpids+=("$pid"); names+=("$w ($pid)"); fi
  done < <(worker_pid_files)
  signal_and_wait 10 "${wpids[@]+"${wpids[@]}"}"
  rm -f "$pid_dir"/worker-*.pid
  pid=$(cat "$pid_dir/broker.pid" 2>/dev/null || true)
  if alive "$pid" carico-broker; then
    signal_and_wait 5 "$pid"
    names=("broker ($pid)" "${names[@]+"${names[@]}"}")
  fi
  rm -f "$pid_dir/broker.pid"
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
  if [ -f "$pid_dir/broker.pid" ] && alive "$(cat "$pid_dir/broker.pid")" carico-broker; then
    die "a cluster already runs from $run_dir (broker pid $(cat "$pid_dir/broker.pid")); use '$here_prog status${run_dir_flag}' or '$here_prog stop${run_dir_flag}'"
  fi
  command -v python3 >/dev/null || "$root/scripts/setup.sh"
  for p in "$frontend_port" "$backend_port" "$http_port"; do
    port_free "$p" || die "port $p on 127.0.0.1 is already in use: stop what holds it ('ss -ltnp | grep :$p') or choose another with --frontend-port/--backend-port/--http-port; nothing was started"
  done

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
  (cd "$run_dir" && exec setsid "$BROKER" --frontend "tcp://127.0.0.1:$FRONTEND_PORT" \
      --backend "tcp://127.0.0.1:$BACKEND_PORT" --http "127.0.0.1:$HTTP_PORT" \
      --log "$log_dir/loadbalancer.log" "${extra[@]}" \
      </dev/null >>"$log_dir/broker.console.log" 2>&1) &
  echo $! >"$pid_dir/broker.pid"

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
  cat <<EOF
carico is running: a broker and $workers worker(s) (${names[*]:-none}), text service ready.
  clients connect to   tcp://127.0.0.1:$FRONTEND_PORT
  workers connect to   tcp://127.0.0.1:$BACKEND_PORT
  dashboard            http://127.0.0.1:$HTTP_PORT/  (Prometheus: /metrics)
  routing log          $rel/logs/loadbalancer.log
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
  echo "  the client           $client_cmd --connect tcp://127.0.0.1:$FRONTEND_PORT${curve[*]:+ ${curve[*]}} --files $files"
  echo "                       (exit, quit or Ctrl-D leaves it and stops the cluster)"
  echo
  # The REPL owns the terminal; Ctrl-C is its own. Leaving it (or this script being
  # stopped) stops the cluster.
  trap 'stop_cluster' EXIT
  trap ':' INT
  trap 'exit 143' TERM
  local status=0
  curve_flags clients
  "$CLIENT" --connect "tcp://127.0.0.1:$FRONTEND_PORT" "${curve[@]}" --files "$files" || status=$?
  echo "stopping the cluster ..."
  return $status
}

cmd_add_worker() {
  load_env
  alive "$(cat "$pid_dir/broker.pid" 2>/dev/null)" carico-broker ||
    die "no broker runs from $run_dir (start the cluster first)"
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
  local pid f w state
  echo "run dir  $run_dir"
  echo "ports    clients tcp://127.0.0.1:$FRONTEND_PORT, workers tcp://127.0.0.1:$BACKEND_PORT"
  [ -n "${HTTP_PORT:-}" ] && echo "dashboard http://127.0.0.1:$HTTP_PORT/"
  pid=$(cat "$pid_dir/broker.pid" 2>/dev/null || true)
  if alive "$pid" carico-broker; then state=running; else state="not running"; fi
  printf '%-10s %-8s %s\n' "PROCESS" "PID" "STATE"
  printf '%-10s %-8s %s\n' "broker" "${pid:--}" "$state"
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    w=$(basename "$f" .pid); w=${w#worker-}
    pid=$(cat "$f")
    if alive "$pid" carico-worker; then state=running; else state="not running"; fi
    printf '%-10s %-8s %s\n' "$w" "$pid" "$state"
  done < <(worker_pid_files)
  if alive "$(cat "$pid_dir/broker.pid" 2>/dev/null)" carico-broker; then
    echo
    echo "the ring (mmi.workers):"
    client --timeout-ms 2000 workers || echo "(the broker did not answer)"
  fi
}

cmd_stop() {
  [ -d "$pid_dir" ] || { echo "nothing was running in $run_dir"; return 0; }
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
