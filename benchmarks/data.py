"""Benchmark and soak inputs made from a real recording, replicated (a library and a script).

    .venv/bin/python benchmarks/data.py                # build both files, print their paths and sizes
    .venv/bin/python benchmarks/data.py --records 1000000 --docs 500000

Synthetic data would flatter a parser (regular field order, no ENRICHED tails, no hex-encoded
fields). So the inputs are the real corpus ``udp-shells-1`` (kernel audit + auditd 3.0.9,
ENRICHED format), copied as many times as needed, each copy moved to its own stretch of time:

* raw audit.log: every copy's ``msg=audit(SECONDS.MS:SERIAL)`` is shifted by ``copy x period``
  seconds and ``copy x serial span`` serials, and its SYSCALL records' ``pid=``/``ppid=`` by
  ``copy x PID_STRIDE`` — so events never merge across copies, samples and sequences never join
  across copies, and every copy raises the same alerts as the original (9 for the seed rule);
* Auditbeat-shaped ECS NDJSON: the corpus's go-libaudit oracle documents (what Auditbeat made of
  the same log) with ``@timestamp``, ``auditd.sequence``, ``process.pid``/``process.parent.pid``
  shifted the same way, the ``host`` block Auditbeat's ``add_host_metadata`` adds, the ``agent``/
  ``ecs`` fields every Beat adds, and without ``event.original`` (Auditbeat's default
  ``include_raw_message: false``).

Files are cached under ``$AUDITEQL_BENCH_DATA`` (default ``/tmp/auditeql-bench``), named by
their parameters, and rebuilt only when missing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

CORPUS = Path(os.environ.get("AUDITEQL_CORPUS", str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "udp-shells-1")))
CACHE = Path(os.environ.get("AUDITEQL_BENCH_DATA", "/tmp/auditeql-bench"))
#: The host the replicated recording pretends to come from (host.id is what rules join on).
HOST_ID = "5f0c1a3e9b7d4c2a8e6f1b3d5a7c9e0f"
HOST_NAME = "bench-host"
#: Added to pid/ppid per copy; copies stay far below Linux's pid_max (4194304) for ~60 copies.
PID_STRIDE = 65_536
#: Gap (seconds) between the end of one copy and the start of the next: more than any rule's
#: maxspan (5m) and Kibana look-back (9m), so copies never see each other.
GAP_S = 3_600

_HEADER = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
_PIDS = re.compile(rb" (pid|ppid)=(\d+)")


def corpus_lines() -> list[bytes]:
    """The real audit.log lines (with their newlines)."""
    with gzip.open(CORPUS / "audit.log.gz", "rb") as fh:
        return fh.readlines()


def corpus_docs() -> list[dict]:
    with gzip.open(CORPUS / "auditbeat_oracle.ndjson.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def _span(lines: list[bytes]) -> tuple[int, int, int, int]:
    """(first second, last second, first serial, last serial) of the recording."""
    secs, serials = [], []
    for line in lines:
        m = _HEADER.search(line)
        if m:
            secs.append(int(m.group(1)))
            serials.append(int(m.group(3)))
    return min(secs), max(secs), min(serials), max(serials)


def period(lines: list[bytes]) -> tuple[int, int]:
    """(seconds, serials) one copy is moved by relative to the previous one."""
    s0, s1, n0, n1 = _span(lines)
    return s1 - s0 + 1 + GAP_S, n1 - n0 + 1 + 1_000


def replicate_audit(copies: int, lines: list[bytes] | None = None) -> Iterator[bytes]:
    """The corpus ``copies`` times, each copy shifted in time, serial and pid (see module doc)."""
    lines = corpus_lines() if lines is None else lines
    dt_s, dn = period(lines)
    for k in range(copies):
        if k == 0:
            yield from lines
            continue
        shift_s, shift_n, shift_pid = k * dt_s, k * dn, k * PID_STRIDE

        def header(m: re.Match[bytes]) -> bytes:
            return b"msg=audit(%d.%s:%d)" % (int(m.group(1)) + shift_s, m.group(2), int(m.group(3)) + shift_n)

        def pids(m: re.Match[bytes]) -> bytes:
            return b" %s=%d" % (m.group(1), int(m.group(2)) + shift_pid)

        for line in lines:
            line = _HEADER.sub(header, line, count=1)
            if line.startswith(b"type=SYSCALL ") or b" type=SYSCALL " in line[:64]:
                body, sep, tail = line.partition(b"\x1d")  # never touch auditd's interpretation
                line = _PIDS.sub(pids, body) + sep + tail
            yield line


def _shift_ts(value: str, seconds: int) -> str:
    t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_HOST = {
    "architecture": "x86_64",
    "containerized": False,
    "hostname": HOST_NAME,
    "id": HOST_ID,
    "ip": ["192.0.2.10", "fe80::1"],
    "mac": ["02-00-00-00-00-01"],
    "name": HOST_NAME,
    "os": {
        "codename": "bookworm",
        "family": "debian",
        "kernel": "6.18.0-amd64",
        "name": "Debian GNU/Linux",
        "platform": "debian",
        "type": "linux",
        "version": "12 (bookworm)",
    },
}
_AGENT = {
    "ephemeral_id": "0d7f3a52-1c1e-4e8b-9d39-6c9a1b6b2f10",
    "id": "6b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
    "name": HOST_NAME,
    "type": "auditbeat",
    "version": "8.17.0",
}


def replicate_ecs(copies: int, docs: list[dict] | None = None, lines: list[bytes] | None = None) -> Iterator[bytes]:
    """Auditbeat-shaped NDJSON lines: the oracle documents ``copies`` times (see module doc)."""
    docs = corpus_docs() if docs is None else docs
    dt_s, dn = period(corpus_lines() if lines is None else lines)
    dumps = orjson.dumps
    for k in range(copies):
        shift_s, shift_n, shift_pid = k * dt_s, k * dn, k * PID_STRIDE
        for doc in docs:
            out = dict(doc)
            out["@timestamp"] = _shift_ts(doc["@timestamp"], shift_s) if shift_s else doc["@timestamp"]
            auditd = dict(out.get("auditd") or {})
            if "sequence" in auditd:
                auditd["sequence"] = auditd["sequence"] + shift_n
            out["auditd"] = auditd
            event = dict(out.get("event") or {})
            event.pop("original", None)
            out["event"] = event
            proc = out.get("process")
            if isinstance(proc, dict):
                proc = dict(proc)
                if isinstance(proc.get("pid"), int):
                    proc["pid"] += shift_pid
                parent = proc.get("parent")
                if isinstance(parent, dict) and isinstance(parent.get("pid"), int):
                    proc["parent"] = {**parent, "pid": parent["pid"] + shift_pid}
                out["process"] = proc
            out["host"] = _HOST
            out["agent"] = _AGENT
            out["ecs"] = {"version": "8.0.0"}
            yield dumps(out) + b"\n"


def _build(path: Path, lines: Iterator[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as fh:
        for line in lines:
            fh.write(line)
    tmp.replace(path)
    return path


def copies_for(target: int, per_copy: int) -> int:
    return max(1, -(-target // per_copy))


def audit_log(min_records: int = 300_000) -> tuple[Path, int, int]:
    """(path, records, copies) of a replicated raw audit.log with at least ``min_records`` lines."""
    lines = corpus_lines()
    copies = copies_for(min_records, len(lines))
    path = CACHE / f"audit-{copies}x.log"
    if not path.exists():
        _build(path, replicate_audit(copies, lines))
    return path, copies * len(lines), copies


def ecs_ndjson(min_docs: int = 200_000) -> tuple[Path, int, int]:
    """(path, documents, copies) of Auditbeat-shaped ECS NDJSON with at least ``min_docs`` lines."""
    docs = corpus_docs()
    copies = copies_for(min_docs, len(docs))
    path = CACHE / f"auditbeat-{copies}x.ndjson"
    if not path.exists():
        _build(path, replicate_ecs(copies, docs))
    return path, copies * len(docs), copies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=300_000, help="minimum raw audit records")
    ap.add_argument("--docs", type=int, default=200_000, help="minimum ECS documents")
    args = ap.parse_args()
    for name, (path, n, copies) in (("audit.log", audit_log(args.records)), ("ECS NDJSON", ecs_ndjson(args.docs))):
        print(f"{name}: {path} ({n:,} lines, {copies} copies, {path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
