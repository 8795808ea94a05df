"""A full disk or an unwritable alert store is reported, and detection still reaches stdout.

Stores tried: a path that cannot exist (under /proc), /dev/full (every write fails with ENOSPC),
and a real filesystem that fills up — a 64 KiB tmpfs mounted for the test (root only; skipped
loudly otherwise) — both before the store exists and after (the disk fills between runs).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
AUDITEQL = [sys.executable, "-m", "auditeql.cli"]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the recording {CORPUS} is absent")
    p = tmp_path_factory.mktemp("faults") / "audit.log"
    p.write_bytes(gzip.decompress(CORPUS.read_bytes()))
    return p


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"LOUD SKIP: cannot mount a tmpfs ({res.stderr.decode().strip()}); the full-disk case did not run")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs: Path) -> None:
    try:
        with open(fs / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass  # full


def _ids(out: bytes) -> list[str]:
    import json

    return [json.loads(line)["kibana.alert.uuid"] for line in out.splitlines() if line.strip()]


def _run(args: list[str], tmp: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*AUDITEQL, *args], input=stdin, capture_output=True, timeout=300,
                          env={**os.environ, "XDG_STATE_HOME": str(tmp / "xdg")})


def _reference(log: Path, tmp: Path) -> bytes:
    res = _run(["scan", "--no-store", "-q", "--format", "ndjson", "--host-id", "h", str(log)], tmp)
    assert res.returncode == 1 and res.stdout.count(b"\n") > 0
    return res.stdout


@pytest.mark.parametrize("store", ["/proc/nonexistent/alerts.db", "/dev/full"])
def test_scan_reports_unwritable_store_and_still_prints_alerts(store: str, log: Path, tmp_path: Path) -> None:
    want = _reference(log, tmp_path)
    res = _run(["scan", "-q", "--store", store, "--format", "ndjson", "--host-id", "h", str(log)], tmp_path)
    assert res.stdout == want
    assert res.returncode == 1  # alerts found
    assert b"NOT stored" in res.stderr and b"Traceback" not in res.stderr


def test_scan_on_a_full_disk(log: Path, tmp_path: Path, tiny_fs: Path) -> None:
    want = _reference(log, tmp_path)
    # 1. the disk is full before the store exists
    _fill(tiny_fs)
    res = _run(["scan", "-q", "--store", str(tiny_fs / "a.db"), "--format", "ndjson", "--host-id", "h", str(log)], tmp_path)
    assert res.stdout == want and b"NOT stored" in res.stderr and b"Traceback" not in res.stderr
    # 2. the store exists (created with room to spare), then the disk fills up
    for f in tiny_fs.iterdir():
        f.unlink()
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert _run(["scan", "-q", "--store", str(tiny_fs / "b.db"), "--host-id", "h", str(empty)], tmp_path).returncode == 0
    _fill(tiny_fs)
    res = _run(["scan", "-q", "--store", str(tiny_fs / "b.db"), "--format", "ndjson", "--host-id", "h", str(log)], tmp_path)
    assert res.stdout == want and b"NOT stored" in res.stderr and b"Traceback" not in res.stderr


@pytest.mark.parametrize("where", ["/dev/full", "tiny"])
def test_watch_alerts_to_stdout_without_a_usable_store(where: str, log: Path, tmp_path: Path, request) -> None:  # noqa: ANN001
    if where == "tiny":
        fs = request.getfixturevalue("tiny_fs")
        _fill(fs)
        store = str(fs / "alerts.db")
    else:
        store = where
    ref = _run(["watch", "--source", "-", "--no-store", "--format", "ndjson", "--health-interval", "0",
                "--host-id", "h"], tmp_path, log.read_bytes())
    res = _run(["watch", "--source", "-", "--store", store, "--format", "ndjson", "--health-interval", "0",
                "--host-id", "h"], tmp_path, log.read_bytes())
    assert ref.returncode == 0 and ref.stdout.count(b"\n") > 0
    assert res.returncode == 0, res.stderr
    # alert documents carry their detection time; the alerts themselves (ids) must be the same
    assert _ids(res.stdout) == _ids(ref.stdout)
    assert b"NOT be stored" in res.stderr and b"Traceback" not in res.stderr
