"""Follow a growing audit.log the way ``tail -F`` does, across rotation, with a checkpoint.

auditd rotates by renaming (``audit.log`` → ``audit.log.1``, a new ``audit.log`` is created);
logrotate's ``copytruncate`` truncates in place. Both are handled:

* **rename**: when the path names a different inode, the old file is read to its end first
  (auditd may have written a last burst after our previous read), then the new file from 0;
* **truncate**: when the file is shorter than our offset, or its first bytes changed (it was
  truncated and has grown past our offset again), we start again at 0.

Only complete lines are handed out; a partial last line waits for its newline. The position
(device, inode, offset just after the last line handed out) is available as :attr:`position`
so the caller can save a :class:`~auditeql.sources.checkpoint.Checkpoint` *after* it has
processed the lines, at an event boundary. On start, a checkpoint whose file has meanwhile
been rotated is found again by inode and first bytes among the path's siblings (``audit.log.1``
…) and finished before the current file is read: a restart neither loses nor repeats events.
When it was rotated out and deleted while we were down, the rotated files left are all newer:
they are read oldest first, then the current file (only the deleted file's tail is lost).
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from auditeql.sources.checkpoint import HEAD_BYTES, Checkpoint, head_digest, head_matches

_CHUNK = 1 << 20


class FollowError(OSError):
    """The followed file cannot be read; the message says which and why."""


class FileFollower:
    """Complete lines appended to ``path``, across rotation; see the module docstring.

    ``start_at_end`` applies only when there is no usable checkpoint (the first run): like
    ``tail -f`` we then skip what is already in the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        checkpoint: Checkpoint | None = None,
        *,
        start_at_end: bool = True,
        stderr: TextIO | None = None,
    ) -> None:
        self.path = Path(path)
        self._stderr = stderr if stderr is not None else sys.stderr
        self._fd: int | None = None
        self._dev = 0
        self._ino = 0
        self._offset = 0  # bytes consumed as complete lines
        self._read_pos = 0  # bytes read from the file (offset + len(partial))
        self._partial = b""
        self._head = ""
        self._draining: Path | None = None  # a rotated file being finished before ``path``
        self._finished: deque[tuple[int, int, int, int]] = deque(maxlen=16)  # files read to the end
        self.rotations = 0
        self.truncations = 0
        #: When ``track_ends`` is set: the file offset just after each line the last :meth:`read`
        #: returned, or None when that read crossed into another file (a rotation or truncation).
        self.track_ends = False
        self.line_ends: list[int] | None = None
        self._start(checkpoint, start_at_end)

    # ------------------------------------------------------------------ public surface

    @property
    def position(self) -> Checkpoint:
        """Where a restart should resume: just after the last line handed out."""
        self._refresh_head()
        return Checkpoint(str(self.path), self._dev, self._ino, self._offset, self._head)

    def read(self, timeout: float = 0.0, max_bytes: int = 8 * _CHUNK) -> list[bytes]:
        """Complete lines available now (without newlines); waits up to ``timeout`` seconds.

        Files cannot be ``select``-ed for new data, so waiting is a short poll loop.
        """
        deadline = time.monotonic() + timeout
        while True:
            ident = (self._dev, self._ino, self.rotations, self.truncations)
            self.line_ends = [] if self.track_ends else None
            lines = self._read_once(max_bytes)
            if ident != (self._dev, self._ino, self.rotations, self.truncations):
                self.line_ends = None
            if lines:
                return lines
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return lines
            select.select([], [], [], min(0.05, remaining))

    def position_at(self, end: int) -> Checkpoint:
        """The position just after a line of the last read that ended at file offset ``end``
        (one of :attr:`line_ends`): a restart point inside a batch of lines."""
        head = head_digest(self._fd, end) if self._fd is not None else ""
        return Checkpoint(str(self.path), self._dev, self._ino, end, head)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ start-up

    def _start(self, cp: Checkpoint | None, start_at_end: bool) -> None:
        if cp is not None:
            found = self._find_checkpointed(cp)
            if found == self.path:
                self._open(self.path, cp.offset, expect_head=cp.head)
                return
            if found is not None:
                # finish the file we were in when we stopped, then carry on with ``path``
                self._open(found, cp.offset, expect_head=cp.head)
                self._draining = found
                return
            oldest = self._oldest_rotated()
            if oldest is not None:
                # Rotated out and deleted while we were down (its inode may even live on in a new
                # file): every rotated file left is newer than it, so read them all, oldest first.
                self._warn(
                    f"the checkpointed file (inode {cp.inode}) was rotated away and deleted while auditeql was "
                    f"not reading; reading the rotated files from the oldest ({oldest.name}), then {self.path.name} "
                    "(events written to the deleted file after the checkpoint are lost)"
                )
                self._open(oldest, 0)
                self._draining = oldest
                return
            if self._same_inode(self.path, cp):
                self._open(self.path, cp.offset, expect_head=cp.head)  # truncated in place: from 0
                return
            self._warn(
                f"checkpointed file (inode {cp.inode}) is gone; reading {self.path} from its start "
                "(events written to the rotated file after the checkpoint may be missing)"
            )
            self._open_path(0)
            return
        self._open_path(None if start_at_end else 0)

    def _find_checkpointed(self, cp: Checkpoint) -> Path | None:
        """``path`` or a rotated sibling with the checkpoint's inode *and* first bytes: inodes of
        deleted files are reused, so the inode alone can name a newer file. Failing that, a sibling
        with the same first bytes under another inode: the copy ``copytruncate`` made of it."""
        candidates = [self.path, *self._siblings()]
        by_inode = [c for c in candidates if self._same_inode(c, cp)]
        by_head = [c for c in candidates[1:] if c not in by_inode] if cp.head else []
        for candidate in by_inode + by_head:
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if head_matches(fd, cp.head) and os.fstat(fd).st_size >= cp.offset:
                    return candidate
            finally:
                os.close(fd)
        return None

    @staticmethod
    def _same_inode(path: Path, cp: Checkpoint) -> bool:
        st = _stat(path)
        return st is not None and (st.st_dev, st.st_ino) == (cp.device, cp.inode)

    def _siblings(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.path.parent))
        except OSError:
            return []
        return [self.path.parent / n for n in names if self._is_rotated(n)]

    def _is_rotated(self, name: str) -> bool:
        """``audit.log.N``: a name auditd's rotation gives the followed file."""
        base = self.path.name
        return name.startswith(base + ".") and name[len(base) + 1:].isdigit()

    def _oldest_rotated(self) -> Path | None:
        """The rotated sibling written first (oldest mtime; on a tie the higher number)."""
        snapshot = self._rotated_snapshot()
        if not snapshot:
            return None
        base = self.path.name
        name = min(snapshot, key=lambda n: (snapshot[n][3], -int(n[len(base) + 1:])))
        return self.path.parent / name

    def _open_path(self, offset: int | None) -> None:
        """Open ``path`` at ``offset`` (``None`` = its end); a missing file is waited for."""
        if _stat(self.path) is None:
            self._fd = None
            return
        self._open(self.path, offset)

    def _open(self, path: Path, offset: int | None, expect_head: str = "") -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._fd = None
            return
        except OSError as exc:
            raise FollowError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc
        st = os.fstat(fd)
        self.close()
        self._fd, self._dev, self._ino = fd, st.st_dev, st.st_ino
        if offset is None:
            offset = st.st_size
        elif offset > st.st_size or not head_matches(fd, expect_head):
            self._warn(f"{path} was truncated since the checkpoint; reading it from the start")
            self.truncations += 1
            offset = 0
        self._offset = self._read_pos = offset
        self._partial = b""
        self._head = ""
        self._refresh_head()

    # ------------------------------------------------------------------ reading

    def _read_once(self, max_bytes: int) -> list[bytes]:
        if self._fd is None:
            if self._draining is None:
                self._open_path(0)  # the file appeared (after a rename, before the re-create)
            if self._fd is None:
                return []
        if self._read_pos and self._head_changed():
            # truncated in place and grown again past our offset (copytruncate + busy writer)
            self._restart_file()
        data = self._read_available(max_bytes)
        if data:
            return self._split(data)
        # At EOF: was the file rotated or truncated?
        if self._draining is not None:
            self._draining = None
            return self._switch_to_path()
        st = _stat(self.path)
        if st is None:
            return []  # renamed away, not yet re-created: keep our fd, wait
        if (st.st_dev, st.st_ino) != (self._dev, self._ino):
            return self._switch_to_path()
        if st.st_size < self._read_pos:
            self._restart_file()
            return self._split(self._read_available(max_bytes))
        return []

    def _restart_file(self) -> None:
        self.truncations += 1
        self._offset = self._read_pos = 0
        self._partial = b""
        self._head = ""

    def _refresh_head(self) -> None:
        """Hash the processed prefix of the file (up to HEAD_BYTES) once there is one."""
        if self._fd is None:
            return
        have = int(self._head.partition(":")[0] or 0)
        if have < HEAD_BYTES and self._offset > have:
            self._head = head_digest(self._fd, self._offset)

    def _head_changed(self) -> bool:
        assert self._fd is not None
        return not head_matches(self._fd, self._head)

    def _next_rotated(self) -> Path | None:
        """The file rotated right after the one just finished, when the log rotated more than once
        before we reached its end: among ``audit.log.N`` not read yet, the one written next (the
        oldest modification time not older than ours). Names are not trusted for the order: a
        rotation renames files one by one, and we may look in the middle of it."""
        try:
            ours = os.fstat(self._fd) if self._fd is not None else None
        except OSError:
            ours = None
        if ours is None:
            return None
        # a finished file is known by inode *and* size and mtime: inodes of deleted files are reused
        self._finished.append((ours.st_dev, ours.st_ino, ours.st_size, ours.st_mtime_ns))
        snapshot = self._rotated_snapshot()
        if snapshot is None:
            return None
        best: tuple[int, int, Path] | None = None
        base = self.path.name
        for name, ident in snapshot.items():
            if ident[:2] == (ours.st_dev, ours.st_ino):
                continue
            if ident in self._finished:
                continue
            if ident[3] < ours.st_mtime_ns:
                continue  # written before ours: already read, or older than where we started
            # written first = next; same timestamp (coarse clocks): the higher rotation number is older
            key = (ident[3], -int(name[len(base) + 1:]))
            if best is None or key < best[:2]:
                best = (key[0], key[1], self.path.parent / name)
        return best[2] if best is not None else None

    def _rotated_snapshot(self) -> dict[str, tuple[int, int, int, int]] | None:
        """``audit.log.N`` -> (device, inode, size, mtime), taken until two takes agree.

        A rotation renames files one by one; a listing followed by one ``stat`` per name, taken in
        the middle of it, can see a file under no name at all (listed as ``.2``, renamed to ``.3``
        before it is stat-ed, while ``.3`` was stat-ed before the rename). Two identical takes in a
        row mean no rename happened in between.
        """
        parent = self.path.parent
        previous: dict[str, tuple[int, int, int, int]] | None = None
        for _ in range(50):
            try:
                names = os.listdir(parent)
            except OSError:
                return None
            take: dict[str, tuple[int, int, int, int]] = {}
            for name in names:
                if not self._is_rotated(name):
                    continue
                st = _stat(parent / name)
                if st is not None:
                    take[name] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if take == previous:
                return take
            previous = take
            time.sleep(0.001)
        return previous

    def _switch_to_path(self) -> list[bytes]:
        # Whatever is left of the old file without a newline is still a record: hand it out.
        tail = [self._partial] if self._partial.strip() else []
        self.rotations += 1
        nxt = self._next_rotated()
        self.close()
        self._partial = b""
        if nxt is not None:  # several rotations while we were behind: read them in order
            self._open(nxt, 0)
            if self._fd is not None:
                self._draining = nxt
                return tail + self._split(self._read_available(8 * _CHUNK))
        self._open_path(0)
        if self._fd is None:
            self._dev = self._ino = self._offset = self._read_pos = 0
            return tail
        return tail + self._split(self._read_available(8 * _CHUNK))

    def _read_available(self, max_bytes: int) -> bytes:
        assert self._fd is not None
        chunks: list[bytes] = []
        got = 0
        while got < max_bytes:
            chunk = os.pread(self._fd, min(_CHUNK, max_bytes - got), self._read_pos)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            self._read_pos += len(chunk)
        return b"".join(chunks)

    def _split(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
            return []
        self._partial = buf[cut + 1:]
        self._offset = self._read_pos - len(self._partial)
        self._refresh_head()
        if self.line_ends is None:
            return [line for line in buf[:cut].split(b"\n") if line]
        pos = self._offset - cut - 1  # the file offset of buf[0]
        lines = []
        ends = self.line_ends
        for line in buf[:cut].split(b"\n"):
            pos += len(line) + 1
            if line:
                lines.append(line)
                ends.append(pos)
        return lines

    def _warn(self, message: str) -> None:
        print(f"auditeql: {message}", file=self._stderr, flush=True)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
