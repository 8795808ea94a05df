"""Group records into events by serial number, with go-libaudit's completion rules.

Why these exact rules: the grouping decides which records end up in one document, so to produce
Auditbeat's documents we must group as its ``Reassembler`` does:

* records are grouped by serial; an ``EOE`` record completes its group and is not kept;
* a group is also complete when it receives ``PROCTITLE``, or any record whose type is ≤ 1299
  (user-space and daemon messages) or ≥ 2100 — auditd never writes EOE to audit.log, so in files
  PROCTITLE is what ends a syscall event;
* groups leave only from the head (lowest serial, u32 rollover aware): when complete, when more
  than ``max_in_flight`` groups are pending, or when older than ``timeout_ms``;
* gaps between emitted serials are counted as lost (the kernel dropped records, or a rule
  filtered them — harmless).

Time: go-libaudit expires a group 2 s (wall clock) after its first record *arrived*. Live sources
pass a clock (``clock=time.monotonic``) and get exactly that. Without a clock (reading files at
full speed, where go-libaudit's timer would practically never fire) there is no timeout: only the
in-flight limit and the end of input release incomplete groups. Record timestamps are not a
usable clock: a blocking syscall (``accept``, a slow ``connect``) is stamped at entry and its
records arrive seconds "late", so an audit-time timeout would cut such events in two.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from auditeql.audit import tables
from auditeql.audit.records import AuditRecord

_EOE, _PROCTITLE = tables.EOE, tables.PROCTITLE
_LAST_DAEMON, _ANOM_LOGIN_FAILURES = tables.LAST_DAEMON, tables.ANOM_LOGIN_FAILURES
_U32 = 1 << 32
_NEVER = float("inf")
_HALF = 1 << 31


@dataclass(slots=True)
class _Group:
    records: list[AuditRecord]
    expire_ms: float
    complete: bool = False


@dataclass(slots=True)
class ReassemblyStats:
    completed: int = 0
    timed_out: int = 0
    evicted_in_flight: int = 0
    flushed: int = 0
    lost: int = 0
    discarded: int = 0
    orphan_eoe: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def completes(record_type: int) -> bool:
    """Does a record of this type complete its group (besides EOE)?"""
    return (
        record_type == tables.PROCTITLE
        or record_type <= tables.LAST_DAEMON
        or record_type >= tables.ANOM_LOGIN_FAILURES
    )


def _unwrapped(last: int | None, serial: int) -> int:
    """``serial`` (a u32) as the monotonic integer closest to ``last`` (the rollover rule)."""
    if last is None:
        return serial
    candidate = last - (last % _U32) + serial
    if candidate - last > _HALF:
        candidate -= _U32
    elif last - candidate > _HALF:
        candidate += _U32
    return candidate


@dataclass
class Reassembler:
    """Collects records and hands back complete events (lists of records) in serial order.

    ``push`` returns the events its record released; ``maintain(now)`` releases expired ones
    without a new record (live sources call it periodically); ``flush`` releases everything.
    """

    max_in_flight: int = 50
    timeout_ms: int = 2000
    clock: Callable[[], float] | None = None
    stats: ReassemblyStats = field(default_factory=ReassemblyStats)

    def __post_init__(self) -> None:
        self._groups: dict[int, _Group] = {}
        self._order: list[int] = []  # unwrapped serials, ascending
        self._last_unwrapped: int | None = None
        self._last_emitted: int | None = None
        self._last_group: _Group | None = None
        self._last_serial = -1

    # -- serial handling -------------------------------------------------------------------
    def _unwrap(self, serial: int) -> int:
        """Map a u32 serial to a monotonic integer close to the last one seen (rollover)."""
        last = self._last_unwrapped
        candidate = _unwrapped(last, serial)
        if last is None or candidate > last:
            self._last_unwrapped = candidate
        return candidate

    def _now_ms(self) -> float:
        if self.clock is not None:
            return self.clock() * 1000.0
        return 0.0

    # -- public API ------------------------------------------------------------------------
    def push(self, rec: AuditRecord) -> list[list[AuditRecord]]:
        # fast path: the next record of the group just added to (records of an event are almost
        # always contiguous); without a clock nothing can be released unless it completes
        last = self._last_group
        if last is not None and rec.serial == self._last_serial and self.clock is None:
            rtype = rec.type
            if rtype != _EOE:
                last.records.append(rec)
                # completes(rtype), inlined: this runs for nearly every record
                if rtype == _PROCTITLE or rtype <= _LAST_DAEMON or rtype >= _ANOM_LOGIN_FAILURES:
                    last.complete = True
                    return self._clean()
                return []
        key = self._unwrap(rec.serial)
        group = self._groups.get(key)
        if rec.type == tables.EOE:
            if group is not None:
                group.complete = True
            else:
                self.stats.orphan_eoe += 1
            return self._clean()
        if group is None:
            expire = self._now_ms() + self.timeout_ms if self.clock is not None else _NEVER
            group = _Group([rec], expire)
            self._groups[key] = group
            self._last_group, self._last_serial = group, rec.serial
            order = self._order
            if not order or key > order[-1]:
                order.append(key)
            else:
                bisect.insort(order, key)
        else:
            group.records.append(rec)
        if completes(rec.type):
            group.complete = True
        return self._clean()

    def pending(self, serial: int) -> bool:
        """Is a group with this serial in flight (a record with it would join that group)?
        No side effect: the serial is unwrapped as :meth:`push` would, without remembering it."""
        groups = self._groups
        if not groups:
            return False
        return _unwrapped(self._last_unwrapped, serial) in groups

    def release_now(self, serial: int) -> bool:
        """Count a complete one-record group as released at once, if nothing is pending before it.

        What :meth:`push` of a complete record would do when no group is in flight (the group
        would leave immediately), without building one: for stand-ins of skipped events."""
        if self._order:
            return False
        self.stats.completed += 1
        self._count_gap(self._unwrap(serial))
        return True

    def discard(self, serial: int) -> bool:
        """Forget a pending group (push-down decided nobody wants it). True if one existed."""
        key = self._unwrap(serial)
        group = self._groups.pop(key, None)
        if group is None:
            return False
        if group is self._last_group:
            self._last_group = None
        idx = bisect.bisect_left(self._order, key)
        if idx < len(self._order) and self._order[idx] == key:
            del self._order[idx]
        self.stats.discarded += 1
        return True

    def maintain(self) -> list[list[AuditRecord]]:
        return self._clean()

    def flush(self) -> list[list[AuditRecord]]:
        out = []
        for key in self._order:
            group = self._groups[key]
            self._count_gap(key)
            out.append(group.records)
            self.stats.flushed += 1
        self._groups.clear()
        self._order.clear()
        self._last_group = None
        return out

    @property
    def in_flight(self) -> int:
        return len(self._order)

    # -- internals -------------------------------------------------------------------------
    def _count_gap(self, key: int) -> None:
        last = self._last_emitted
        if last is not None and key > last + 1:
            self.stats.lost += key - last - 1
        if last is None or key > last:
            self._last_emitted = key

    def _clean(self) -> list[list[AuditRecord]]:
        order = self._order
        if not order:
            return []
        out: list[list[AuditRecord]] = []
        groups = self._groups
        now = None
        i = 0
        n = len(order)
        while i < n:
            key = order[i]
            group = groups[key]
            if group.complete:
                self.stats.completed += 1
            elif n - i > self.max_in_flight:
                self.stats.evicted_in_flight += 1
            elif self.clock is not None:
                if now is None:
                    now = self._now_ms()
                if now > group.expire_ms:
                    self.stats.timed_out += 1
                else:
                    break
            else:
                break
            del groups[key]
            if group is self._last_group:
                self._last_group = None
            self._count_gap(key)
            out.append(group.records)
            i += 1
        if i:
            del order[:i]
        return out
