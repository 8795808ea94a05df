"""Lines or records in, ECS documents out: parse → reassemble → coalesce → place.

:class:`Normalizer` is the one object every source uses (files, follow, netlink, audisp, stdin),
so all of them produce the same documents and the same counters.

The ``keep`` push-down seam
---------------------------
``keep`` lets a caller that knows which events can matter (e.g. the rules' push-down, which knows
the seed rule only reads ``execve``/``socket``/``connect``) drop every other event before any
key=value parsing, coalescing or document building. It is consulted as early as possible:

* for a SYSCALL record, right after the header is parsed, with the architecture and syscall
  number read straight off the front of the body (the kernel always starts a SYSCALL record with
  ``arch=<hex> syscall=<n>``) and translated with the syscall table — a dict lookup, no parsing;
* for an event without a SYSCALL record (user-space messages, CONFIG_CHANGE without syscall…),
  when the event is complete, with only its record type.

Decision protocol: ``keep`` is either a callable ``keep(record_type, arch, syscall) -> bool`` or
an object with a method of that name and signature (``keep.keep(record_type, arch, syscall)``).
``record_type`` is the record type number of the record being decided on (1300 for SYSCALL),
``arch`` the arch name (``"x86_64"``, ``"i386"``… or ``None``) and ``syscall`` the syscall name
(``"connect"``; the decimal number as a string when the arch has no table; ``None`` for events
without a SYSCALL record). Returning False drops the whole event: records already buffered for its
serial are discarded and later records with that serial are dropped on their header alone. The
dropped events are counted in ``stats["dropped_by_keep"]``. ``keep=None`` keeps everything and is
exactly equivalent to a ``keep`` that always returns True.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from auditeql.audit import tables
from auditeql.audit.coalesce import coalesce
from auditeql.audit.ecs import FLAVORS, build_document
from auditeql.audit.host import HostInfo
from auditeql.audit.reassembly import Reassembler
from auditeql.audit.records import AuditRecord, Skip, parse_line, parse_netlink


class KeepPolicy(Protocol):
    def keep(self, record_type: int, arch: str | None, syscall: str | None) -> bool: ...


KeepFn = Callable[[int, str | None, str | None], bool]

_DROPPED_MEMORY = 4096
_AUDIT_REPLACE = 1329


def syscall_hint(rec: AuditRecord) -> tuple[str | None, str | None]:
    """(arch name, syscall name) from the front of a SYSCALL record body, without parsing it."""
    body = rec.body
    if not body.startswith("arch=") or body.count(" arch=") or body.count(" syscall=") > 1:
        return None, None  # (a repeated key: the record keeps the last value) cannot tell
    sp = body.find(" ", 5)
    if sp < 0:
        return None, None
    arch = tables.arch_name(body[5:sp])
    if not body.startswith("syscall=", sp + 1):
        return arch, None
    start = sp + 9
    end = body.find(" ", start)
    number = body[start:] if end < 0 else body[start:end]
    table = tables.SYSCALL_NAMES.get(arch)
    if table is not None and number.isdigit():
        return arch, table.get(int(number), number)
    return arch, number


class Normalizer:
    """Turns audit.log lines or records into ECS documents, keeping counters.

    ``flavor``: ``"auditd-manager"`` (default) or ``"auditbeat"``; ``host``: a
    :class:`~auditeql.audit.host.HostInfo` (``None`` = no ``host.*`` and no name lookups);
    ``keep``: the push-down seam described in the module docstring (``pushdown`` is an alias).
    ``clock``: pass ``time.monotonic`` for live sources so that incomplete events expire in wall
    time; without it (files) only the in-flight limit and ``flush`` release incomplete events.
    ``original=True`` adds ``event.original``.
    """

    def __init__(
        self,
        flavor: str = "auditd-manager",
        host: HostInfo | None = None,
        keep: KeepFn | KeepPolicy | None = None,
        *,
        pushdown: KeepFn | KeepPolicy | None = None,
        clock: Callable[[], float] | None = None,
        max_in_flight: int = 50,
        timeout_ms: int = 2000,
        original: bool = False,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
        self.flavor = flavor
        self.host = host
        policy = keep if keep is not None else pushdown
        if policy is not None and not callable(policy):
            policy = policy.keep  # type: ignore[union-attr]
        self._keep: KeepFn | None = policy  # type: ignore[assignment]
        self.original = original
        self.reassembler = Reassembler(max_in_flight=max_in_flight, timeout_ms=timeout_ms, clock=clock)
        self._dropped: OrderedDict[int, None] = OrderedDict()
        self._placeholders: dict[int, tuple[AuditRecord, Any]] = {}
        self.records = 0
        self.events = 0
        self.dropped_by_keep = 0
        self.skipped: Counter[str] = Counter()
        self.warnings = 0

    # -- input -----------------------------------------------------------------------------
    def feed_line(self, line: bytes | str) -> list[dict[str, Any]]:
        """One audit.log line (bytes or str, with or without the newline)."""
        rec = parse_line(line)
        if type(rec) is Skip:
            if rec.reason != "empty":
                self.skipped[rec.reason] += 1
            return []
        if self._keep is None:  # feed_record without push-down, inlined (the per-line hot path)
            self.records += 1
            groups = self.reassembler.push(rec)  # type: ignore[arg-type]
            return self._build(groups) if groups else []
        return self.feed_record(rec)  # type: ignore[arg-type]

    def feed_netlink(self, msg_type: int, payload: bytes) -> list[dict[str, Any]]:
        """One netlink audit message (type from nlmsghdr, payload after it).

        Like Auditbeat, only record types 1100–2999 and LOGIN (1006) are records; other types are
        control replies (AUDIT_GET…), and AUDIT_REPLACE (1329) is a kernel ping to the daemon.
        """
        if not (1100 <= msg_type <= 2999 or msg_type == tables.LOGIN) or msg_type == _AUDIT_REPLACE:
            self.skipped["not-a-record"] += 1
            return []
        rec = parse_netlink(msg_type, payload)
        if type(rec) is Skip:
            self.skipped[rec.reason] += 1
            return []
        return self.feed_record(rec)  # type: ignore[arg-type]

    def feed_lines(self, lines: Iterable[bytes | str]) -> Iterable[dict[str, Any]]:
        for line in lines:
            yield from self.feed_line(line)

    def feed_record(self, rec: AuditRecord) -> list[dict[str, Any]]:
        self.records += 1
        keep = self._keep
        if keep is not None:
            serial = rec.serial
            if serial in self._dropped:
                return []
            if rec.type == tables.SYSCALL:
                arch, syscall = syscall_hint(rec)
                if not keep(rec.type, arch, syscall):
                    self._drop(serial)
                    return self._build(self.reassembler.maintain())
        return self._build(self.reassembler.push(rec))

    def feed_placeholder(self, seconds: int, millis: int, serial: int, payload: Any,
                         complete: bool = True) -> list[Any]:
        """Hold a place in the event order for an event a caller skipped without parsing.

        The rules' push-down (:mod:`auditeql.rules.pushdown`) skips events at their SYSCALL line
        but still owes process context a stand-in for them, in the position the event's document
        would have had. ``payload`` comes out of ``feed_*``/``flush`` in that position, in place of
        a document (added by the performance work; only callers that pass placeholders see them;
        a ``None`` payload holds the place and then vanishes).

        ``complete``: whether the skipped records so far complete the event (PROCTITLE, EOE…).
        An incomplete placeholder stays in flight exactly as the event's records would: it holds
        back later events until a completing record with its serial arrives (through
        ``feed_line``/``feed_record``), the in-flight limit evicts it, or ``flush``. Records fed
        with its serial while it is in flight join it: they are handed to ``payload.absorb``
        (when it has one) on release. The caller must not pass a serial that is :meth:`pending`.
        """
        if complete and self.reassembler.release_now(serial):
            if payload is None:
                return []
            self.events += 1
            return [payload]
        stub = AuditRecord(tables.PROCTITLE if complete else tables.SYSCALL, seconds, millis, serial, "")
        self._placeholders[serial] = (stub, payload)
        return self._build(self.reassembler.push(stub))

    def release_placeholder(self, serial: int) -> bool:
        """:meth:`feed_placeholder` of a complete event when nothing is in flight, where the
        placeholder would leave at once: True if so (the caller emits its stand-in itself, in
        this very position), False (nothing done) when another event is in flight."""
        if self.reassembler.release_now(serial):
            self.events += 1
            return True
        return False

    def pending(self, serial: int) -> bool:
        """Is an event with this serial in flight (a record with it would join that event)?"""
        return self.reassembler.pending(serial)

    def build_group(self, records: list[AuditRecord]) -> dict[str, Any] | None:
        """The document of one group of records (as :meth:`flush` would build it), or None when
        the group has no record that makes a document (EOE records are not part of a group)."""
        records = [r for r in records if r.type != tables.EOE]
        if not records:
            return None
        docs = self._build([records])
        return docs[0] if docs else None

    def maintain(self) -> list[dict[str, Any]]:
        """Release events that timed out (live sources call this periodically)."""
        return self._build(self.reassembler.maintain())

    def flush(self) -> list[dict[str, Any]]:
        """Release every pending event (end of input)."""
        return self._build(self.reassembler.flush())

    # -- internals -------------------------------------------------------------------------
    def _drop(self, serial: int) -> None:
        self.reassembler.discard(serial)
        self.dropped_by_keep += 1
        dropped = self._dropped
        dropped[serial] = None
        if len(dropped) > _DROPPED_MEMORY:
            dropped.popitem(last=False)

    def _build(self, groups: list[list[AuditRecord]]) -> list[dict[str, Any]]:
        if not groups:
            return []
        out = []
        keep = self._keep
        placeholders = self._placeholders
        for records in groups:
            if placeholders:
                held = placeholders.get(records[0].serial)
                if held is not None and records[0] is held[0]:
                    del placeholders[records[0].serial]
                    payload = held[1]
                    if payload is not None:
                        if len(records) > 1:
                            payload.absorb(records[1:])  # records that joined it while in flight
                        out.append(payload)
                    continue
            if keep is not None and not any(r.type == tables.SYSCALL for r in records):
                if not keep(records[0].type, None, None):
                    self.dropped_by_keep += 1
                    continue
            event = coalesce(records)
            if event.warnings:
                self.warnings += 1
            out.append(build_document(event, self.flavor, self.host, original=self.original))
        self.events += len(out)
        return out

    @property
    def stats(self) -> dict[str, Any]:
        r = self.reassembler.stats
        return {
            "events": self.events,
            "records": self.records,
            "skipped": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "dropped_by_keep": self.dropped_by_keep,
            "reassembly_timeouts": r.timed_out,
            "reassembly_evicted_in_flight": r.evicted_in_flight,
            "lost_serials": r.lost,
            "events_with_warnings": self.warnings,
        }
