"""Kibana-schedule replay (what `auditeql scan` does) against per-window evaluation (a script, not a test).

    .venv/bin/python benchmarks/bench_replay.py                 # 20 copies of the corpus, best of 3
    .venv/bin/python benchmarks/bench_replay.py --docs 200000 --repeat 3

Input: the real corpus's Auditbeat-shaped documents replicated (benchmarks/data.py), parsed once
before timing. Measured in the same run, best of ``--repeat``, on the same documents:

* anchor: one ``run_batch`` of the seed rule over all documents (no windows at all: the floor
  of a single pass, and a wrong answer for Kibana parity since it joins across windows);
* per-window: every scheduled run (interval 5m, look-back 9m) evaluated over all documents in
  its window (sorted once, windows cut by bisection), alerts deduplicated by id;
* replay: :class:`auditeql.rules.replay.Replayer` (documents tested against the filters once,
  only candidates kept, only windows with new candidates evaluated).

Prints seconds, documents/s and ratios (per-window / replay, replay / anchor), and checks that
per-window and replay give the same alert ids.
"""

from __future__ import annotations

import argparse
import bisect
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402

from auditeql.alerts.build import build_alerts  # noqa: E402
from auditeql.engine import run_batch, timestamp_ms  # noqa: E402
from auditeql.rules import builtin_rules  # noqa: E402
from auditeql.rules.replay import Replayer, query_options, run_range, window_time  # noqa: E402


def per_window(rule, docs):
    stamped = sorted(((window_time(d, rule, timestamp_ms), i, d) for i, d in enumerate(docs)), key=lambda s: (s[0], s[1]))
    keys = [s[0] for s in stamped]
    opts = query_options(rule)
    seen, out = set(), []
    for t in run_range(rule, keys[0], keys[-1]):
        lo = bisect.bisect_left(keys, t - rule.from_offset_ms)
        hi = bisect.bisect_right(keys, t - rule.to_offset_ms)
        if lo >= hi:
            continue
        for result in run_batch(rule.plan, [s[2] for s in stamped[lo:hi]], opts):
            for alert in build_alerts(rule, result, run_time_ms=t):
                if alert["kibana.alert.uuid"] not in seen:
                    seen.add(alert["kibana.alert.uuid"])
                    out.append(alert["kibana.alert.uuid"])
    return out


def replay(rule, docs):
    rp = Replayer([rule])
    for d in docs:
        rp.feed(d)
    return [a["kibana.alert.uuid"] for a in rp.finish().alerts]


def anchor(rule, docs):
    return run_batch(rule.plan, docs, query_options(rule))


def best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=60_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path, n, copies = data.ecs_ndjson(args.docs)
    with open(path, "rb") as fh:
        docs = [orjson.loads(line) for line in fh]
    rule = next(r for r in builtin_rules() if r.rule_id == "a5eb21b7-13cc-4b94-9fe2-29bb2914e037")
    t_anchor, _ = best(lambda: anchor(rule, docs), args.repeat)
    t_window, ids_window = best(lambda: per_window(rule, docs), args.repeat)
    t_replay, ids_replay = best(lambda: replay(rule, docs), args.repeat)
    same = ids_window == ids_replay
    print(f"bench_replay: {len(docs)} documents ({copies} copies of the corpus), seed rule, best of {args.repeat}")
    print(f"  anchor  one run_batch over everything : {t_anchor:8.3f} s  {len(docs) / t_anchor:10,.0f} docs/s")
    print(f"  per-window evaluation (every run)     : {t_window:8.3f} s  {len(docs) / t_window:10,.0f} docs/s")
    print(f"  replay  (auditeql scan)               : {t_replay:8.3f} s  {len(docs) / t_replay:10,.0f} docs/s")
    print(f"  ratio per-window / replay = {t_window / t_replay:.2f}   replay / anchor = {t_replay / t_anchor:.2f}")
    print(f"  same alerts (per-window vs replay): {same}  ({len(ids_replay)} alert documents)")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
