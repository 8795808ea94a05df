"""Benchmark: ``auditeql query`` vs the ``eql`` package's PythonEngine: the seed rule and its filters.

Uses >= 200k Auditbeat-shaped ECS documents: the real recording
(../shared/corpus/udp-shells-1/auditbeat_oracle.ndjson.gz) replicated by ``benchmarks/data.py``
(shifted times/pids/sequences, Auditbeat's full ``host``/``agent``/``ecs`` blocks, no
``event.original``; cached under /tmp/auditeql-bench), then times (best of N, JSON parsing
included in both), for the full seed-rule ``sample`` query and for each of its three filters
as an event query:

* anchor: eql 1.0.1 PythonEngine (Elasticsearch syntax enabled) reading the same file with the
  package's own JSON-lines reader (``eql.utils.stream_json_lines``), the event category taken
  from ``event.category``; also the same engine fed by orjson (a harder anchor);
* auditeql: the real ``auditeql query`` command as a subprocess, output to /dev/null.

For the sample row, eql is given what it needs to match at all (as benchmarks/eql_anchor.py):
single-valued ``event.category``/``event.type`` arrays become scalars (eql has no any-value
``==``), ``cidrMatch`` spelled its way and ``"::1/128"``. Prints events/s and the ratios. Not a test.

    .venv/bin/python benchmarks/bench_query.py [--docs 200000] [--repeat 3] [--only seed,filter2]
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "udp-shells-1" / "auditbeat_oracle.ndjson.gz"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpus/udp-shells-1/auditbeat_oracle.ndjson.gz")

SHELLS = (
    '"bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "perl", "python*", "nc", "ncat", "netcat", '
    '"php*", "ruby", "openssl", "awk", "telnet", "lua*", "socat"'
)
#: The seed rule's first filter, as an event query.
QUERY = (
    'process where host.os.type == "linux" and event.type == "start" and event.action == "executed" '
    f"and process.name : ({SHELLS})"
)


def build_corpus(n_docs: int) -> tuple[Path, int]:
    """The realistic replicated file of benchmarks/data.py (helper-owned generator, cached)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from data import ecs_ndjson

    path, n, _copies = ecs_ndjson(n_docs)
    return path, n


def build_corpus_legacy(path: Path, n_docs: int) -> int:
    """The former generator (small host block, event.original kept); kept for comparison."""
    base = [orjson.loads(line) for line in gzip.decompress(CORPUS.read_bytes()).splitlines() if line.strip()]
    written = 0
    rounds = 0
    with path.open("wb") as out:
        while written < n_docs:
            for doc in base:
                if written >= n_docs:
                    break
                d = orjson.loads(orjson.dumps(doc))
                ts = d.get("@timestamp", "")
                if isinstance(ts, str) and len(ts) >= 19:
                    # shift by whole hours, keeping the ISO shape
                    hh = (int(ts[11:13]) + rounds) % 24
                    day = int(ts[8:10]) + (int(ts[11:13]) + rounds) // 24
                    d["@timestamp"] = f"{ts[:8]}{day:02d}T{hh:02d}{ts[13:]}" if day <= 28 else ts
                proc = d.get("process")
                if isinstance(proc, dict) and isinstance(proc.get("pid"), int):
                    proc["pid"] += rounds * 100_000
                d["host"] = {"id": f"host-{rounds % 17}", "name": f"h{rounds % 17}", "os": {"type": "linux"}}
                out.write(orjson.dumps(d) + b"\n")
                written += 1
            rounds += 1
    return written


SEED = ROOT / "tests" / "fixtures" / "spec" / "seed-rule.md"
if not SEED.exists():
    SEED = Path("/work/shared/spec/seed-rule.md")


def seed_query() -> str:
    text = SEED.read_text()
    return text[text.index("## Query (verbatim)"):].split("```")[1].strip()


def seed_filters() -> dict[str, str]:
    """The seed rule's three filters as event queries (printed back from our own parser)."""
    from auditeql.eql import parse_query, to_text

    if not SEED.exists():
        return {"filter1-execve": QUERY}
    rule = parse_query(SEED.read_text().split("```")[1])
    names = ["filter1-execve", "filter2-socket", "filter3-connect"]
    return {n: to_text(sub.filter) for n, sub in zip(names, rule.subqueries)}


def run_eql(path: Path, reader: str = "eql") -> int:
    """eql's PythonEngine; JSON read with the package's own line reader (``eql.utils``) or orjson."""
    import eql
    from eql.utils import stream_json_lines
    from eql.parser import allow_sample, elasticsearch_syntax, ignore_missing_functions

    sample = QUERY.lstrip().startswith("sample")
    with elasticsearch_syntax, ignore_missing_functions, allow_sample:
        # eql: case-sensitive function names, and no bare address as a CIDR block (spec F01)
        query = eql.parse_query(QUERY.replace("cidrmatch(", "cidrMatch(").replace('"::1")', '"::1/128")'))
    hits: list = []
    engine = eql.PythonEngine()
    engine.add_query(query)
    engine.add_output_hook(hits.append)
    loads = orjson.loads
    Event = eql.Event

    def docs():
        if reader == "orjson":
            with path.open("rb") as fh:
                for line in fh:
                    yield loads(line)
        else:
            with path.open(encoding="utf-8") as fh:
                yield from stream_json_lines(fh)

    def events():
        for doc in docs():
            event = doc.get("event", {})
            if sample:
                # eql compares a list to a string as unequal: give it scalars (eql_anchor.py)
                for key in ("category", "type"):
                    v = event.get(key)
                    if isinstance(v, list) and len(v) == 1:
                        event[key] = v[0]
            cat = event.get("category")
            if isinstance(cat, list):
                cat = cat[0] if cat else "generic"
            yield Event(cat or "generic", doc.get("@timestamp") if sample else 0, doc)

    engine.stream_events(events())
    engine.finalize()
    return len(hits)


def run_auditeql(path: Path, src: str | None = None, extra: tuple[str, ...] = ()) -> int:
    """The real command; ``src`` = another source tree to run instead (e.g. an older checkout)."""
    cmd = [sys.executable, "-m", "auditeql.cli", "query", "--size", "100000000", *extra, QUERY, str(path)]
    env = {**os.environ, "PYTHONPATH": src} if src else None
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, env=env)
    return p.stdout.count(b"\n")


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(fn, path: Path, repeat: int) -> tuple[float, float, int]:
    """Best wall time and best CPU time (this process + children) over ``repeat`` runs."""
    best_wall = best_cpu = float("inf")
    count = -1
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _cpu()
        count = fn(path)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, _cpu() - c0)
    return best_wall, best_cpu, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated file (--legacy-data only)")
    ap.add_argument("--baseline-src", default="", help="also time auditeql from this src/ tree (before/after)")
    ap.add_argument("--skip-eql-reader", action="store_true", help="skip the eql.utils-reader anchor (slowest)")
    ap.add_argument("--legacy-data", action="store_true", help="the former in-script generator instead of data.py")
    ap.add_argument("--only", default="", help="comma-separated: run only filters whose name contains one")
    ap.add_argument("--jobs-1", action="store_true",
                    help="also time the sample in one process (--jobs 1: no helper process reading the second half)")
    ap.add_argument("--single-pass", action="store_true",
                    help="also time the sample with its semi-join off (--semijoin off: one pass, as before)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aeq-bench-"))
    try:
        if args.legacy_data:
            path = tmp / "auditbeat.ndjson"
            n = build_corpus_legacy(path, args.docs)
        else:
            path, n = build_corpus(args.docs)
        size_mb = path.stat().st_size / 1e6
        print(f"corpus: {n} documents, {size_mb:.1f} MB ({path})")
        global QUERY
        rows = {"seed-rule-sample": seed_query(), **seed_filters()}
        for name, query in rows.items():
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            QUERY = query
            print(f"\n[{name}] {QUERY[:110]}…")
            if args.skip_eql_reader:
                t_eql = cpu_eql = float("nan")
                c_eql = None
            else:
                t_eql, cpu_eql, c_eql = best_of(run_eql, path, args.repeat)
                print(f"  eql PythonEngine : wall {t_eql:7.2f} s {n / t_eql:10,.0f} ev/s | cpu {cpu_eql:7.2f} s "
                      f"{n / cpu_eql:10,.0f} ev/s  ({c_eql} matches; JSON read by eql.utils)")
            t_eqo, cpu_eqo, c_eqo = best_of(lambda p: run_eql(p, "orjson"), path, args.repeat)
            print(f"  eql + orjson     : wall {t_eqo:7.2f} s {n / t_eqo:10,.0f} ev/s | cpu {cpu_eqo:7.2f} s "
                  f"{n / cpu_eqo:10,.0f} ev/s  ({c_eqo} matches; same engine, faster JSON: a harder anchor)")
            if args.baseline_src:
                t_old, cpu_old, c_old = best_of(lambda p: run_auditeql(p, args.baseline_src), path, args.repeat)
                print(f"  auditeql (base)  : wall {t_old:7.2f} s {n / t_old:10,.0f} ev/s | cpu {cpu_old:7.2f} s "
                      f"{n / cpu_old:10,.0f} ev/s  ({c_old} matches; src={args.baseline_src})")
            if args.single_pass and QUERY.lstrip().startswith("sample"):
                t_one, cpu_one, c_one = best_of(lambda p: run_auditeql(p, extra=("--semijoin", "off")), path,
                                                args.repeat)
                print(f"  auditeql 1 pass  : wall {t_one:7.2f} s {n / t_one:10,.0f} ev/s | cpu {cpu_one:7.2f} s "
                      f"{n / cpu_one:10,.0f} ev/s  ({c_one} matches; semi-join off)")
            if args.jobs_1 and QUERY.lstrip().startswith("sample"):
                t_j1, cpu_j1, c_j1 = best_of(lambda p: run_auditeql(p, extra=("--jobs", "1")), path, args.repeat)
                print(f"  auditeql --jobs 1: wall {t_j1:7.2f} s {n / t_j1:10,.0f} ev/s | cpu {cpu_j1:7.2f} s "
                      f"{n / cpu_j1:10,.0f} ev/s  ({c_j1} matches; one process) -> ratio to eql wall "
                      f"{t_eql / t_j1:.1f}x, cpu {cpu_eql / cpu_j1:.1f}x; to eql+orjson wall {t_eqo / t_j1:.1f}x, "
                      f"cpu {cpu_eqo / cpu_j1:.1f}x")
            t_aeq, cpu_aeq, c_aeq = best_of(run_auditeql, path, args.repeat)
            print(f"  auditeql query   : wall {t_aeq:7.2f} s {n / t_aeq:10,.0f} ev/s | cpu {cpu_aeq:7.2f} s "
                  f"{n / cpu_aeq:10,.0f} ev/s  ({c_aeq} matches)")
            if args.single_pass and QUERY.lstrip().startswith("sample"):
                print(f"  semi-join vs 1 pass: wall {t_one / t_aeq:.2f}x, cpu {cpu_one / cpu_aeq:.2f}x")
            if c_eqo != c_aeq and name.startswith("seed"):
                print(f"  note: result counts differ (eql {c_eqo}, auditeql {c_aeq}): eql 1.0.1's sample is not "
                      "Elasticsearch's; auditeql's is the corpus README's 9 alerts per copy")
            elif c_eqo != c_aeq:
                print(f"  note: match counts differ (eql {c_eqo}, auditeql {c_aeq}): eql's == has no any-value "
                      "semantics for ECS arrays such as event.type [\"start\"] (spec §6); Elasticsearch's has")
            if args.baseline_src:
                print(f"  speed-up vs base : wall {t_old / t_aeq:.1f}x, cpu {cpu_old / cpu_aeq:.1f}x")
            print(f"  ratio auditeql/eql: wall {t_eql / t_aeq:.1f}x, cpu {cpu_eql / cpu_aeq:.1f}x (target >= 10x); "
                  f"vs eql+orjson: wall {t_eqo / t_aeq:.1f}x, cpu {cpu_eqo / cpu_aeq:.1f}x")
    finally:
        if not args.keep:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()


if __name__ == "__main__":
    main()
