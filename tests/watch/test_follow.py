"""Following audit.log across rotation with a checkpoint: real files, real rename/truncate."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from auditeql.sources import checkpoint
from auditeql.sources.follow import FileFollower


def _append(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def _drain(f: FileFollower, rounds: int = 4) -> list[str]:
    out: list[str] = []
    for _ in range(rounds):
        out += [b.decode() for b in f.read()]
    return out


def test_partial_line_waits_for_newline(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("one\ntw")
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["one"]
    assert f.position.offset == 4
    with open(log, "a") as fh:
        fh.write("o\n")
    assert _drain(f) == ["two"]
    assert f.position.offset == 8


def test_start_at_end_skips_existing(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, "old1", "old2")
    f = FileFollower(log)  # no checkpoint: like tail -f
    assert _drain(f) == []
    _append(log, "new")
    assert _drain(f) == ["new"]


def test_rename_rotation_reads_old_tail_then_new_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, "a1", "a2")
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["a1", "a2"]
    _append(log, "a3")  # written just before the rename, not yet read
    os.rename(log, tmp_path / "audit.log.1")
    _append(tmp_path / "audit.log.1", "a4")  # auditd's last burst into the renamed file
    _append(log, "b1", "b2")
    assert _drain(f) == ["a3", "a4", "b1", "b2"]
    assert f.rotations == 1
    assert f.position.inode == os.stat(log).st_ino


def test_rename_with_gap_before_new_file_appears(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, "a1")
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["a1"]
    os.rename(log, tmp_path / "audit.log.1")
    assert _drain(f) == []  # nothing there yet: keep waiting, no error
    _append(log, "b1")
    assert _drain(f) == ["b1"]


def test_copytruncate_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, "a1", "a2", "a3")
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["a1", "a2", "a3"]
    with open(log, "r+") as fh:
        fh.truncate(0)
    _append(log, "b1")
    assert _drain(f) == ["b1"]
    assert f.truncations == 1


def test_truncate_then_regrow_past_offset_is_detected(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, "x" * 10)
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["x" * 10]
    with open(log, "r+") as fh:
        fh.truncate(0)
    _append(log, "y" * 30)  # longer than what we had read: only the head digest can tell
    assert _drain(f) == ["y" * 30]


def test_restart_from_checkpoint_no_loss_no_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    cp_path = tmp_path / "state" / "follow.checkpoint"
    _append(log, *[f"e{i}" for i in range(5)])
    seen: list[str] = []
    f = FileFollower(log, start_at_end=False)
    seen += _drain(f)
    checkpoint.save(cp_path, f.position)
    f.close()
    # while we are down: more lines, a rotation, more lines
    _append(log, "e5", "e6")
    os.rename(log, tmp_path / "audit.log.1")
    _append(log, "e7", "e8")
    f2 = FileFollower(log, checkpoint.load(cp_path))
    seen += _drain(f2)
    checkpoint.save(cp_path, f2.position)
    f2.close()
    _append(log, "e9")
    f3 = FileFollower(log, checkpoint.load(cp_path))
    seen += _drain(f3)
    assert seen == [f"e{i}" for i in range(10)]


def test_restart_when_rotated_file_is_gone_reads_current_from_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "audit.log"
    _append(log, "a1")
    f = FileFollower(log, start_at_end=False)
    _drain(f)
    cp = f.position
    f.close()
    os.rename(log, tmp_path / "elsewhere")  # not a sibling named audit.log*
    _append(log, "b1")
    f2 = FileFollower(log, cp)
    assert _drain(f2) == ["b1"]
    assert "is gone" in capsys.readouterr().err


def test_checkpoint_file_is_0600_and_atomic(tmp_path: Path) -> None:
    cp_path = tmp_path / "cp.json"
    cp = checkpoint.Checkpoint(path="/var/log/audit/audit.log", device=1, inode=2, offset=3, head="3:abc")
    checkpoint.save(cp_path, cp)
    assert stat.S_IMODE(os.stat(cp_path).st_mode) == 0o600
    assert checkpoint.load(cp_path) == cp
    assert [p.name for p in tmp_path.iterdir()] == ["cp.json"]  # no temp file left behind
    old_inode = os.stat(cp_path).st_ino
    checkpoint.save(cp_path, checkpoint.Checkpoint("/x", 1, 2, 99))
    assert os.stat(cp_path).st_ino != old_inode  # replaced by rename, never rewritten in place
    assert json.loads(cp_path.read_text())["offset"] == 99


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    cp_path = tmp_path / "cp.json"
    cp_path.write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="delete it"):
        checkpoint.load(cp_path)
    assert checkpoint.load(tmp_path / "missing.json") is None


def test_restart_after_the_checkpointed_file_was_deleted_and_its_inode_reused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """auditd deleted the checkpointed file while we were down, and the filesystem gave its inode to
    a newer file (seen in a 1M-event soak with fast rotation). The inode alone then names the wrong
    file; the first bytes tell. Every rotated file left is newer: all are read, oldest first."""
    log = tmp_path / "audit.log"
    _append(log, "old1", "old2")
    f = FileFollower(log, start_at_end=False)
    assert _drain(f) == ["old1", "old2"]
    cp = f.position
    f.close()
    _append(log, "lost")  # written after the checkpoint, deleted with the file below
    for n, lines in enumerate((["r1a", "r1b"], ["r2"], ["cur"])):
        for k in range(3, 0, -1):  # auditd's rotation: .3 is deleted, .2 -> .3, .1 -> .2, log -> .1
            src = tmp_path / (f"audit.log.{k - 1}" if k > 1 else "audit.log")
            if src.exists():
                os.replace(src, tmp_path / f"audit.log.{k}")
        if n == 0:
            os.remove(tmp_path / "audit.log.1")  # the checkpointed file is gone
        _append(log, *lines)
        os.utime(log, ns=(10**18 + n * 10**9, 10**18 + n * 10**9))  # distinct mtimes, written in order
    # the state after inode reuse: the checkpoint's inode now belongs to the current file
    st = os.stat(log)
    reused = checkpoint.Checkpoint(str(log), st.st_dev, st.st_ino, cp.offset, cp.head)
    f2 = FileFollower(log, reused)
    assert _drain(f2) == ["r1a", "r1b", "r2", "cur"]
    err = capsys.readouterr().err
    assert "rotated away and deleted" in err and "audit.log.2" in err


def test_restart_after_copytruncate_continues_in_the_copy(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    _append(log, *[f"e{i}" for i in range(5)])
    f = FileFollower(log, start_at_end=False)
    _drain(f)
    cp = f.position
    f.close()
    _append(log, "e5", "e6")
    (tmp_path / "audit.log.1").write_bytes(log.read_bytes())  # logrotate copytruncate: copy, then truncate
    with open(log, "r+b") as fh:
        fh.truncate(0)
    _append(log, "e7")
    f2 = FileFollower(log, cp)
    assert _drain(f2) == ["e5", "e6", "e7"]


def test_line_ends_are_the_file_offsets_after_each_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"a\n\nbb\nccc")
    f = FileFollower(log, start_at_end=False)
    f.track_ends = True
    assert f.read() == [b"a", b"bb"] and f.line_ends == [2, 6]
    with open(log, "ab") as fh:
        fh.write(b"c\nd\n")
    assert f.read() == [b"cccc", b"d"] and f.line_ends == [11, 13]
    assert f.position_at(11).offset == 11 and f.position_at(13) == f.position
    os.rename(log, tmp_path / "audit.log.1")
    log.write_bytes(b"e\n")
    assert f.read(timeout=0.5) == [b"e"] and f.line_ends is None  # crossed into another file
    f.close()
