"""The benchmark suite: one command, one table of ratios measured side by side in the same run.

    .venv/bin/python benchmarks/run.py                 # full suite, best of 3, writes docs/performance.md
    .venv/bin/python benchmarks/run.py --quick         # small inputs, best of 1, no file written
    .venv/bin/python benchmarks/run.py --others        # also run benchmarks/bench_*.py and append their output

Each row times an auditeql command and its anchor as child processes on the same input, best of
``--repeat`` runs each, interleaved (anchor, auditeql, anchor, auditeql…) so that load changes on
the machine hit both alike; peak memory is the child's ``ru_maxrss``. Ratios are anchor time /
auditeql time: above 1.0 auditeql is faster.

Rows (inputs from benchmarks/data.py — the real corpus replicated, never synthetic events):

* scan: ``auditeql scan`` with the built-in rules on a raw audit.log of >= 300k records vs
  ``ausearch -i`` (auditd's C tool, interpreting every record) on the same file;
* scan without push-down: the same scan with ``--no-pushdown`` (one run; shows what push-down buys);
* query: ``auditeql query <seed rule>`` on >= 200k Auditbeat-shaped ECS NDJSON documents vs the
  `eql` package's PythonEngine (benchmarks/eql_anchor.py), JSON parsing included in both;
* normalize: ``auditeql normalize`` (every event built, nothing to push down) in records/s, with
  ``ausearch -i`` as the anchor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402
import eql_anchor  # noqa: E402

PY = sys.executable
AUDITEQL = [PY, "-m", "auditeql.cli"]


@dataclass
class Timing:
    best_s: float
    runs: list[float]
    max_rss_kb: int
    exit_codes: set[int]


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(wall seconds, ru_maxrss KB, exit code) of one child run, its output discarded."""
    with open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss, code


def measure_pair(anchor: list[str], ours: list[str], repeat: int, env: dict[str, str]) -> tuple[Timing, Timing]:
    a_runs, o_runs, a_rss, o_rss, a_codes, o_codes = [], [], 0, 0, set(), set()
    for _ in range(repeat):
        t, rss, code = run_child(anchor, env)
        a_runs.append(t)
        a_rss, a_codes = max(a_rss, rss), a_codes | {code}
        t, rss, code = run_child(ours, env)
        o_runs.append(t)
        o_rss, o_codes = max(o_rss, rss), o_codes | {code}
    return Timing(min(a_runs), a_runs, a_rss, a_codes), Timing(min(o_runs), o_runs, o_rss, o_codes)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = "n/a"
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    ausearch = subprocess.run(["ausearch", "-v"], capture_output=True, text=True)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "ausearch": (ausearch.stdout or ausearch.stderr).strip().splitlines()[0] if shutil.which("ausearch") else "absent",
        "load": load,
    }


def fmt_s(t: float) -> str:
    return f"{t:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description="auditeql benchmark suite (ratios vs anchors, same run)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--records", type=int, default=300_000, help="raw audit records for scan/normalize")
    ap.add_argument("--docs", type=int, default=200_000, help="ECS documents for query")
    ap.add_argument("--quick", action="store_true", help="small inputs, one run, do not write docs/performance.md")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    ap.add_argument("--skip-no-pushdown", action="store_true", help="skip the (slow) scan --no-pushdown row")
    ap.add_argument("--others", action="store_true", help="also run benchmarks/bench_*.py and append their output")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.records, args.docs, args.no_write = 1, 30_000, 20_000, True
    if not shutil.which("ausearch"):
        raise SystemExit("ausearch (package auditd) is needed as the anchor; apt-get install auditd")

    env = dict(os.environ)
    state = Path(os.environ.get("AUDITEQL_BENCH_DATA", "/tmp/auditeql-bench")) / "state"
    env["XDG_STATE_HOME"] = str(state)  # never touch the user's alert store
    # An installed auditeql runs from compiled bytecode (pip writes it at install time). In a
    # working tree with PYTHONDONTWRITEBYTECODE set, every module edited since its .pyc was
    # written would be recompiled by every timed run: compile once here, as an install would.
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "auditeql"), quiet=1)
    log, n_records, copies = data.audit_log(args.records)
    ndjson, n_docs, _ = data.ecs_ndjson(args.docs)
    info = machine()
    print(f"inputs: {log} ({n_records:,} records, {copies} copies of udp-shells-1); {ndjson} ({n_docs:,} documents)")
    print(f"machine: {info['cpu']}, {info['cores']} cores; load before: {info['load']}")

    rows: list[tuple[str, str, Timing, str, Timing, str]] = []
    ausearch = ["ausearch", "-i", "-if", str(log)]
    scan = [*AUDITEQL, "scan", "--no-store", "-q", "--format", "ndjson", "--host-id", data.HOST_ID, str(log)]
    a, o = measure_pair(ausearch, scan, args.repeat, env)
    rows.append(("scan raw audit.log, built-in rules", "ausearch -i", a, "auditeql scan", o, f"{n_records:,} records"))
    print(f"  scan: ausearch {fmt_s(a.best_s)}, auditeql {fmt_s(o.best_s)} -> {a.best_s / o.best_s:.2f}")
    if not args.skip_no_pushdown:
        a2, o2 = measure_pair(ausearch, [*scan, "--no-pushdown"], 1, env)
        rows.append(("scan raw audit.log, --no-pushdown", "ausearch -i", a2, "auditeql scan --no-pushdown", o2, "1 run each"))
        print(f"  scan --no-pushdown: ausearch {fmt_s(a2.best_s)}, auditeql {fmt_s(o2.best_s)} -> {a2.best_s / o2.best_s:.2f}")

    seed = eql_anchor.seed_query()
    a, o = measure_pair([PY, str(HERE / "eql_anchor.py"), str(ndjson)], [*AUDITEQL, "query", seed, str(ndjson)], args.repeat, env)
    rows.append(("query seed rule on ECS NDJSON", "eql PythonEngine", a, "auditeql query", o, f"{n_docs:,} documents"))
    print(f"  query: eql {fmt_s(a.best_s)}, auditeql {fmt_s(o.best_s)} -> {a.best_s / o.best_s:.2f}")

    normalize = [*AUDITEQL, "normalize", "--host-id", data.HOST_ID, str(log)]
    a, o = measure_pair(ausearch, normalize, args.repeat, env)
    rows.append(("normalize raw audit.log -> ECS NDJSON", "ausearch -i", a, "auditeql normalize", o,
                 f"{n_records / o.best_s:,.0f} records/s (ausearch {n_records / a.best_s:,.0f})"))
    print(f"  normalize: ausearch {fmt_s(a.best_s)}, auditeql {fmt_s(o.best_s)} -> {a.best_s / o.best_s:.2f}")

    others = run_others(env) if args.others else []
    table = render(rows, args.repeat)
    print()
    print(table)
    if not args.no_write:
        write_doc(info, table, others, args, n_records, n_docs, copies, rows)
        print(f"\nwrote {ROOT / 'docs' / 'performance.md'}")


def render(rows: list[tuple[str, str, Timing, str, Timing, str]], repeat: int) -> str:
    head = (
        f"| benchmark (best of {repeat}) | anchor | anchor time | auditeql | auditeql time | ratio (anchor/auditeql) "
        "| peak RSS anchor | peak RSS auditeql | note |"
    )
    lines = [head, "|" + "---|" * 9]
    for name, an, a, on, o, note in rows:
        lines.append(
            f"| {name} | `{an}` | {fmt_s(a.best_s)} | `{on}` | {fmt_s(o.best_s)} | **{a.best_s / o.best_s:.2f}** "
            f"| {a.max_rss_kb / 1024:.0f} MB | {o.max_rss_kb / 1024:.0f} MB | {note} |"
        )
    return "\n".join(lines)


def run_others(env: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"  running {script.name} …")
        try:
            res = subprocess.run([PY, str(script)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
            text = (res.stdout + ("\n" + res.stderr if res.returncode else "")).strip()
        except subprocess.TimeoutExpired:
            text = "(timed out after 900 s)"
        out.append((script.name, text[-4000:]))
    return out


def targets(rows: list[tuple[str, str, Timing, str, Timing, str]]) -> list[str]:
    """Each issue-8 target with the ratio measured in this run and whether it is met."""
    want = {"scan raw audit.log, built-in rules": 1.0, "query seed rule on ECS NDJSON": 10.0}
    out = []
    for name, _an, a, _on, o, _note in rows:
        if name in want:
            r = a.best_s / o.best_s
            out.append(f"- {name}: target ratio >= {want[name]:g}, measured **{r:.2f}** — "
                       + ("met" if r >= want[name] else "**not met**"))
    return out


def write_doc(info: dict[str, str], table: str, others: list[tuple[str, str]], args: argparse.Namespace,
              n_records: int, n_docs: int, copies: int, table_rows: list | None = None) -> None:
    parts = [
        "# Performance",
        "",
        "Generated by `.venv/bin/python benchmarks/run.py` (rerun it to refresh; the last section is maintained by hand). Each ratio is",
        "anchor time / auditeql time measured in the same run, best of N, runs interleaved; above 1.0 auditeql is",
        "faster. Peak RSS is the child process's `ru_maxrss`.",
        "",
        "## Machine",
        "",
        f"- date: {info['date']}",
        f"- uname: `{info['uname']}`",
        f"- CPU: {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']}; {info['ausearch']}",
        f"- load average when the run started: {info['load']} (other work was running on this machine; both",
        "  sides of every ratio ran under the same load, interleaved)",
        "",
        "## Results",
        "",
        table,
        "",
        "## Targets (issue 8)",
        "",
        *targets(table_rows or []),
        "",
        "## Inputs",
        "",
        f"- raw audit.log: {n_records:,} records = {copies} copies of the real recording `udp-shells-1` (kernel audit,",
        "  auditd 3.0.9, ENRICHED), each copy shifted in time, serial and pid (benchmarks/data.py), so each copy",
        "  raises the same alerts (36 alert documents per copy with the default built-in rule).",
        f"- ECS NDJSON: {n_docs:,} Auditbeat-shaped documents = the corpus's go-libaudit oracle documents",
        "  replicated the same way, with Auditbeat's `host`, `agent` and `ecs` fields and without `event.original`.",
        "",
        "## What the rows mean",
        "",
        "- **scan**: the whole `auditeql scan` (start-up, rule loading, reading, push-down, normalization of the",
        "  events that can match, Kibana-schedule replay, alert building with process ancestry, NDJSON output)",
        "  against `ausearch -i`, which parses, groups and interprets every record and prints it.",
        "- **scan --no-pushdown**: the same without push-down — every event becomes an ECS document.",
        "- **query**: `auditeql query` with the seed rule (the `sample` query) against the `eql` package's",
        "  PythonEngine on the same file, both parsing every line they need with orjson",
        "  (benchmarks/eql_anchor.py; eql 1.0.1 needs two spelling edits to accept the rule and its sample",
        "  semantics differ from Elasticsearch's, see docs/../shared spec; only throughput is compared).",
        "- **normalize**: `auditeql normalize` turns every event into an ECS document (nothing can be skipped).",
        "",
        "## How push-down works",
        "",
        "See `src/auditeql/rules/pushdown.py`: from the loaded rules' filters, the top-level positive conditions on",
        "`auditd.data.syscall`, `event.action`, `process.name` and the argument registers `auditd.data.a0`-`a3`",
        "are evaluated on a SYSCALL line's syscall number, `comm` and registers (cached per distinct value);",
        "events no filter can match are not parsed. A join-key",
        "semi-join (`src/auditeql/rules/semijoin.py`) then drops the candidates whose raw (host, pid, ppid)",
        "never has a candidate for every stage of a sample or sequence (a census of the whole input first,",
        "held in memory up to 256 MiB, else a second read). Whole skipped events are taken by one regular",
        "expression each (`LineFeeder.feed_chunks`). Skipped events still reach process ancestry as lazily built",
        "stand-ins, so alerts are identical with and without push-down (`tests/perf/test_pushdown_exact.py`,",
        "`tests/perf/test_semijoin.py`). `query` has its own semi-join for `sample` on NDJSON",
        "(`src/auditeql/sources/ndjson_semijoin.py`: one Hyperscan pass per block sorts lines into the rare",
        "filters' lines, parsed at once for their keys, and the common filter's lines, held aside; then only",
        "those whose raw text can hold a surviving key are parsed; when a second CPU is idle a forked worker",
        "classifies the second half of a large file. `tests/perf/test_query_semijoin.py`,",
        "`tests/perf/test_query_onepass.py`).",
    ]
    if others:
        parts += ["", "## Other benchmark scripts (benchmarks/bench_*.py, their own output)", ""]
        for name, text in others:
            parts += [f"### {name}", "", "```", text, "```", ""]
    doc = ROOT / "docs" / "performance.md"
    kept = ""
    if doc.exists():  # keep the hand-written analysis at the end
        old = doc.read_text()
        i = old.find("\n## Where the time goes")
        kept = old[i:] if i >= 0 else ""
    doc.write_text("\n".join(parts) + "\n" + kept)


if __name__ == "__main__":
    main()
