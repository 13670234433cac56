#!/usr/bin/env bash
# The broker runs on the allocator its build chose (broker/allocator.hpp):
# jemalloc in the normal build, the C library's malloc under the sanitizers.
# mmi.stats names it (broker.allocator) and so does the start-up line in
# loadbalancer.log, for the broker started as shipped (its endpoints only).
source "$(dirname "$0")/lib.sh"
expect=${CARICO_ALLOCATOR:?CTest sets CARICO_ALLOCATOR}

front=$(free_port)
back=$(free_port)
FE=tcp://127.0.0.1:$front
start broker "$BROKER" --frontend "$FE" --backend "tcp://127.0.0.1:$back"
answers() { "$CLIENT" --connect "$FE" --timeout-ms 1000 --json stats >"$WORK/stats.json" 2>/dev/null; }
wait_until 10 answers || fail "the broker never answered mmi.stats"

allocator=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["broker"]["allocator"])' \
  "$WORK/stats.json") || fail "mmi.stats has no broker.allocator: $(cat "$WORK/stats.json")"
case $allocator in
  "$expect"*) ;;
  *) fail "mmi.stats says the allocator is '$allocator', this build links '$expect'" ;;
esac
# The log file is flushed on a timer: wait for the line.
names_it() { grep -q "broker listening: .*(allocator: $expect" loadbalancer.log; }
wait_until 10 names_it ||
  fail "loadbalancer.log's start-up line does not name the allocator: $(grep listening loadbalancer.log)"
echo "ok: allocator $allocator"
