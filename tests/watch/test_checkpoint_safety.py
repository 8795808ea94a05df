"""The followed file's checkpoint never passes events still waiting in an engine's reorder buffer.

A SIGKILL right after such a checkpoint would lose those events' alerts (sequence rules buffer
events for ``--reorder-ms``): the restart would resume after them. Here the rule is checked
directly on a real FileInput over a real file and a real checkpoint file.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from auditeql.audit.pipeline import Normalizer
from auditeql.sources import checkpoint
from auditeql.watch.inputs import FileInput

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"


def _input(tmp_path: Path) -> tuple[FileInput, Path]:
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines(keepends=True)[:200]
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    cp = tmp_path / "cp.json"
    src = FileInput(Normalizer("auditd-manager", None), str(log), checkpoint_path=str(cp), from_start=True, every=0.0)
    docs = src.read(0.5) + src.flush()  # the cut at line 200 may leave an event half-read
    assert docs, "the recording gave no events"
    assert src.normalizer.reassembler.in_flight == 0
    return src, cp


def test_position_waits_until_its_events_left_the_reorder_buffers(tmp_path: Path) -> None:
    src, cp = _input(tmp_path)
    newest = 1_795_961_300_000.0
    src.checkpoint(newest_ms=newest, released_ms=newest - 500)  # events up to `newest` still buffered
    assert not cp.exists(), "a position was saved before its events were released"
    src.checkpoint(newest_ms=newest, released_ms=newest + 1)  # everything read so far is released
    assert cp.exists()
    assert checkpoint.load(str(cp)) == src.follower.position


def test_forced_checkpoint_at_shutdown_is_the_current_position(tmp_path: Path) -> None:
    src, cp = _input(tmp_path)
    src.checkpoint(newest_ms=1.0, released_ms=0.0)
    assert not cp.exists()
    src.checkpoint(force=True)
    assert checkpoint.load(str(cp)) == src.follower.position
