"""`watch` as a long-running process: SIGUSR1 health, SIGHUP reload (a broken rule keeps the old
ones), SIGTERM/SIGINT flush and exit 0, the health line at an interval, stdin NDJSON input."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.watch.conftest import wait_for
from tests.watch.test_watch_file import EVERY_EVENT

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
AUDITEQL = [sys.executable, "-m", "auditeql.cli"]


class _Proc:
    def __init__(self, args: list[str], tmp: Path) -> None:
        self.err_path = tmp / "err.txt"
        self.out_path = tmp / "out.ndjson"
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self._out = open(self.out_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*AUDITEQL, "watch", *args], stdin=subprocess.PIPE, stdout=self._out,
                                     stderr=self._err, start_new_session=True)

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def out(self) -> list[dict]:
        # only complete lines: the writer may be mid-line when a test polls
        data = self.out_path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        return [orjson.loads(x) for x in complete.splitlines() if x.strip()]

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def finish(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._err.close()
            self._out.close()


def _settle(w: _Proc, quiet: float = 0.5) -> None:
    """Wait until the output stops growing (the input written so far is processed)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        n = len(w.out())
        if n != last:
            last, since = n, time.monotonic()
        time.sleep(0.05)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "every.toml").write_text(EVERY_EVENT)
    return d


def _lines(n: int) -> bytes:
    if not CORPUS.exists():
        pytest.skip(f"the recording {CORPUS} is not available")
    with gzip.open(CORPUS, "rb") as fh:
        return b"".join(fh.readline() for _ in range(n))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_usr1_health_hup_reload_and_clean_stop(tmp_path: Path, rules_dir: Path, sig: int) -> None:
    w = _Proc(["--source", "-", "--no-builtin", "--rules-dir", str(rules_dir), "--no-store", "--format", "ndjson",
               "--health-interval", "0", "--host-id", "h1"], tmp_path)
    try:
        assert wait_for(lambda: "watching -" in w.err(), 20), w.err()
        w.send(_lines(300))
        assert wait_for(lambda: len(w.out()) > 20, 10)
        _settle(w)
        w.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "auditeql health:" in w.err(), 3), w.err()
        health = [x for x in w.err().splitlines() if "auditeql health:" in x][0]
        fields = dict(p.split("=", 1) for p in health.split(": ", 1)[1].split())
        assert int(fields["records"]) == 300 and int(fields["events"]) == len(w.out())
        assert fields["rules"] == "1" and "engine_state" in fields and "reassembly_timeouts" in fields

        # a broken rule file is reported (named) and skipped; detection continues with the others
        (rules_dir / "broken.toml").write_text("[rule]\nname = 'x'\nquery = 'process where'\n")
        w.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "broken.toml" in w.err() and "reload" in w.err(), 5), w.err()
        assert "reloaded 2 rule(s)" not in w.err()
        (rules_dir / "broken.toml").unlink()
        # a second valid rule: the reload picks it up, and the new rule alerts on new input
        (rules_dir / "second.toml").write_text(
            EVERY_EVENT.replace("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002")
            .replace('name = "Every event"', 'name = "Every event again"')
        )
        w.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded 2 rule(s)" in w.err(), 5), w.err()
        before = len(w.out())
        w.send(_lines(600)[len(_lines(300)):])
        assert wait_for(lambda: any(a["kibana.alert.rule.name"] == "Every event again" for a in w.out()), 10)
        assert len(w.out()) > before
    finally:
        code = w.finish(sig)
    assert code == 0, w.err()
    assert "Traceback" not in w.err()


def test_health_interval_and_end_of_input(tmp_path: Path, rules_dir: Path) -> None:
    w = _Proc(["--source", "-", "--no-builtin", "--rules-dir", str(rules_dir), "--no-store", "--format", "ndjson",
               "--health-interval", "0.3", "--host-id", "h1"], tmp_path)
    try:
        assert wait_for(lambda: w.err().count("auditeql health:") >= 2, 10), w.err()
        # ECS NDJSON on stdin passes straight to the engines
        doc = {"@timestamp": "2026-11-29T10:00:00.000Z", "event": {"category": ["process"]}, "host": {"id": "h1"}}
        w.send(orjson.dumps(doc) + b"\n" + b"{not json\n")
        assert wait_for(lambda: len(w.out()) == 1, 5)
        assert w.out()[0]["event"]["category"] == ["process"] or w.out()[0].get("kibana.alert.original_event.category")
        assert "not a JSON object" in w.err()
        assert w.proc.stdin is not None
        w.proc.stdin.close()  # end of input: flush and exit 0 by itself
        assert w.proc.wait(timeout=10) == 0
    finally:
        if w.proc.poll() is None:
            w.finish()
