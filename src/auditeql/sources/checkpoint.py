"""Where a followed log was read up to: a small JSON file written atomically, mode 0600.

A checkpoint names the file by (device, inode), not by path, because rotation renames files:
after ``audit.log`` becomes ``audit.log.1`` the inode still says which file we were in, and
``offset`` how far. ``head`` is a digest of the file's first bytes, which tells a truncated
file that has grown past our offset again (same inode, different content) from the same
file. The writer only records offsets at event boundaries, after the events were processed,
so a restart neither loses nor repeats events.

The file holds a path and an offset of a security log: it is created 0600 and replaced with
``os.replace`` (atomic on POSIX) after an ``fsync``, so a crash leaves either the old or the
new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

#: How many leading bytes of a file identify it (hashed into ``head``).
HEAD_BYTES = 256


class CheckpointError(ValueError):
    """The checkpoint file is unreadable; the message names it and says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """Position in one file: ``offset`` bytes of (``device``, ``inode``) have been processed."""

    path: str
    device: int
    inode: int
    offset: int
    head: str = ""


def head_digest(fd: int, length: int = HEAD_BYTES) -> str:
    """``"N:digest"`` of the first ``N = min(length, HEAD_BYTES)`` bytes of an open file.

    Only bytes already processed are hashed (the caller passes its offset as ``length``), so
    the digest of a file that merely grows never changes; ``""`` for nothing to hash.
    """
    import hashlib

    data = os.pread(fd, min(length, HEAD_BYTES), 0)
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=8).hexdigest()}" if data else ""


def head_matches(fd: int, head: str) -> bool:
    """Does the open file still start with the bytes ``head`` was computed from?"""
    if not head:
        return True
    size, _, _digest = head.partition(":")
    try:
        length = int(size)
    except ValueError:
        return True  # an unknown format cannot prove a truncation
    return head_digest(fd, length) == head


def load(path: str | os.PathLike[str]) -> Checkpoint | None:
    """The checkpoint stored at ``path``, or ``None`` if there is none yet."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
        return Checkpoint(
            path=str(data["path"]),
            device=int(data["device"]),
            inode=int(data["inode"]),
            offset=int(data["offset"]),
            head=str(data.get("head", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {p} is corrupt ({exc}); delete it to start from the end of the log"
        ) from exc


def save(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename), mode 0600."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(checkpoint), fh, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
