"""Following a log that rotates several times while the reader is behind loses no file.

Found by the soak test (benchmarks/soak.py): with the writer two rotations ahead, the follower
went from the file it was finishing straight to the new ``audit.log`` and skipped the file in
between (now ``audit.log.1``), losing every event in it. Fixed in sources/follow.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auditeql.sources.checkpoint import Checkpoint  # noqa: F401  (the follower's position type)
from auditeql.sources.follow import FileFollower


def _rotate(log: Path, keep: int = 5) -> None:
    for k in range(keep - 1, 0, -1):
        src = log.with_name(f"{log.name}.{k}")
        if src.exists():
            src.rename(log.with_name(f"{log.name}.{k + 1}"))
    log.rename(log.with_name(f"{log.name}.1"))


def _drain(f: FileFollower) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(20):
        out += f.read()
    return out


@pytest.mark.parametrize("rotations", [2, 3, 4])
def test_several_rotations_between_reads(tmp_path: Path, rotations: int) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"f0-1\n")
    f = FileFollower(log, start_at_end=False)
    assert f.read() == [b"f0-1"]
    with open(log, "ab") as fh:
        fh.write(b"f0-2\n")
    for k in range(1, rotations + 1):
        _rotate(log)
        log.write_bytes(b"f%d-1\nf%d-2\n" % (k, k))
    expected = [b"f0-2"] + [b"f%d-%d" % (k, i) for k in range(1, rotations + 1) for i in (1, 2)]
    assert _drain(f) == expected


def test_restart_from_checkpoint_after_several_rotations(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"a\nb\n")
    f = FileFollower(log, start_at_end=False)
    assert f.read() == [b"a", b"b"]
    cp = f.position
    f.close()
    with open(log, "ab") as fh:
        fh.write(b"c\n")
    for k in range(1, 4):
        _rotate(log)
        log.write_bytes(b"r%d\n" % k)
    g = FileFollower(log, cp, start_at_end=False)
    assert _drain(g) == [b"c", b"r1", b"r2", b"r3"]
