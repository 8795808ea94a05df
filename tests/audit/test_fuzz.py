"""Property tests: whatever the bytes, the normalizer never raises, and valid records around
damaged ones keep their documents."""

from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.audit.pipeline import Normalizer
from auditeql.audit.records import AuditRecord, parse_line

from .conftest import CORPUS, FIXTURES

_LINES: list[bytes] = []


def _sample_lines() -> list[bytes]:
    if not _LINES:
        with gzip.open(CORPUS / "audit.log.gz", "rb") as fh:
            corpus = fh.readlines()[:400]
        _LINES.extend(corpus + (FIXTURES / "raw_node.log").read_bytes().splitlines(keepends=True)[:120])
    return _LINES


def _run(lines: list[bytes], flavor: str = "auditd-manager") -> tuple[list[dict], Normalizer]:
    n = Normalizer(flavor, None)
    docs = [d for line in lines for d in n.feed_line(line)] + n.flush()
    return docs, n


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_lines_never_raise(data: st.DataObject) -> None:
    lines = _sample_lines()
    picked = data.draw(st.lists(st.sampled_from(lines), min_size=1, max_size=40))
    mutated = []
    for line in picked:
        op = data.draw(st.sampled_from(["keep", "cut", "insert", "flip", "junk"]))
        if op == "cut":
            line = line[: data.draw(st.integers(0, len(line)))]
        elif op == "insert":
            pos = data.draw(st.integers(0, len(line)))
            line = line[:pos] + data.draw(st.binary(max_size=12)) + line[pos:]
        elif op == "flip" and line:
            pos = data.draw(st.integers(0, len(line) - 1))
            line = line[:pos] + bytes([line[pos] ^ data.draw(st.integers(1, 255))]) + line[pos + 1 :]
        elif op == "junk":
            line = data.draw(st.binary(max_size=200))
        mutated.append(line)
    for flavor in ("auditbeat", "auditd-manager"):
        docs, n = _run(mutated, flavor)
        assert n.stats["records"] + sum(n.stats["skipped"].values()) <= len(mutated)
        for doc in docs:
            assert "@timestamp" in doc and "event" in doc


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.integers(0, 300))
def test_garbage_inserted_anywhere_changes_nothing(garbage: list[bytes], where: int) -> None:
    lines = _sample_lines()[:300]
    # garbage that is not itself a parseable record (a random valid record would be a new event)
    junk = [g.replace(b"\n", b" ") + b"\n" for g in garbage if not isinstance(parse_line(g), AuditRecord)]
    clean, _ = _run(lines)
    dirty, n = _run(lines[:where] + junk + lines[where:])
    assert dirty == clean
    assert sum(n.stats["skipped"].values()) == sum(1 for j in junk if j.strip())
