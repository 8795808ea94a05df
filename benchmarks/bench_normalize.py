"""Records per second: `auditeql normalize` beside `ausearch -i` on the same multi-MB audit.log.

The anchor is auditd's own interpreter (`ausearch -i`, C) reading the same file in the same run.
The file is the udp-shells-1 corpus (real ENRICHED auditd lines) replicated N times with serials,
timestamps and pids shifted so that every copy is a distinct stretch of time. Best of 3 per tool, both
as whole commands (process start-up included), plus the in-process Normalizer alone.

    .venv/bin/python benchmarks/bench_normalize.py [--copies 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "udp-shells-1" / "audit.log.gz"
_HEADER = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
_PID = re.compile(rb" (ppid|pid)=(\d+)")


def build_file(path: Path, copies: int) -> int:
    with gzip.open(CORPUS, "rb") as fh:
        lines = fh.readlines()
    serials = [int(m.group(3)) for m in (_HEADER.search(ln) for ln in lines) if m]
    secs = [int(m.group(1)) for m in (_HEADER.search(ln) for ln in lines) if m]
    serial_span = max(serials) - min(serials) + 1000
    time_span = max(secs) - min(secs) + 60
    with open(path, "wb") as out:
        for k in range(copies):
            def shift(m: re.Match[bytes], k: int = k) -> bytes:
                return b"msg=audit(%d.%s:%d)" % (int(m.group(1)) + k * time_span, m.group(2), int(m.group(3)) + k * serial_span)
            def pid(m: re.Match[bytes], k: int = k) -> bytes:
                return b" %s=%d" % (m.group(1), int(m.group(2)) + k * 100000)
            # shifted pids too, so that SYSCALL records are as unique as in a real log
            out.writelines(_PID.sub(pid, _HEADER.sub(shift, ln)) for ln in lines)
    return len(lines) * copies


def best_of(runs: int, argv: list[str]) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds user+sys of the child) over ``runs`` runs.

    CPU time is printed too because the machine is shared: wall time moves with other people's
    load, CPU time much less.
    """
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best, best_cpu


def in_process(path: Path, runs: int) -> tuple[float, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import orjson

    from auditeql.audit.host import HostInfo
    from auditeql.audit.pipeline import Normalizer

    best, best_cpu = float("inf"), float("inf")
    host = HostInfo.detect()
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        n = Normalizer("auditd-manager", host)
        dumps = orjson.dumps
        with open(path, "rb") as fh:
            for line in fh:
                for doc in n.feed_line(line):
                    dumps(doc)
        for doc in n.flush():
            dumps(doc)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("ausearch") is None:
        sys.exit("ausearch not installed (Debian package auditd): no anchor to compare with")
    auditeql = [sys.executable, "-m", "auditeql.cli"]
    with tempfile.TemporaryDirectory(prefix="aeq-bench-") as tmp:
        path = Path(tmp) / "audit.log"
        records = build_file(path, args.copies)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {records} records, {size_mb:.1f} MB ({args.copies} shifted copies of {CORPUS.name}); best of {args.runs}")
        t_ausearch = best_of(args.runs, ["ausearch", "-i", "--input", str(path)])
        t_normalize = best_of(args.runs, [*auditeql, "normalize", str(path)])
        t_beat = best_of(args.runs, [*auditeql, "normalize", "--flavor", "auditbeat", str(path)])
        t_inproc = in_process(path, args.runs)
    rows = [("ausearch -i (anchor)", t_ausearch), ("auditeql normalize", t_normalize),
            ("auditeql normalize --flavor auditbeat", t_beat), ("Normalizer in-process (AM)", t_inproc)]
    a_wall, a_cpu = t_ausearch
    print(f"  {'':40s} {'wall':>8s} {'records/s':>10s} {'ratio':>6s}   {'cpu':>7s} {'records/s':>10s} {'ratio':>6s}")
    for name, (wall, cpu) in rows:
        print(f"  {name:40s} {wall:7.3f}s {records / wall:10.0f} {a_wall / wall:5.2f}x   {cpu:6.3f}s {records / cpu:10.0f} {a_cpu / cpu:5.2f}x")
    print("  ratio = ausearch time / this time (> 1 means faster than ausearch -i)")


if __name__ == "__main__":
    main()
