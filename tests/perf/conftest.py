"""Shared set-up of the performance-path tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"


@pytest.fixture(autouse=True)
def _private_state(tmp_path, monkeypatch):
    """Never touch the user's alert store or checkpoints."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def split_events(lines: list[bytes]) -> list[list[bytes]]:
    """Runs of consecutive audit.log lines with the same ``msg=audit(…)`` header (one event each)."""
    events: list[list[bytes]] = []
    last = None
    for line in lines:
        head = line.split(b"msg=audit(", 1)[-1].split(b")", 1)[0]
        if head != last:
            events.append([])
            last = head
        events[-1].append(line)
    return events


@pytest.fixture(scope="session")
def corpus_lines() -> list[bytes]:
    """The vendored udp-shells-1 audit.log, line by line (newlines kept)."""
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the vendored corpus {CORPUS} is absent; push-down exactness not checked on it")
    return gzip.decompress(CORPUS.read_bytes()).splitlines(keepends=True)
