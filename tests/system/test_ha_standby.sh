#!/usr/bin/env bash
# Brokers sharing a PostgreSQL journal (docs/ha.md), real binaries and a real
# server (start_postgres in lib.sh: initdb in the scratch folder):
# - the second broker is a standby: it binds neither port;
# - kill -9 of the active: the standby listens within 3 s, under term 2;
# - SIGTERM to a standby: exit status 0 at once;
# - the active's session ended by the server (pg_terminate_backend): it stops
#   serving and exits with status 1 within 2 s.
source "$(dirname "$0")/lib.sh"
scale=${CARICO_TIME_SCALE:-1}

start_postgres
uri=$pg_uri

broker_on() {  # NAME FRONT-PORT BACK-PORT
  start "$1" "$BROKER" --journal "$uri" --frontend "tcp://127.0.0.1:$2" \
    --backend "tcp://127.0.0.1:$3" --log "$WORK/$1.file.log"
}

fa=$(free_port); ba=$(free_port); fb=$(free_port); bb=$(free_port)
broker_on a "$fa" "$ba"
wait_until 10 listening "$fa" || fail "the first broker does not listen"
broker_on b "$fb" "$bb"
wait_until 10 grep -q "standby" "$WORK/b.file.log" || fail "the second broker did not say standby"
sleep 1
! listening "$fb" && ! listening "$bb" || fail "the standby bound a port"
wait_until 5 grep -q "active, term 1" "$WORK/a.file.log" || fail "the first broker is not active in term 1"

# kill -9 of the active: its session ends, the standby takes over.
stop a KILL
t0=$(date +%s%N)
wait_until $(( 3 * scale )) listening "$fb" || fail "the standby did not take over within 3 s"
took_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait_until 5 grep -q "active, term 2" "$WORK/b.file.log" || fail "the new active is not in term 2"
echo "takeover after kill -9: $took_ms ms"

# A standby stopped by SIGTERM exits 0 at once.
fc=$(free_port); bc=$(free_port)
broker_on c "$fc" "$bc"
wait_until 10 grep -q "standby" "$WORK/c.file.log" || fail "the third broker did not say standby"
t0=$(date +%s%N)
kill -TERM "${PIDS[c]}"
status=0; wait "${PIDS[c]}" || status=$?
unset "PIDS[c]"
[ "$status" -eq 0 ] || fail "a standby stopped by SIGTERM exited $status"
(( ($(date +%s%N) - t0) / 1000000 < 1000 * scale )) || fail "the standby took over 1 s to stop"

# The active's session ended by the server: fenced, it stops with status 1.
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = 'carico' AND application_name = 'carico-broker'" >/dev/null
t0=$(date +%s%N)
status=0; wait "${PIDS[b]}" || status=$?
unset "PIDS[b]"
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$status" -eq 1 ] || fail "the fenced broker exited $status, not 1"
[ "$elapsed_ms" -lt $(( 2000 * scale )) ] || fail "the fenced broker took $elapsed_ms ms to stop"
wait_until 5 grep -q "stopped serving" "$WORK/b.file.log" || fail "the fenced broker did not say why it stopped"
stop_postgres
echo "PASS: standby binds nothing; takeover after kill -9 in $took_ms ms (term 2); standby SIGTERM exits 0; fenced active exits 1"
