"""The health line and per-interval max_signals, through the real command."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from auditeql.sources.netlink import AuditStatus
from auditeql.watch.health import HealthReporter
from tests.watch.test_watch_file import EVERY_EVENT

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"


def test_rates_are_per_second_since_the_previous_report() -> None:
    now = [100.0]
    status = AuditStatus(enabled=1, failure=1, pid=0, rate_limit=0, backlog_limit=8192, lost=5, backlog=2)
    rep = HealthReporter(stderr=io.StringIO(), kernel_status=lambda: status, clock=lambda: now[0])
    now[0] = 102.0
    line = rep.line({"records": 200, "events": 50, "alerts": 1, "engine_state": 7})
    fields = dict(p.split("=", 1) for p in line.split(": ", 1)[1].split())
    assert fields["records_per_s"] == "100.0" and fields["events_per_s"] == "25.0"
    assert fields["kernel_lost"] == "5" and fields["kernel_lost_since_start"] == "0"
    assert fields["kernel_backlog"] == "2" and fields["engine_state"] == "7"
    status = AuditStatus(enabled=1, failure=1, pid=0, rate_limit=0, backlog_limit=8192, lost=9, backlog=0)
    now[0] = 112.0
    fields = dict(p.split("=", 1) for p in rep.line({"records": 300, "events": 50, "alerts": 1}).split(": ", 1)[1].split())
    assert fields["records_per_s"] == "10.0" and fields["events_per_s"] == "0.0"
    assert fields["kernel_lost_since_start"] == "4"


def test_kernel_status_unavailable_is_said_once_with_the_reason() -> None:
    def refuse() -> AuditStatus:
        raise PermissionError(1, "Operation not permitted")

    rep = HealthReporter(stderr=io.StringIO(), kernel_status=refuse)
    assert "kernel=unavailable(Operation not permitted)" in rep.line({})
    assert "kernel=unavailable " in rep.line({}) + " "


def test_max_signals_caps_alerts_per_interval(tmp_path: Path) -> None:
    if not CORPUS.exists():
        pytest.skip(f"the recording {CORPUS} is not available")
    rule = tmp_path / "capped.toml"
    rule.write_text(EVERY_EVENT.replace("max_signals = 100000", "max_signals = 3"))
    with gzip.open(CORPUS, "rb") as fh:
        data = b"".join(fh.readline() for _ in range(200))
    out = subprocess.run(
        [sys.executable, "-m", "auditeql.cli", "watch", "--source", "-", "--no-builtin", "--rule", str(rule),
         "--no-store", "--format", "ndjson", "--health-interval", "0", "--host-id", "h"],
        input=data, capture_output=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    alerts = [orjson.loads(x) for x in out.stdout.splitlines()]
    assert len(alerts) == 3
    health = [x for x in out.stderr.decode().splitlines() if "auditeql health:" in x][-1]
    capped = int(health.split("capped=", 1)[1].split()[0])
    assert capped > 20
