"""Bad input is counted and skipped, and costs nothing valid around it.

* garbage between events (random bytes, binary, invalid UTF-8, overlong lines, cut-off records,
  lines of other logs) changes none of the surrounding documents;
* each kind of bad line is counted under its reason and skipped, in the library, in
  ``auditeql normalize`` and ``auditeql scan`` (a warning, never a traceback), and in the NDJSON
  reader.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.audit.records import MAX_LINE_BYTES
from auditeql.cli import main as cli

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
HOST = HostInfo.detect(host_id="garbage-host", host_name="garbage")

GARBAGE = {
    "binary": b"\x00\x01\x02type=SYSCALL\x7f\xff",
    "invalid-utf8": b"type=SYSCALL msg=audit(1795961274.517:1): comm=\"\xff\xfe\"",
    "too-long": b"type=EXECVE msg=audit(1795961274.517:2): a0=\"" + b"A" * (MAX_LINE_BYTES + 10) + b'"',
    "not-audit": b"Nov 29 12:00:00 host sshd[1]: Accepted publickey for root",
    "truncated": b'type=SYSCALL msg=audit(1795961274.517:3): arch=c000003e syscall=59 comm="ba',
    "bad-header": b"type=SYSCALL msg=audit(17959612x4.517:4): arch=c000003e",
    "unknown-type": b"type=NO_SUCH_TYPE msg=audit(1795961274.517:5): a=b",
}


@pytest.fixture(scope="module")
def real_lines() -> list[bytes]:
    if CORPUS.exists():
        return gzip.decompress(CORPUS.read_bytes()).splitlines()[:2500]
    fixtures = sorted((Path(__file__).parents[1] / "fixtures" / "audit").glob("*.log"))
    if not fixtures:
        pytest.skip("LOUD SKIP: no real audit recording available")
    return fixtures[0].read_bytes().splitlines()


def _event_boundaries(lines: list[bytes]) -> list[int]:
    """Indexes where a new event (serial) starts."""
    out, last = [], None
    for i, line in enumerate(lines):
        head = line.split(b"msg=audit(", 1)[-1].split(b")", 1)[0]
        if head != last:
            out.append(i)
            last = head
    return out


def _normalize(lines: list[bytes]) -> tuple[list[dict], dict]:
    norm = Normalizer("auditd-manager", HOST)
    docs = [d for line in lines for d in norm.feed_line(line)] + norm.flush()
    return docs, norm.stats


def test_garbage_between_events_changes_no_document(real_lines: list[bytes]) -> None:
    clean_docs, _ = _normalize(real_lines)
    rng = random.Random(9)
    dirty: list[bytes] = []
    inserted: dict[str, int] = {k: 0 for k in GARBAGE}
    starts = set(_event_boundaries(real_lines))
    for i, line in enumerate(real_lines):
        if i in starts and rng.random() < 0.3:
            kind = rng.choice(sorted(GARBAGE))
            dirty.append(GARBAGE[kind])
            inserted[kind] += 1
            if rng.random() < 0.3:
                dirty.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))).replace(b"\n", b""))
        dirty.append(line)
    assert all(inserted.values()), "every kind of garbage should be exercised"
    dirty_docs, stats = _normalize(dirty)
    assert dirty_docs == clean_docs
    for kind, n in inserted.items():
        assert stats["skipped"].get(kind, 0) >= n, (kind, stats["skipped"])


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_each_bad_line_is_counted_under_its_reason(kind: str) -> None:
    norm = Normalizer("auditd-manager", HOST)
    assert norm.feed_line(GARBAGE[kind]) == []
    assert norm.flush() == []
    assert norm.stats["skipped"] == {kind: 1}


def test_normalize_and_scan_cli_report_bad_lines_and_keep_going(tmp_path: Path, real_lines: list[bytes],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    clean = tmp_path / "clean.log"
    clean.write_bytes(b"\n".join(real_lines) + b"\n")
    dirty = tmp_path / "dirty.log"
    dirty.write_bytes(b"\n".join([GARBAGE["binary"], *real_lines[:10], GARBAGE["invalid-utf8"], GARBAGE["too-long"],
                                  *real_lines[10:]]) + b"\n")
    runner = CliRunner()
    a = runner.invoke(cli, ["normalize", "--host-id", "h", str(clean)])
    b = runner.invoke(cli, ["normalize", "--host-id", "h", str(dirty)])
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    assert a.stdout == b.stdout and a.stdout.count("\n") > 100
    assert "Traceback" not in b.stderr
    assert "3 lines skipped" in b.stderr and "binary 1" in b.stderr and "invalid-utf8 1" in b.stderr
    s = runner.invoke(cli, ["scan", "--no-store", "-q", "--format", "ndjson", "--host-id", "h", str(dirty)])
    assert s.exit_code in (0, 1) and "Traceback" not in s.stderr
    assert "3 audit line(s) skipped" in s.stderr


def test_ndjson_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    good = [{"@timestamp": "2026-11-29T10:00:00.000Z", "event": {"category": ["process"]}, "process": {"name": f"p{i}"}}
            for i in range(5)]
    lines = [json.dumps(good[0]).encode(), b"\xff\xfe not json", json.dumps(good[1]).encode(), b"[1, 2]",
             b"{\"truncated\": ", json.dumps(good[2]).encode(), b"\x00" * 50, json.dumps(good[3]).encode(),
             b"{" + b"\"a\":[" * 5000 + b"]" * 5000 + b"}", json.dumps(good[4]).encode()]
    path = tmp_path / "docs.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    res = CliRunner().invoke(cli, ["query", "--size", "100", "process where true", str(path)])
    assert res.exit_code == 0, res.output
    got = [json.loads(x) for x in res.stdout.splitlines()]
    assert [d["process"]["name"] for d in got] == [f"p{i}" for i in range(5)]
    assert "Traceback" not in res.stderr
    assert "unreadable line(s) skipped" in res.stderr
