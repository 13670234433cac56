#!/usr/bin/env python3
"""The summary of scripts/profile_broker.sh: reads OUT/ and prints instructions
per request (whole broker, by thread, by area, top functions) from the
callgrind files, and the journal writer's commits and syncs.

    python3 scripts/profile_summary.py OUT
"""
import glob
import json
import os
import re
import sys
from collections import defaultdict


def parse_callgrind(path):
    """Self cost, inclusive cost and call counts per function of one callgrind
    file (the format of valgrind's callgrind: name compression, `calls=` lines
    followed by the call's inclusive cost)."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    space = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
             "cfl": "fl", "fn": "fn", "cfn": "fn"}
    self_cost = defaultdict(int)
    callee_cost = defaultdict(int)   # cost of calls made by fn, for its inclusive cost
    calls_to = defaultdict(int)      # calls received
    obj_of = {}
    fn = ob = None
    cob = None
    cfn = None
    pending_call = False
    totals = 0

    def name(kind, text):
        m = re.match(r"\((\d+)\)(?: (.*))?$", text)
        table = names[space[kind]]
        if not m:
            return text
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[-1]) if len(parts) > 1 else 0
                if pending_call:
                    callee_cost[fn] += cost
                    pending_call = False
                    cob = None  # a call's object is named per call
                else:
                    self_cost[fn] += cost
                continue
            key, _, value = line.partition("=")
            if key == "fn":
                fn = name("fn", value)
                obj_of[fn] = ob
                cob = None
            elif key == "ob":
                ob = name("ob", value)
            elif key == "cob":
                cob = name("ob", value)
            elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                name(key, value)
            elif key == "cfn":
                cfn = name("cfn", value)
                obj_of.setdefault(cfn, cob or ob)
            elif key == "calls":
                calls_to[cfn] += int(value.split()[0])
                pending_call = True
            elif line.startswith("totals:") or line.startswith("summary:"):
                totals = max(totals, int(line.split()[1]))
    inclusive = {f: self_cost.get(f, 0) + callee_cost.get(f, 0)
                 for f in set(self_cost) | set(callee_cost)}
    return {"self": dict(self_cost), "inclusive": inclusive, "calls": dict(calls_to),
            "obj": obj_of, "total": totals or sum(self_cost.values())}


# Which thread a file is, by the function that runs it (first match wins).
THREADS = [
    ("journal writer", r"carico::journal::writer_loop"),
    ("access log", r"carico::access_log::(run|thread|loop|format)"),
    ("spdlog sinks", r"spdlog::details::thread_pool::(worker_loop|process_next)"),
    ("spdlog flusher", r"spdlog::details::(periodic_worker|registry::flush_all)"),
    ("snapshot", r"carico::snapshot_publisher"),
    ("broker loop (main)", r"carico::broker::run\b"),
    ("zmq I/O and reaper", r"zmq::(worker_poller_base_t::worker_routine|epoll_t::loop)|libzmq"),
]

# Self cost of a function, by area (first match of function name or object wins).
AREAS = [
    ("sqlite (journal writer's SQL)", r"^sqlite3|libsqlite3"),
    ("journal (carico, both sides)", r"carico::journal|journal_event|journal_record|sql_statement"),
    ("routing/access log: formatting", r"fmt::|escaping_formatter|access_log|pattern_formatter|flag_formatter|carico::sample\b|spdlog::details::(fmt_helper|scoped_padder|.*formatter)"),
    ("routing/access log: spdlog queue, sinks", r"spdlog::"),
    ("zmq (send/recv, pipes, poll)", r"libzmq|^zmq::|zmq_"),
    ("allocation (malloc/free/new/delete)", r"malloc|^free$|_int_free|cfree|operator new|operator delete|realloc|calloc|tcache|unlink_chunk|consolidate|sysmalloc"),
    ("header map / msgpack / raw_map", r"carico::header|carico::raw_map|msgpack|map_writer|carico::map_"),
    ("codec (decode/encode frames)", r"carico::(decode|encode)|codec|carico::frame"),
    ("reply cache", r"reply_cache"),
    ("ledger / key map (hash tables)", r"unordered_map|_Hashtable|_Map_base|std::hash|_Hash_bytes|robin|flat_hash"),
    ("memcpy/memcmp/strlen (libc)", r"mem(cpy|move|set|cmp|chr)|str(len|cmp|chr)|__memcpy|__memset|__strlen"),
    ("threads: mutex, futex, condvar", r"pthread_|futex|__lll_|_condvar|std::mutex|std::condition_variable"),
    ("time (clock_gettime, chrono, localtime)", r"clock_gettime|__vdso|localtime|gmtime|tz|chrono|strftime"),
    ("other carico-broker code", r"carico::|carico-broker"),
    ("dynamic linker, startup", r"ld-linux|_dl_|dl_"),
    ("other libc/libstdc++", r"libc\.so|libstdc\+\+|libm\.so|libgcc"),
]


def area_of(fn, obj):
    text = fn + " " + (obj or "")
    for area, pattern in AREAS:
        if re.search(pattern, fn) or re.search(pattern, obj or ""):
            return area
    return "other"


def thread_of(profile):
    for label, pattern in THREADS:
        for fn, cost in profile["inclusive"].items():
            text = fn + " " + (profile["obj"].get(fn) or "")
            if re.search(pattern, text) and cost > 0.2 * profile["total"]:
                return label
    return "other"


def short(fn, width=90):
    fn = re.sub(r"\(.*\)( const)?$", "()", fn) if len(fn) > width else fn
    return fn if len(fn) <= width else fn[:width - 3] + "..."


def callgrind_summary(out, lines):
    run = json.load(open(os.path.join(out, "callgrind.json")))
    r = run["results"][0]
    requests = r["sent"]
    files = sorted(glob.glob(os.path.join(out, "callgrind", "callgrind.out.*")))
    if not files:
        lines.append("no callgrind files (did valgrind run?)")
        return
    profiles = [parse_callgrind(f) for f in files]
    total = sum(p["total"] for p in profiles)
    lines.append(f"callgrind, mode {r['mode']}: {requests} requests sent (warm-up included), "
                 f"{r['requests']} answered in the measured {r['seconds']:.1f} s, {r['lost']} lost, "
                 f"{r['errors']} errors; at ~{r['requests_per_s']:.0f} req/s under valgrind")
    lines.append(f"broker instructions: {total:,} in all = {total / requests:,.0f} per request "
                 f"(start-up and idle included)")
    run_loop = sum(c for p in profiles for fn, c in p["inclusive"].items()
                   if re.match(r"carico::broker::run\(", fn))
    main_total = sum(p["total"] for p in profiles if thread_of(p) == "broker loop (main)")
    lines.append(f"  of which the main thread outside broker::run() (start-up, shutdown): "
                 f"{(main_total - run_loop) / requests:,.0f} per request")
    lines.append("")
    lines.append("by thread (instructions per request):")
    by_thread = defaultdict(int)
    for p in profiles:
        by_thread[thread_of(p)] += p["total"]
    for label, cost in sorted(by_thread.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {label:32s} {cost / requests:10,.0f}  {100 * cost / total:5.1f} %")

    # Everything merged: self cost by area, and functions.
    self_cost, inclusive, calls, obj = defaultdict(int), defaultdict(int), defaultdict(int), {}
    thread_area = defaultdict(lambda: defaultdict(int))
    for p in profiles:
        label = thread_of(p)
        for fn, c in p["self"].items():
            self_cost[fn] += c
            thread_area[label][area_of(fn, p["obj"].get(fn))] += c
        for fn, c in p["inclusive"].items():
            inclusive[fn] += c
        for fn, c in p["calls"].items():
            calls[fn] += c
        for fn, o in p["obj"].items():
            obj.setdefault(fn, o)
    by_area = defaultdict(int)
    for fn, c in self_cost.items():
        by_area[area_of(fn, obj.get(fn))] += c
    lines.append("")
    lines.append("by area, self cost of every function in every thread (instructions per request):")
    for area, cost in sorted(by_area.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {area:42s} {cost / requests:10,.0f}  {100 * cost / total:5.1f} %")
    for label in ("broker loop (main)", "journal writer", "spdlog sinks", "access log",
                  "zmq I/O and reaper"):
        if label not in thread_area:
            continue
        t = sum(thread_area[label].values())
        lines.append(f"  within {label} ({t / requests:,.0f}/request):")
        for area, cost in sorted(thread_area[label].items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f"    {area:40s} {cost / requests:10,.0f}  {100 * cost / t:5.1f} %")

    # Entry points worth watching, inclusive, per request.
    watch = [("journal post (loop side)", r"carico::journal::(post|record|note|received|dispatched|finished|enqueue)"),
             ("journal write_batch (writer)", r"carico::journal::write_batch"),
             ("sqlite3_step", r"^sqlite3_step$"),
             ("access_log add (loop side)", r"carico::access_log::add"),
             ("spdlog logger log calls", r"spdlog::logger::log_it_|spdlog::async_logger::sink_it_"),
             ("spdlog backend (format + sinks)", r"spdlog::async_logger::backend_sink_it_"),
             ("file sink", r"rotating_file_sink.*sink_it_"),
             ("console sink", r"(ansicolor|stdout).*sink.*::log"),
             ("decode_client_request", r"carico::decode_client"),
             ("decode_worker_message", r"carico::decode_worker"),
             ("encode (all)", r"carico::encode_"),
             ("zmq send", r"^zmq::socket_base_t::send"),
             ("zmq recv", r"^zmq::socket_base_t::recv"),
             ("reply cache", r"carico::reply_cache::"),
             ("malloc", r"^malloc$"), ("free", r"^free$")]
    lines.append("")
    lines.append("entry points, inclusive instructions per request (overlapping; calls per request):")
    for label, pattern in watch:
        fns = [fn for fn in inclusive if re.search(pattern, fn)]
        if not fns:
            continue
        # Only the outermost: a function whose callers are in the set would double count;
        # take the largest inclusive one per distinct name plus the call total.
        cost = max(inclusive[fn] for fn in fns) if len(fns) > 1 and "all" not in label else sum(inclusive[fn] for fn in fns)
        n = sum(calls.get(fn, 0) for fn in fns)
        lines.append(f"  {label:34s} {cost / requests:10,.0f}   {n / requests:6.2f} calls")

    lines.append("")
    lines.append("top 15 functions by inclusive cost (per request; self beside it):")
    lines.append(f"  {'inclusive':>10} {'self':>9}  function [object]")
    skip = r"^(0x|\?\?\?|_start|__libc_start|main$|start_thread|clone|std::thread::_State_impl|execute_native_thread_routine|\(below main\))"
    shown = 0
    for fn, c in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if re.search(skip, fn):
            continue
        lines.append(f"  {c / requests:10,.0f} {self_cost.get(fn, 0) / requests:9,.0f}  "
                     f"{short(fn)} [{os.path.basename(obj.get(fn) or '?')}]")
        shown += 1
        if shown == 15:
            break
    lines.append("")
    lines.append("top 15 functions by self cost (per request):")
    for fn, c in sorted(self_cost.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"  {c / requests:10,.0f}  {100 * c / total:5.1f} %  {short(fn)} "
                     f"[{os.path.basename(obj.get(fn) or '?')}]")


def journal_summary(out, lines):
    commits_path = os.path.join(out, "commits.json")
    if not os.path.exists(commits_path):
        return
    run = json.load(open(os.path.join(out, "journal.json")))["results"][0]
    c = json.load(open(commits_path))
    requests = run["sent"]
    span = c["first_to_last_commit_seconds"] or 1
    lines.append("")
    lines.append(f"journal writer at full speed (shipped, {run['requests_per_s']:.0f} req/s in the "
                 f"measured interval, {requests} requests in all):")
    n = max(1, c["commits"])
    lines.append(f"  transactions: {c['commits']} = {c['commits'] / span:,.0f}/s over "
                 f"{span:.1f} s, {requests / n:.1f} requests each, COMMIT step "
                 f"{1e6 * c['commit_seconds'] / n:.0f} us on average, "
                 f"{100 * c['commit_seconds'] / span:.0f} % of the writer's time")
    lines.append(f"  other sqlite3_step calls: {c['other_steps']} = {c['other_steps'] / requests:.2f} per request")
    lines.append(f"  syncs (shim): fsync {c['fsyncs']}, fdatasync {c['fdatasyncs']} = "
                 f"{(c['fsyncs'] + c['fdatasyncs']) / span:.1f}/s, {1e3 * c['sync_seconds']:.0f} ms in all")
    strace = os.path.join(out, "strace.txt")
    if os.path.exists(strace):
        srun = json.load(open(os.path.join(out, "strace.json")))["results"][0]
        secs = srun["seconds"] + 1  # measured interval + warm-up, roughly the traffic
        lines.append(f"  strace -c -f (broker, all threads; {srun['requests_per_s']:.0f} req/s under strace, "
                     f"{srun['sent']} requests):")
        for line in open(strace):
            m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)$", line)
            if m and m.group(6) != "total":
                calls = int(m.group(4))
                lines.append(f"    {m.group(6):10s} {calls:9d} calls  {calls / secs:9,.0f}/s  "
                             f"{calls / max(1, srun['sent']):6.2f}/request  {m.group(2)} s")


def main():
    out = sys.argv[1]
    lines = []
    if os.path.exists(os.path.join(out, "loadavg.txt")):
        lines += [l.rstrip() for l in open(os.path.join(out, "loadavg.txt"))]
    if os.path.exists(os.path.join(out, "callgrind.json")):
        callgrind_summary(out, lines)
    journal_summary(out, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
