"""Alerts reach the output exactly once, even across a SIGKILL: the store is the write-ahead log.

Without this, ``watch`` stored an alert group and then wrote it. Killed between the two, the
restarted watcher re-detected the events (the checkpoint is never ahead of the work), found the
group's id in the store and dropped it as a duplicate: the alert never reached the output.

Now each group goes through three steps:

1. stored as *pending*, with the size the output file had before the write (one SQLite commit,
   which also settles the groups written since the previous commit);
2. handed to the extra sinks (webhook, syslog), then written and flushed to the output;
3. settled (delivered) in the next commit, or at the next tick.

At start, :meth:`Delivery.recover` looks at what is still pending. When the output is a regular
file, the bytes after the first pending offset show which alerts were written before the kill;
those are settled, a torn last line (a write cut short by the kill) is cut off, and only the
missing alerts are written. When the output cannot be read back (a pipe, a terminal), every
pending group is written again: at most the last group before the kill can repeat there. The
extra sinks are best effort: a group missing from the output is sent to them again.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from auditeql.alerts.store import PendingAlert

_TEXT_ID = re.compile(rb"\balert=([0-9a-f]{12})\b")
_UUID = "kibana.alert.uuid"
_GROUP = "kibana.alert.group.id"


@dataclass(frozen=True)
class Recovery:
    """What :meth:`Delivery.recover` found: groups already out, groups written again, bytes cut."""

    found: int
    replayed: int
    truncated: int


class Delivery:
    """The output stream with its write-ahead bookkeeping in the alert store (``store`` may be None)."""

    def __init__(
        self,
        out: IO[bytes],
        fmt: str,
        store: Any,
        *,
        render: Callable[[Sequence[Mapping[str, Any]]], bytes],
        on_error: Callable[[str], None],
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.store = store
        self.render = render
        self.on_error = on_error
        self.errors = 0
        self._written: list[str] = []

    # ------------------------------------------------------------------ the three steps

    def begin(self, alerts: Sequence[Mapping[str, Any]]) -> bool:
        """Step 1: store the group as pending. False when the store already had it (a duplicate)."""
        if self.store is None:
            return True
        try:
            new = self.store.add(alerts, pending=True, out_offset=self._offset(), settle=self._written)
        except Exception as exc:  # noqa: BLE001 - the store failing must not stop alerting
            self.errors += 1
            self.on_error(f"alert store: {exc}")
            return True
        self._written = []
        return new != 0

    def write(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Step 2: write and flush the group; its ids are settled with the next commit."""
        try:
            self.out.write(self.render(alerts))
            self.out.flush()
        except (OSError, ValueError) as exc:
            self.errors += 1
            self.on_error(f"cannot write alerts: {exc}")
            return
        if self.store is not None:
            self._written.extend(str(a.get(_UUID)) for a in alerts)

    def settle(self) -> None:
        """Step 3 for groups written since the last commit (called every tick and at the end)."""
        if self.store is None or not self._written:
            return
        try:
            self.store.settle(self._written)
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.on_error(f"alert store: {exc}")
            return
        self._written = []

    # ------------------------------------------------------------------ after an unclean stop

    def recover(self, send_to_sinks: Callable[[Mapping[str, Any]], None]) -> Recovery:
        """Write what a killed run stored but may not have written; settle what it did write."""
        if self.store is None:
            return Recovery(0, 0, 0)
        try:
            pending = self.store.pending()
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.on_error(f"alert store: cannot read pending alerts: {exc}")
            return Recovery(0, 0, 0)
        if not pending:
            return Recovery(0, 0, 0)
        present, truncated = self._already_written(pending)
        found = replayed = 0
        for group in _groups(pending):
            head = group[0]
            if self.fmt == "ndjson":
                missing = [a for a in group if str(a.get(_UUID)) not in present]
            else:
                missing = [] if str(head.get(_UUID))[:12] in present else list(group)
            if not missing:
                found += 1
                continue
            replayed += 1
            send_to_sinks(head)
            self.write(missing)
        self._written = [p.uuid for p in pending]
        self.settle()
        return Recovery(found, replayed, truncated)

    def _already_written(self, pending: Sequence[PendingAlert]) -> tuple[set[str], int]:
        """Ids found in the output after the first pending offset; cuts a torn last line of ours."""
        offsets = [p.out_offset for p in pending if p.out_offset is not None]
        fd = self._regular_fd()
        if fd is None or not offsets:
            return set(), 0
        start = min(offsets)
        try:
            with open(f"/proc/self/fd/{fd}", "rb") as fh:
                fh.seek(start)
                tail = fh.read()
        except OSError:
            return set(), 0
        truncated = 0
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:  # our own torn write: cut it off
                try:
                    os.ftruncate(fd, start + cut)
                    truncated = len(tail) - cut
                except OSError:
                    pass
            tail = tail[:cut]
        present: set[str] = set()
        if self.fmt == "ndjson":
            for line in tail.splitlines():
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and isinstance(doc.get(_UUID), str):
                    present.add(doc[_UUID])
        else:
            present.update(m.decode() for m in _TEXT_ID.findall(tail))
        return present, truncated

    def _regular_fd(self) -> int | None:
        try:
            fd = self.out.fileno()
            return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _offset(self) -> int | None:
        fd = self._regular_fd()
        if fd is None:
            return None
        try:
            return os.fstat(fd).st_size
        except OSError:
            return None


def _groups(pending: Sequence[PendingAlert]) -> list[list[dict[str, Any]]]:
    """Pending documents regrouped as stored: a shell and its building blocks, or a single alert."""
    groups: list[list[dict[str, Any]]] = []
    index: dict[str, list[dict[str, Any]]] = {}
    for p in pending:
        gid = p.doc.get(_GROUP)
        if isinstance(gid, str) and gid in index:
            index[gid].append(p.doc)
            continue
        group = [p.doc]
        groups.append(group)
        index[str(gid) if isinstance(gid, str) else p.uuid] = group
    return groups
