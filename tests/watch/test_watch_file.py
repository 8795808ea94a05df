"""`watch --source file:PATH` end to end: a real recording written in pieces, across a restart,
a rename rotation and a copytruncate rotation — every event exactly once (no loss, no repeat).

A rule matching every event (``any where true``) turns each audit event into one alert whose id
is derived from the event (host, timestamp, serial), so duplicates and gaps are visible.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.watch.conftest import wait_for

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
AUDITEQL = [sys.executable, "-m", "auditeql.cli"]
EVERY_EVENT = """
[metadata]
creation_date = "2026/11/29"
maturity = "production"

[rule]
author = ["auditeql tests"]
description = "Every event: one alert per audit event, to count events end to end."
from = "now-9m"
interval = "5m"
max_signals = 100000
language = "eql"
license = "Apache-2.0"
name = "Every event"
risk_score = 1
rule_id = "00000000-0000-4000-8000-000000000001"
severity = "low"
type = "eql"
query = "any where true"
"""


def _corpus_lines(n: int) -> list[bytes]:
    if not CORPUS.exists():
        pytest.skip(f"the recording {CORPUS} is not available")
    with gzip.open(CORPUS, "rb") as fh:
        return [fh.readline() for _ in range(n)]


def _serial(line: bytes) -> bytes:
    return line.split(b"msg=audit(", 1)[1].split(b")", 1)[0]


def _boundaries(lines: list[bytes], parts: int) -> list[int]:
    """Split points at event boundaries (after a PROCTITLE, before another serial)."""
    cuts = []
    for k in range(1, parts):
        i = len(lines) * k // parts
        while not (lines[i - 1].startswith(b"type=PROCTITLE") and _serial(lines[i]) != _serial(lines[i - 1])):
            i += 1
        cuts.append(i)
    return cuts


def _uuids(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]  # the writer may be mid-line while we poll
    return [orjson.loads(line)["kibana.alert.uuid"] for line in complete.splitlines() if line.strip()]


class _Watch:
    def __init__(self, log: Path, tmp: Path, out: Path, *extra: str) -> None:
        rule = tmp / "every.toml"
        rule.write_text(EVERY_EVENT)
        self.err = open(tmp / "watch.err", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*AUDITEQL, "watch", "--source", f"file:{log}", "--checkpoint", str(tmp / "cp.json"),
             "--no-builtin", "--rule", str(rule), "--no-store", "--format", "ndjson", "--output", str(out),
             "--health-interval", "0", "--host-id", "test-host", *extra],
            stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True,
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.err.close()


def _reference(lines: list[bytes], tmp: Path) -> list[str]:
    rule = tmp / "every-ref.toml"
    rule.write_text(EVERY_EVENT)
    out = subprocess.run(
        [*AUDITEQL, "watch", "--source", "-", "--no-builtin", "--rule", str(rule), "--no-store", "--format",
         "ndjson", "--health-interval", "0", "--host-id", "test-host"],
        input=b"".join(lines), capture_output=True, timeout=120, check=True,
    ).stdout
    return [orjson.loads(line)["kibana.alert.uuid"] for line in out.splitlines()]


def test_follow_restart_and_rotations_lose_and_repeat_nothing(tmp_path: Path) -> None:
    lines = _corpus_lines(3000)
    expected = _reference(lines, tmp_path)
    assert len(expected) == len(set(expected)) > 500
    a, b, c, d = _boundaries(lines, 5)
    log, out = tmp_path / "audit.log", tmp_path / "alerts.ndjson"
    log.write_bytes(b"".join(lines[:a]))

    # run 1: from the start of the file, then SIGTERM (flush, checkpoint, exit 0)
    w = _Watch(log, tmp_path, out, "--from-start")
    assert wait_for(lambda: len(_uuids(out)) >= 1 and (tmp_path / "cp.json").exists(), 30)
    assert w.stop() == 0
    assert oct((tmp_path / "cp.json").stat().st_mode & 0o777) == "0o600"

    # while it is down: more lines, then auditd-style rotation (rename + new file)
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[a:b]))
    os.rename(log, tmp_path / "audit.log.1")
    log.write_bytes(b"".join(lines[b:c]))

    # run 2: resumes in audit.log.1 from the checkpoint, then audit.log; rotations while running
    w = _Watch(log, tmp_path, out)
    try:
        n_before = len(_uuids(out))
        assert wait_for(lambda: len(_uuids(out)) > n_before, 30)
        time.sleep(0.5)
        os.rename(log, tmp_path / "audit.log.2")  # rename rotation while running
        with open(tmp_path / "audit.log.2", "ab") as fh:  # auditd's last write to the renamed file
            fh.write(b"".join(lines[c:(c + d) // 2]))
        log.write_bytes(b"".join(lines[(c + d) // 2:d]))
        time.sleep(1.0)
        shutil.copyfile(log, tmp_path / "audit.log.3")  # copytruncate rotation while running
        with open(log, "r+b") as fh:
            fh.truncate(0)
        with open(log, "ab") as fh:
            fh.write(b"".join(lines[d:]))
        assert wait_for(lambda: len(_uuids(out)) >= len(expected), 30), (
            f"{len(_uuids(out))} of {len(expected)} events seen"
        )
        time.sleep(0.3)
    finally:
        code = w.stop()
    assert code == 0
    got = _uuids(out)
    dupes = [u for u, n in Counter(got).items() if n > 1]
    assert not dupes, f"{len(dupes)} events were processed twice"
    assert set(got) == set(expected), f"missing {len(set(expected) - set(got))}, unexpected {len(set(got) - set(expected))}"
