"""Inputs that can be read only once — stdin, named pipes, ``<(…)`` — made to behave like files.

Why: readers look at an input before reading it (raw audit or NDJSON? gzip?) and the semi-joins
read some inputs twice (``scan``'s census of a big audit log) or read lines back by offset
(``query``'s sample semi-join). A pipe loses whatever was read to look, and cannot be read again.

:func:`prepared` is wrapped around a command's reading. Each input that is not a regular file
(``-``, a FIFO, ``/dev/fd/N`` of a process substitution, a character device) becomes one of:

* **streamed** (the default): its path stays as given and is read once, by whichever reader
  asks :func:`open_stream` for it; the bytes read to decide its kind (:func:`kind`) are handed
  out again before the rest, so nothing is lost. Memory: those first bytes only.
* **spooled**, when the caller says reading it as a file pays (``spool(kind, gzip)``: the
  semi-joins): it is copied once, as received (still compressed if it was), into a private
  file: in memory (a memfd) up to :func:`spool_memory` bytes, then in an unnamed temporary file
  in ``$TMPDIR`` (mode 0600, ``O_TMPFILE`` where the file system has it, else unlinked at once,
  so nothing is left behind even on SIGKILL). Its path becomes ``/proc/self/fd/N``, a regular
  file every reader opens and re-reads like the original file, so the results are those of
  the same bytes given as a file. If the copy cannot be made (no room in ``$TMPDIR``), the
  input is streamed instead, with a warning: same results, without the semi-join's speed.

``-`` when standard input is a regular file (``- < file``) is read as that file
(``/proc/self/fd/0``), without a copy.

Inputs are looked at in order, a pipe only when its turn comes (``query`` also looks at the
input after a raw audit log, to read a rotated set through one normalizer: a raw-log pipe
followed by a pipe that its writer fills only afterwards would wait for each other).

Messages name an input as the user gave it (:func:`display`), never by its spool path.
Readers call :func:`registered`, :func:`kind`, :func:`open_stream` and :func:`display`; the
registry is per process and each :func:`prepared` releases what it registered.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

from . import sniff

#: Bytes of a spooled input kept in memory before the spool moves to a file in ``$TMPDIR``.
SPOOL_MEMORY = 64 << 20
#: Environment variable overriding :data:`SPOOL_MEMORY` (bytes; tests lower it).
SPOOL_MEMORY_ENV = "AUDITEQL_SPOOL_MEMORY"
#: The kind of an input is decided from its first lines (:mod:`auditeql.sources.sniff`); an input
#: that shows no non-blank byte in this many bytes (compressed or not) is taken as raw audit
#: (readers skip blank lines either way).
HEAD_LIMIT = sniff.HEAD_LIMIT
_READ = 1 << 20

#: ``spool(kind, gzip) -> bool``: whether an input of this kind is worth copying to be read as a file.
SpoolPolicy = Callable[[str, bool], bool]


def spool_memory() -> int:
    """:data:`SPOOL_MEMORY`, or the value of ``$AUDITEQL_SPOOL_MEMORY`` when set to a number."""
    try:
        return max(0, int(os.environ[SPOOL_MEMORY_ENV]))
    except (KeyError, ValueError):
        return SPOOL_MEMORY


def reads_once(path: str) -> bool:
    """True for ``-`` and for an existing path that is not a regular file or a directory."""
    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # missing or unreadable: the readers report it
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _Entry:
    """One once-readable input: its source (opened on first need) and what to hand out before the
    rest of it (the bytes read to look at it, or a failed spool's copy)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source: Any = None
        self.head = bytearray()  # (grown in place: a pipe may give a few bytes at a time)
        self.before: list[Any] | None = None  # replaces ``head`` when set
        self.kind: str | None = None
        self.gzip = False
        self.eof = False
        self.stream: BinaryIO | None = None
        self.spool: _Spool | None = None

    def open(self) -> Any:
        if self.source is None:
            if self.name == "-":
                if sys.stdin is None:
                    raise OSError("standard input is closed")
                self.source = sys.stdin.buffer
            else:
                self.source = open(self.name, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        return self.source

    def read(self, size: int) -> bytes:
        src = self.open()
        data = (getattr(src, "read1", None) or src.read)(size)
        if not data:
            self.eof = True
        return data

    def look(self) -> tuple[str, bool]:
        """``(kind, gzip)`` by :mod:`auditeql.sources.sniff`'s rule (decompressed), as
        ``files.input_kind``; reads only until the kind is decided."""
        if self.kind is None:
            self.kind = self._sniff()
        return self.kind, self.gzip

    def _sniff(self) -> str:
        """The shared rule over this input's reads; every byte read stays in ``head``."""

        seen = 0

        def read() -> bytes:
            nonlocal seen
            if seen == 0:  # the first look: at least the gzip magic (a pipe may give a byte at a time)
                while not self.eof and len(self.head) < 2:
                    self.head += self.read(_READ)
            if len(self.head) == seen and not self.eof:
                self.head += self.read(_READ)
            new, seen = bytes(self.head[seen:]), len(self.head)
            return new

        # blank as far as we look: raw audit (blank lines are skipped anyway)
        kind = sniff.kind_of_reads(read, blank="audit")
        self.gzip = self.head[:2] == b"\x1f\x8b"
        return kind

    def take_stream(self) -> BinaryIO:
        """The input from its first byte, once."""
        if self.stream is not None:
            raise OSError("a pipe can be read only once")
        self.look()  # (the gzip magic is then whole in the first bytes handed out, for the reader's peek)
        parts: list[Any] = list(self.before) if self.before is not None else ([self.head] if self.head else [])
        if not self.eof:
            parts.append(self.open())
        self.head = bytearray()  # (the chain holds it until it is read)
        self.stream = io.BufferedReader(_Chain(parts), buffer_size=1 << 16)  # type: ignore[arg-type]
        return self.stream

    def close(self) -> None:
        for thing in (self.stream, self.spool):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
        if self.source is not None and self.name != "-":
            try:
                self.source.close()
            except OSError:
                pass


class _Chain(io.RawIOBase):
    """Read-only raw stream: the given bytes objects and readable objects, one after the other."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.pos = 0  # within parts[0] when it is bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while self.parts:
            part = self.parts[0]
            if isinstance(part, (bytes, bytearray)):
                n = min(len(buf), len(part) - self.pos)
                buf[:n] = part[self.pos : self.pos + n]
                self.pos += n
                if self.pos >= len(part):
                    self.parts.pop(0)
                    self.pos = 0
                if n:
                    return n
                continue
            into = getattr(part, "readinto1", None) or part.readinto
            n = into(buf)
            if n:
                return n
            self.parts.pop(0)
        return 0


class _Spool:
    """A private copy of an input: a memfd up to ``limit`` bytes, then an unnamed file in ``$TMPDIR``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.on_disk = False
        self.file: Any = None
        if limit > 0 and hasattr(os, "memfd_create"):
            try:
                fd = os.memfd_create("auditeql-spool", getattr(os, "MFD_CLOEXEC", 0))
                self.file = os.fdopen(fd, "r+b", buffering=0)
            except OSError:
                self.file = None
        if self.file is None:
            self._to_disk()

    def _to_disk(self) -> None:
        # mode 0600; O_TMPFILE (never named) where the file system allows, else unlinked at once
        disk = tempfile.TemporaryFile(prefix="auditeql-spool-", buffering=0)  # noqa: SIM115
        try:
            if self.file is not None:
                offset = 0
                while offset < self.size:
                    block = os.pread(self.file.fileno(), min(4 << 20, self.size - offset), offset)
                    if not block:
                        break
                    _write_all(disk, block)
                    offset += len(block)
        except BaseException:
            disk.close()
            raise
        if self.file is not None:
            self.file.close()
        self.file = disk
        self.on_disk = True

    def write(self, data: bytes) -> None:
        if not self.on_disk and self.size + len(data) > self.limit:
            self._to_disk()
        _write_all(self.file, data)
        self.size += len(data)

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self.file.fileno()}"

    def rewound(self) -> Any:
        """The spool's file, read from its start (to stream it when the spool failed): exactly the
        bytes counted as written (a write cut short by a full disk is cut off)."""
        os.ftruncate(self.file.fileno(), self.size)
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _write_all(fh: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = fh.write(view)
        if not n:
            raise OSError("cannot write the spool")
        view = view[n:]


# -- the registry readers consult --------------------------------------------------------------------

#: path as readers see it -> entry (streamed inputs under their own path, spooled ones under the spool's)
_ENTRIES: dict[str, _Entry] = {}
#: spool path -> the name the user gave
_NAMES: dict[str, str] = {}


def registered(path: str) -> bool:
    """True for a streamed input: open it with :func:`open_stream`, ask its kind with :func:`kind`."""
    return path in _ENTRIES


def display(path: str) -> str:
    """The input's name as the user gave it (a spooled input's, not its spool path)."""
    return _NAMES.get(path, path)


def kind(path: str) -> tuple[str, bool]:
    """``("audit" | "ndjson" | "empty", gzip)`` of a streamed input, read from its first bytes (kept)."""
    return _ENTRIES[path].look()


def open_stream(path: str) -> BinaryIO | None:
    """A streamed input from its first byte (``None``: not a streamed input). Raises ``OSError``
    when it cannot be opened or was handed out already."""
    entry = _ENTRIES.get(path)
    if entry is None:
        return None
    return entry.take_stream()


@contextmanager
def prepared(
    paths: Sequence[str],
    spool: SpoolPolicy | None = None,
    report: Callable[[str], None] | None = None,
) -> Iterator[list[str]]:
    """The paths to read, with the once-readable inputs registered (see the module docstring).

    ``spool(kind, gzip)`` says which inputs are worth a copy. Inputs are looked at in order, and
    only until the first one that is streamed: a later pipe is opened only when its turn comes,
    so a writer that fills several pipes one after the other is not blocked. Paths registered by
    an enclosing :func:`prepared` are left to it. Everything registered here is released (spools
    closed, which deletes them) on the way out, on errors and interrupts too.
    """
    mine: list[_Entry] = []
    names: list[str] = []
    out: list[str] = []
    looking = spool is not None
    try:
        for path in paths:
            if path in _ENTRIES or path in _NAMES or not reads_once(path):
                out.append(path)
                continue
            stdin_file = _stdin_file() if path == "-" else None
            if stdin_file is not None:
                _NAMES[stdin_file] = path
                names.append(stdin_file)
                out.append(stdin_file)
                continue
            entry = _Entry(path)
            mine.append(entry)
            if looking:
                try:
                    k, gz = entry.look()
                except OSError:
                    k, gz = "", False  # the reader opens it again and reports why it cannot
                if k and spool is not None and spool(k, gz):
                    where = _copy(entry, report or _warn)
                    if where is not None:
                        _NAMES[where] = path
                        names.append(where)
                        out.append(where)
                        continue
                looking = False
            _ENTRIES[path] = entry
            out.append(path)
        yield out
    finally:
        for name in names:
            _NAMES.pop(name, None)
        for entry in mine:
            if _ENTRIES.get(entry.name) is entry:
                del _ENTRIES[entry.name]
            entry.close()


def _stdin_file() -> str | None:
    """``/proc/self/fd/N`` when standard input is a regular file read from its start
    (``- < file``): it is then read as that file. ``None`` otherwise (a pipe, a terminal, or a
    ``sys.stdin`` that is not a file descriptor at all)."""
    try:
        fd = sys.stdin.fileno() if sys.stdin is not None else -1
        if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode) or os.lseek(fd, 0, os.SEEK_CUR) != 0:
            return None
    except (OSError, ValueError):
        return None
    path = f"/proc/self/fd/{fd}"
    return path if os.path.exists(path) else None


def _copy(entry: _Entry, report: Callable[[str], None]) -> str | None:
    """Copy the whole input into a spool: its path, or ``None`` when it is to be streamed instead
    (the copy failed; what was copied is handed out first, then the rest of the input)."""
    pending = entry.head
    try:
        entry.spool = _Spool(spool_memory())
        while True:
            if pending:
                entry.spool.write(pending)
            pending = b""
            if entry.eof:
                break
            pending = entry.read(_READ)
    except OSError as exc:
        where = os.environ.get("TMPDIR") or tempfile.gettempdir()
        report(
            f"{display_name(entry.name)}: cannot keep a copy in {where} ({exc.strerror or exc}); "
            "reading it once instead (same results, slower; set TMPDIR to a roomier directory)"
        )
        before: list[Any] = []
        if entry.spool is not None and entry.spool.size:
            before.append(entry.spool.rewound())
        if pending:
            before.append(pending)
        entry.before = before
        return None
    return entry.spool.path


def display_name(path: str) -> str:
    """How messages name an input: ``<stdin>`` for ``-``, else as the user gave it."""
    name = display(path)
    return "<stdin>" if name == "-" else name


def _warn(message: str) -> None:
    print(f"auditeql: warning: {message}", file=sys.stderr)
