"""Shared set-up of the performance-path tests."""

from __future__ import annotations

import pytest


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
