"""Engine benchmarks: the seed rule's sample in batch and streaming (a script, not a test).

    .venv/bin/python benchmarks/bench_engine.py                  # both, default sizes
    .venv/bin/python benchmarks/bench_engine.py batch --events 1000000 --repeat 3
    .venv/bin/python benchmarks/bench_engine.py stream --events 10000000

* batch: >= 1M synthetic Auditbeat-shaped ECS events, >= 100k distinct (host.id, process.pid,
  process.parent.pid) keys, the real seed-rule query (compiled by auditeql.eql.compile_query).
  Anchors measured in the same run (best of --repeat): a plain loop reading one field of every
  event, and a loop evaluating the three compiled predicates (the floor any engine pays).
* stream: events generated on the fly (never all in memory) at 1M new processes per hour of
  event time, a 9-minute window; prints events/s and peak RSS (must stay < 300 MB), with the
  generator-only loop as anchor.

Each mode runs in its own process so that peak RSS (ru_maxrss) belongs to that mode alone.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SEED_RULE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "spec" / "seed-rule.md"
SHELLS = ["bash", "sh", "dash", "python3", "perl", "nc", "socat", "zsh", "php8.1", "lua5.3"]
OTHER = ["ls", "cat", "grep", "systemd", "sshd", "cron", "awk2", "curl", "tar", "gzip", "find", "sed", "nginx",
         "postgres", "java", "node", "git", "make", "cc1", "ld"]
NOISE_SYSCALLS = ["openat", "read", "write", "close", "mmap", "bind", "sendto", "recvfrom"]


def seed_query() -> str:
    text = SEED_RULE.read_text()
    start = text.index("## Query (verbatim)")
    block = text[start:].split("```")[1]
    return block.strip()


def compile_seed():
    from auditeql.eql import compile_query

    return compile_query(seed_query())


def iso(ms: int) -> str:
    s, m = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{m:03d}Z"


def generate(n_events: int, procs_per_hour: int, seed: int = 7, hosts: int = 50,
             events_per_proc: int = 10) -> Iterator[dict]:
    """Auditbeat-shaped events: every process execs, some open UDP sockets and connect out.

    ``events_per_proc`` events per process on average; 30% of execs are interpreters named in the rule, a third of those
    make a UDP socket() and an egress connect() (a full seed-rule sample), the rest is noise.
    Event time advances so that ``procs_per_hour`` new processes start per hour.
    """
    rnd = random.Random(seed)
    step_ms = 3_600_000 / (procs_per_hour * events_per_proc)
    t0 = 1_700_000_000_000
    emitted = 0
    pid = 1000
    live: list[tuple] = []  # (host, pid, ppid, name)
    while emitted < n_events:
        ts = t0 + int(emitted * step_ms)
        r = rnd.random()
        if r < 1 / events_per_proc or not live:
            pid += 1
            host = f"host-{rnd.randrange(hosts):03d}"
            name = rnd.choice(SHELLS) if rnd.random() < 0.3 else rnd.choice(OTHER)
            proc = (host, pid, rnd.randrange(1, 1000), name)
            live.append(proc)
            if len(live) > 2000:
                live.pop(rnd.randrange(len(live)))
            yield _exec(ts, proc)
        else:
            proc = live[rnd.randrange(len(live))]
            if proc[3] in SHELLS and rnd.random() < 0.15:
                yield _socket(ts, proc, "2")
            elif proc[3] in SHELLS and rnd.random() < 0.15:
                yield _connect(ts, proc, rnd)
            else:
                yield _noise(ts, proc, rnd)
        emitted += 1


def _base(ts: int, proc: tuple, category: str, action: str, syscall: str) -> dict:
    host, pid, ppid, name = proc
    return {
        "@timestamp": iso(ts),
        "event": {"category": [category], "type": ["start"] if action != "other" else ["info"],
                  "action": action, "module": "auditd", "outcome": "success"},
        "host": {"id": host, "name": host, "os": {"type": "linux", "family": "debian"}},
        "process": {"pid": pid, "parent": {"pid": ppid}, "name": name, "executable": f"/usr/bin/{name}",
                    "working_directory": "/root"},
        "user": {"id": "0", "name": "root"},
        "auditd": {"data": {"syscall": syscall, "a0": "2", "a1": "1", "exit": "0", "arch": "x86_64"},
                   "sequence": ts % 100_000, "result": "success"},
    }


def _exec(ts: int, proc: tuple) -> dict:
    d = _base(ts, proc, "process", "executed", "execve")
    d["process"]["args"] = [proc[3], "-c", "id"]
    return d


def _socket(ts: int, proc: tuple, a1: str) -> dict:
    d = _base(ts, proc, "process", "created", "socket")
    d["auditd"]["data"]["a1"] = a1
    return d


def _connect(ts: int, proc: tuple, rnd: random.Random) -> dict:
    d = _base(ts, proc, "network", "connected-to", "connect")
    d["network"] = {"direction": "egress", "transport": "udp"}
    d["destination"] = {"ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.7", "port": 4444}
    return d


def _noise(ts: int, proc: tuple, rnd: random.Random) -> dict:
    return _base(ts, proc, "file", "other", rnd.choice(NOISE_SYSCALLS))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(repeat: int, fn) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


# ------------------------------------------------------------------------------------------ modes

def run_batch_mode(n: int, repeat: int) -> dict:
    from auditeql.engine import run_batch
    from auditeql.eql.plan import QueryOptions

    plan = compile_seed()
    docs = list(generate(n, procs_per_hour=1_000_000, events_per_proc=8))
    keys = {(d["host"]["id"], d["process"]["pid"], d["process"]["parent"]["pid"]) for d in docs}
    rss_docs = peak_rss_mb()

    def anchor_read():
        c = 0
        for d in docs:
            if d["event"]["action"] == "executed":
                c += 1
        return c

    preds = [f.predicate for f in plan.filters]

    def anchor_preds():
        c = 0
        for d in docs:
            for p in preds:
                if p(d):
                    c += 1
        return c

    t_read, _ = best_of(repeat, anchor_read)
    t_pred, matched = best_of(repeat, anchor_preds)
    opts = QueryOptions(size=10**9)
    t_run, samples = best_of(repeat, lambda: run_batch(plan, docs, opts))
    return {
        "mode": "batch", "events": n, "distinct_keys": len(keys), "filter_matches": matched,
        "samples": len(samples), "repeat": repeat,
        "anchor_read_s": round(t_read, 3), "anchor_predicates_s": round(t_pred, 3), "run_batch_s": round(t_run, 3),
        "events_per_s": int(n / t_run),
        "ratio_vs_plain_loop": round(t_run / t_read, 2), "ratio_vs_predicates_only": round(t_run / t_pred, 2),
        "rss_after_generating_mb": round(rss_docs, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_stream_mode(n: int, procs_per_hour: int, window_min: int, anchor_events: int) -> dict:
    from auditeql.engine import StreamingEngine

    plan = compile_seed()
    n_anchor = min(n, anchor_events)
    t = time.perf_counter()
    c = 0
    for d in generate(n_anchor, procs_per_hour):
        if d["event"]["action"] == "executed":
            c += 1
    t_anchor = (time.perf_counter() - t) * (n / n_anchor)  # per-event cost of the same generator
    preds = [f.predicate for f in plan.filters]
    t = time.perf_counter()
    for d in generate(n_anchor, procs_per_hour):
        for p in preds:
            p(d)
    t_anchor_preds = (time.perf_counter() - t) * (n / n_anchor)  # generator + the three predicates
    rss_anchor = peak_rss_mb()

    eng = StreamingEngine(plan, window_ms=window_min * 60_000, reorder_ms=2000)
    alerts = 0
    max_keys = 0
    t = time.perf_counter()
    for i, d in enumerate(generate(n, procs_per_hour)):
        alerts += len(eng.push(d))
        if i % 100_000 == 0:
            max_keys = max(max_keys, eng.stats()["keys"])
            if i % 1_000_000 == 0:
                print(f"  {i} events, keys {eng.stats()['keys']}, peak RSS {peak_rss_mb():.0f} MB,"
                      f" {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    eng.flush()
    t_run = time.perf_counter() - t
    s = eng.stats()
    hours = n / (procs_per_hour * 10)
    return {
        "mode": "stream", "events": n, "event_time_hours": round(hours, 2), "new_processes_per_hour": procs_per_hour,
        "window_min": window_min, "alerts": alerts, "max_keys_seen": max_keys,
        "anchor_events": n_anchor, "anchor_generate_s_scaled": round(t_anchor, 2),
        "anchor_generate_and_predicates_s_scaled": round(t_anchor_preds, 2), "stream_s": round(t_run, 2),
        "events_per_s": int(n / t_run), "ratio_vs_generator_loop": round(t_run / t_anchor, 2),
        "ratio_vs_generator_and_predicates": round(t_run / t_anchor_preds, 2),
        "rss_anchor_mb": round(rss_anchor, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_under_300mb": peak_rss_mb() < 300,
        "evicted_keys_expired": s["evicted_keys_expired"], "evicted_keys_capacity": s["evicted_keys_capacity"],
        "late_events": s["late_events"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="all", choices=["all", "batch", "stream"])
    ap.add_argument("--events", type=int, default=None, help="events (batch default 1M, stream default 10M)")
    ap.add_argument("--repeat", type=int, default=3, help="best-of-N for batch timings")
    ap.add_argument("--procs-per-hour", type=int, default=1_000_000)
    ap.add_argument("--window-min", type=int, default=9)
    ap.add_argument("--anchor-events", type=int, default=1_000_000,
                    help="stream: time the generator-only anchor on this many events and scale")
    a = ap.parse_args()
    if a.mode == "all":
        for mode in ("batch", "stream"):
            cmd = [sys.executable, __file__, mode, "--repeat", str(a.repeat), "--procs-per-hour",
                   str(a.procs_per_hour), "--window-min", str(a.window_min), "--anchor-events",
                   str(a.anchor_events)]
            if a.events:
                cmd += ["--events", str(a.events)]
            subprocess.run(cmd, check=True)
        return
    if a.mode == "batch":
        res = run_batch_mode(a.events or 1_000_000, a.repeat)
    else:
        res = run_stream_mode(a.events or 10_000_000, a.procs_per_hour, a.window_min, a.anchor_events)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
