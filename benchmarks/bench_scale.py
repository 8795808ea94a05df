"""Scale-out benchmark: the seed rule on 2M+ events, Python engine vs DuckDB vs Spark.

    .venv/bin/python benchmarks/bench_scale.py                    # 2,000,000+ events, best of 2
    .venv/bin/python benchmarks/bench_scale.py --events 200000 --repeat 1 --no-spark

Input: Auditbeat-shaped ECS NDJSON from benchmarks/data.py (the real recording replicated, each
copy shifted in time and pid space, so every copy raises the seed rule's 9 samples), and the same
documents converted once to Parquet with ``auditeql convert``'s writer (conversion not timed).

Rows, each a child process timed by wall clock (interpreter start, imports and, for Spark,
session start included; best of ``--repeat``), interleaved so machine load hits all alike:

* python: ``auditeql query <seed rule>`` (the Python engine with its literal line prefilter)
* duckdb-ndjson / duckdb-parquet: ``auditeql.scale.duckdb.run``
* spark-local[1] / spark-local[2] on Parquet: ``auditeql.scale.spark.run``

Every row must return the same samples — the same join keys with the same events, in the same
order (checked by a digest of each row's output); events/s and the ratio to the Python row of
the same run are printed. ``--only`` restricts the run to some rows (the Python anchor always
runs). The children also report their in-process query time, shown too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
PY = sys.executable
SEED_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"


def seed_query() -> str:
    from auditeql.rules.loader import builtin_rules

    return next(r.query for r in builtin_rules() if r.rule_id == SEED_ID)


def child(kind: str, path: str, size: int) -> None:
    """Run one engine and print a JSON line: query seconds and a digest of the samples."""
    from auditeql.eql import compile_query
    from auditeql.eql.plan import QueryOptions

    plan = compile_query(seed_query())
    options = QueryOptions(size=size)
    t0 = time.perf_counter()
    if kind.startswith("duckdb"):
        from auditeql.scale import duckdb as sdb

        result = sdb.run(plan, [path], options)
        dt = time.perf_counter() - t0
    else:
        from auditeql.scale import spark as ssp

        master = kind.split("-", 1)[1]
        spark = ssp.session(master, conf={"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "4"})
        t0 = time.perf_counter()  # the query, not the session start
        result = ssp.run(plan, [path], options, spark=spark)
        dt = time.perf_counter() - t0
    print(json.dumps({"query_s": dt, "samples": len(result),
                      "digest": digest((list(m.join_keys), m.events) for m in result)}))


def digest(samples: Any) -> str:
    """One hash of the samples in order: join keys and, per event, its time and sequence number."""
    h = hashlib.sha256()
    for keys, events in samples:
        marks = [None if e is None else [e.get("@timestamp"), (e.get("auditd") or {}).get("sequence")]
                 for e in events]
        h.update(json.dumps([keys, marks]).encode() + b"\n")
    return h.hexdigest()[:16]


def python_digest(out: str) -> str:
    rows = (json.loads(line) for line in out.splitlines() if line.strip())
    return digest((r["join_keys"], r["events"]) for r in rows)


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])}…: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--only", action="append", default=[], metavar="PREFIX",
                    help="run only rows whose name starts with PREFIX (repeatable; e.g. duckdb, spark)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    import data  # benchmarks/data.py

    nd_path, n_docs, copies = data.ecs_ndjson(args.events)
    pq_path = nd_path.with_suffix(".parquet")
    if not pq_path.exists():
        from auditeql.scale.parquet import convert_ndjson_with_duckdb

        t0 = time.perf_counter()
        convert_ndjson_with_duckdb([str(nd_path)], str(pq_path) + ".tmp")  # what `auditeql convert` does
        os.replace(str(pq_path) + ".tmp", pq_path)
        print(f"converted to Parquet in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    size = copies * 20  # room for every sample (9 per copy)
    print(f"# seed rule over {n_docs:,} events ({copies} copies of the recording); "
          f"NDJSON {nd_path.stat().st_size / 1e6:.0f} MB, Parquet {pq_path.stat().st_size / 1e6:.0f} MB; "
          f"{os.cpu_count()} cores; best of {args.repeat}")

    query = seed_query()
    rows: dict[str, list[str]] = {
        "python (auditeql query)": [PY, "-m", "auditeql.cli", "query", "--size", str(size), query, str(nd_path)],
        "duckdb ndjson": [PY, __file__, "--child", "duckdb", str(nd_path), str(size)],
        "duckdb parquet": [PY, __file__, "--child", "duckdb", str(pq_path), str(size)],
    }
    if not args.no_spark:
        rows["spark local[1] parquet"] = [PY, __file__, "--child", "spark-local[1]", str(pq_path), str(size)]
        rows["spark local[2] parquet"] = [PY, __file__, "--child", "spark-local[2]", str(pq_path), str(size)]
    if args.only:
        rows = {k: v for k, v in rows.items() if k.startswith("python") or any(k.startswith(p) for p in args.only)}
    best: dict[str, float] = {}
    query_s: dict[str, float] = {}
    counts: dict[str, int] = {}
    digests: dict[str, str] = {}
    for _ in range(args.repeat):
        for name, cmd in rows.items():
            wall, out = timed(cmd)
            best[name] = min(best.get(name, wall), wall)
            if name.startswith("python"):
                counts[name] = sum(1 for line in out.splitlines() if line.strip())
                digests[name] = python_digest(out)
            else:
                info = json.loads(out.strip().splitlines()[-1])
                counts[name] = info["samples"]
                digests[name] = info["digest"]
                query_s[name] = min(query_s.get(name, info["query_s"]), info["query_s"])
    expected = copies * 9
    anchor_name = "python (auditeql query)"
    anchor = best[anchor_name]
    print(f"{'engine':26} {'wall s':>8} {'events/s':>12} {'vs python':>10} {'query s':>8}  samples")
    for name in rows:
        eps = n_docs / best[name]
        q = f"{query_s[name]:8.1f}" if name in query_s else f"{'':>8}"
        print(f"{name:26} {best[name]:8.1f} {eps:12,.0f} {anchor / best[name]:10.2f} {q}  {counts[name]}")
    bad = {k: v for k, v in counts.items() if v != expected}
    if bad:
        raise SystemExit(f"sample counts differ from the expected {expected}: {bad}")
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the engines returned different samples (digests): {digests}")
    print(f"# every row returned the same {expected:,} samples (digest {digests[anchor_name]})")


if __name__ == "__main__":
    main()
