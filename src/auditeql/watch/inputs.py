"""Live inputs for ``watch``: each turns its source into ECS documents through one Normalizer.

``--source`` values and what they become:

* ``netlink`` → :class:`NetlinkInput` (kernel multicast, records → ``Normalizer.feed_netlink``);
* ``file:PATH`` → :class:`FileInput` (followed across rotation, checkpointed at event boundaries);
* ``audisp`` → :class:`StreamInput` over stdin (auditd's dispatcher, string or binary format);
  ``audisp:SOCKET`` → the same over auditd's builtin af_unix plugin socket;
* ``-`` → :class:`StreamInput` over stdin, which may carry raw audit lines or ECS NDJSON.

All inputs share one small protocol — ``read(timeout) -> list[doc]``, ``eof``, ``flush()``,
``maintain()``, ``checkpoint(force)``, ``stats()``, ``close()`` — so the runner does not care
where documents come from.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from auditeql.audit.pipeline import Normalizer
from auditeql.sources import audisp, checkpoint
from auditeql.sources.follow import FileFollower
from auditeql.sources.netlink import NetlinkSource
from auditeql.watch.prefilter import RecordPrefilter

Doc = dict[str, Any]


class SourceError(ValueError):
    """A ``--source`` value that cannot be used; the message says what is accepted."""


class _Input:
    """Common parts: the normalizer, periodic maintenance, end-of-input flush."""

    kind = "input"

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer
        self.eof = False

    def maintain(self) -> list[Doc]:
        """Events whose reassembly timed out (a record was lost or never came)."""
        return self.normalizer.maintain()

    def flush(self) -> list[Doc]:
        """Every event still being reassembled (shutdown)."""
        return self.normalizer.flush()

    def checkpoint(self, force: bool = False, *, newest_ms: float | None = None,
                   released_ms: float | None = None) -> None:
        """Save the read position if this input has one (only :class:`FileInput`).

        ``newest_ms``: no event read so far entered an engine's reorder buffer with a later time;
        ``released_ms``: no event older than this waits in one (``inf``: none waits; see
        :meth:`FileInput.checkpoint` and :meth:`LiveRunner.held_ms`)."""

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class NetlinkInput(_Input):
    kind = "netlink"

    def __init__(self, normalizer: Normalizer, *, rcvbuf: int, prefilter: RecordPrefilter | None = None,
                 stderr: TextIO | None = None) -> None:
        super().__init__(normalizer)
        self.source = NetlinkSource(rcvbuf=rcvbuf, stderr=stderr)
        self.prefilter = prefilter
        if prefilter is not None:
            _attach(prefilter, normalizer)

    def read(self, timeout: float) -> list[Doc]:
        feed = self.normalizer.feed_netlink
        pre = self.prefilter if self.prefilter is not None and self.prefilter.active else None
        docs: list[Doc] = []
        for msg_type, payload in self.source.read(timeout=timeout):
            if pre is None:
                docs.extend(feed(msg_type, payload))
            elif pre.keep(msg_type, payload):
                new = feed(msg_type, payload)
                for doc in new:
                    pre.observe(doc)  # before the next record is judged
                docs.extend(new)
        return docs

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enobufs": self.source.overflows}
        if self.prefilter is not None:
            out["prefiltered"] = self.prefilter.skipped_events
        return out

    def close(self) -> None:
        self.source.close()


#: Most bytes one :meth:`FileInput.read` takes from the log (~0.1 s of work, one loop tick).
#: The follower's default, 8 MiB, is seconds of work on a busy log: the loop's timers, signals
#: and checkpoint waited that long, and a checkpoint lagged the reader by a whole batch.
READ_BYTES = 256 << 10


class FileInput(_Input):
    """A followed audit.log. The checkpoint is written only when no event is half-read.

    Saving at an event boundary matters: an event's records are several lines; a checkpoint in
    the middle of one would, after a restart, give the reassembler its tail without its head.
    So the position saved is one where the reassembler held nothing (``in_flight == 0``): the
    current one when it is empty at a tick, else the last line of a read after which it was
    (a busy log is almost never empty at a tick) — at most once per ``every`` seconds — and
    unconditionally after the final flush at shutdown.
    """

    kind = "file"

    def __init__(self, normalizer: Normalizer, path: str, *, checkpoint_path: str | None,
                 from_start: bool = False, every: float = 1.0, stderr: TextIO | None = None) -> None:
        super().__init__(normalizer)
        self.checkpoint_path = checkpoint_path
        saved = checkpoint.load(checkpoint_path) if checkpoint_path else None
        self.follower = FileFollower(path, saved, start_at_end=not from_start, stderr=stderr)
        self.follower.track_ends = True
        #: the newest position at an event boundary seen while reading (see :meth:`read`)
        self._boundary: checkpoint.Checkpoint | None = None
        if not os.path.exists(path):
            print(f"auditeql: {path} does not exist yet; waiting for it to appear", file=stderr or sys.stderr, flush=True)
        self._every = every
        self._last_saved = 0.0
        self._saved_pos: checkpoint.Checkpoint | None = saved
        self.checkpoints_written = 0
        #: (position, newest event time when it was taken), oldest first: not yet known to be safe
        self._pending: deque[tuple[checkpoint.Checkpoint, float]] = deque()

    def read(self, timeout: float) -> list[Doc]:
        feed = self.normalizer.feed_line
        reassembler = self.normalizer.reassembler
        docs: list[Doc] = []
        lines = self.follower.read(timeout=timeout, max_bytes=READ_BYTES)
        ends = self.follower.line_ends
        last = -1
        for i, line in enumerate(lines):
            docs.extend(feed(line))
            if ends is not None and not reassembler.in_flight:
                last = i
        if ends is not None and last >= 0:
            # the last event boundary in this batch: a busy log almost never leaves the reassembler
            # empty at a tick, and a checkpoint taken only then fell minutes behind (found by a soak)
            self._boundary = self.follower.position_at(ends[last])
        return docs

    def checkpoint(self, force: bool = False, *, newest_ms: float | None = None,
                   released_ms: float | None = None) -> None:
        """Save a position every event before which has been fully processed.

        A position is a candidate when no event is half-read; it becomes safe once the engines
        have released every event read before it from their reorder buffers — known by event
        time: every event read before it that entered a buffer is no newer than ``newest_ms`` at
        the moment the position was taken, and nothing older than ``released_ms`` still waits
        (``newest_ms < released_ms``). (Saving a position whose events still waited in a buffer
        lost their alerts on a SIGKILL; found under load.) When nothing waits (rules that never
        buffer, like ``sample``), ``released_ms`` is ``inf`` and every candidate is safe at once.
        Without times (``released_ms`` None) the position is taken as it is, as before."""
        if not self.checkpoint_path:
            return
        now = time.monotonic()
        pos = self.follower.position
        if not force:
            if self.normalizer.reassembler.in_flight:
                if self._boundary is None or self._boundary.inode != pos.inode:
                    return
                pos = self._boundary  # the last point in the stream where no event was half-read
            if released_ms is not None:
                pending = self._pending
                if pos.inode != 0 and (not pending or pending[-1][0] != pos):
                    pending.append((pos, newest_ms if newest_ms is not None else float("inf")))
                    if len(pending) > 4096:
                        pending.popleft()
                safe = None
                while pending and pending[0][1] < released_ms:
                    safe = pending.popleft()[0]
                if safe is None:
                    return
                pos = safe
            if now - self._last_saved < self._every:
                return
        else:
            self._pending.clear()
        if pos == self._saved_pos or pos.inode == 0:  # unchanged, or no file opened yet
            return
        checkpoint.save(self.checkpoint_path, pos)
        self._saved_pos = pos
        self._last_saved = now
        self.checkpoints_written += 1

    def stats(self) -> dict[str, Any]:
        return {"rotations": self.follower.rotations, "truncations": self.follower.truncations}

    def close(self) -> None:
        self.follower.close()


class StreamInput(_Input):
    """stdin or an af_unix socket: audit lines, audisp binary frames, or ECS NDJSON lines."""

    kind = "stream"

    def __init__(self, normalizer: Normalizer, reader: audisp.StreamReader, *,
                 prefilter: RecordPrefilter | None = None, stderr: TextIO | None = None) -> None:
        super().__init__(normalizer)
        self.reader = reader
        self.prefilter = prefilter
        if prefilter is not None:
            _attach(prefilter, normalizer)
        self._stderr = stderr if stderr is not None else sys.stderr
        self.bad_json = 0
        self.ecs_documents = 0

    def read(self, timeout: float) -> list[Doc]:
        norm = self.normalizer
        docs: list[Doc] = []
        for rtype, data in self.reader.read(timeout=timeout):
            if rtype is not None:
                pre = self.prefilter
                if pre is None or not pre.active:
                    docs.extend(norm.feed_netlink(rtype, data))
                elif pre.keep(rtype, data):
                    new = norm.feed_netlink(rtype, data)
                    for doc in new:
                        pre.observe(doc)
                    docs.extend(new)
            elif data[:1] == b"{":
                doc = self._json(data)
                if doc is not None:
                    docs.append(doc)
            else:
                docs.extend(norm.feed_line(data))
        self.eof = self.reader.eof
        return docs

    def _json(self, line: bytes) -> Doc | None:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            doc = exc
        if isinstance(doc, dict):
            self.ecs_documents += 1
            return doc
        self.bad_json += 1
        if self.bad_json <= 5:
            print(f"auditeql: skipped a line that starts like JSON but is not a JSON object ({line[:60]!r}…)",
                  file=self._stderr, flush=True)
        return None

    def stats(self) -> dict[str, Any]:
        return {"bad_lines": self.bad_json + self.reader.errors} if (self.bad_json or self.reader.errors) else {}


def _attach(prefilter: RecordPrefilter, normalizer: Normalizer) -> None:
    """Connect the prefilter to the reassembler it feeds (discard skipped serials, see in-flight)."""
    reassembler = normalizer.reassembler
    prefilter.on_drop = reassembler.discard
    prefilter.pending = lambda: reassembler.in_flight


def open_input(spec: str, make_normalizer: Callable[[], Normalizer], *, rcvbuf: int,
               checkpoint_path: str | None, from_start: bool, prefilter: RecordPrefilter | None = None,
               stderr: TextIO | None = None) -> _Input:
    """The input named by a ``--source`` value (see the module docstring).

    ``prefilter`` applies to sources that deliver raw records (netlink, audisp binary frames);
    text lines go through the normalizer's syscall push-down only.
    """
    if spec == "netlink":
        return NetlinkInput(make_normalizer(), rcvbuf=rcvbuf, prefilter=prefilter, stderr=stderr)
    if spec.startswith("file:"):
        path = spec[5:]
        if not path:
            raise SourceError("--source file:PATH needs a path, e.g. file:/var/log/audit/audit.log")
        return FileInput(make_normalizer(), path, checkpoint_path=checkpoint_path, from_start=from_start,
                         stderr=stderr)
    if spec in ("audisp", "-"):
        return StreamInput(make_normalizer(), audisp.stdin_reader(), prefilter=prefilter, stderr=stderr)
    if spec.startswith("audisp:"):
        return StreamInput(make_normalizer(), audisp.connect(spec[7:]), prefilter=prefilter, stderr=stderr)
    raise SourceError(
        f"unknown --source {spec!r}; use netlink, file:PATH, audisp, audisp:SOCKET or - (stdin)"
    )
