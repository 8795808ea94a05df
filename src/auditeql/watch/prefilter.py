"""Skip, from the raw SYSCALL record alone, audit events no loaded rule can match.

Building an ECS document costs far more than reading the records (parsing every record,
coalescing, placing fields). On a machine running 1,000 execs per second most of those events
are ``/bin/true``-like programs no rule looks at. Each rule filter tells us two *necessary*
conditions, read off its AST:

* the syscalls it can match (:func:`auditeql.watch.audit_rules.required_syscalls`);
* the ``process.name`` / ``process.executable`` values it can match (``process.name :
  ("bash", "python*")`` …), which go-libaudit takes from the SYSCALL record's ``comm`` / ``exe``.

An event passes when *some* filter (of any rule, ``until`` and ``![…]`` stages included) allows
both its syscall and its ``comm``; a filter with an unknown condition allows everything on that
axis. Decisions are made on the SYSCALL record (the kernel sends it first); the event's other
records are then skipped by serial number. Anything this code cannot read with certainty (no
SYSCALL record, a hex-encoded ``comm``, an unknown arch) is passed on: the normalizer and the
engines decide. Only matching is narrowed, never results: a skipped event could not have
matched any filter. The cost is context: alert ancestry only knows the events that passed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auditeql.audit import tables
from auditeql.eql import ast
from auditeql.engine.ordering import timestamp_ms
from auditeql.eql.parser import parse_query
from auditeql.eql.plan import SequencePlan
from auditeql.fields import first
from auditeql.watch.audit_rules import query_filters, required_syscalls

#: ECS fields go-libaudit fills from the SYSCALL record -> the record's key.
IDENTITY_FIELDS: dict[str, bytes] = {"process.name": b"comm", "process.executable": b"exe"}
NAME_FIELDS = frozenset(IDENTITY_FIELDS)
_REMEMBER = 8192


# --------------------------------------------------------------------------- name patterns


def _literal_strings(values: Sequence[ast.Expr]) -> list[str] | None:
    out = []
    for v in values:
        if not isinstance(v, ast.Literal) or not isinstance(v.value, str):
            return None
        out.append(v.value)
    return out


def required_names(expr: ast.Expr) -> frozenset[tuple[str, str]] | None:
    """``(field, pattern)`` pairs one of which the event must match, or ``None`` if unknown.

    ``field`` is ``process.name`` or ``process.executable``; patterns are lower-cased with
    ``*``/``?`` wildcards. Case is ignored even for ``==`` (a superset is always safe).
    """
    if isinstance(expr, ast.Comparison) and expr.op == "==":
        left, right = expr.left, expr.right
        if isinstance(right, ast.Field):
            left, right = right, left
        if (isinstance(left, ast.Field) and left.name in NAME_FIELDS and isinstance(right, ast.Literal)
                and isinstance(right.value, str)):
            return frozenset({(left.name, _escape(right.value.lower()))})
        return None
    if isinstance(expr, ast.StringMatch) and isinstance(expr.left, ast.Field) and expr.left.name in NAME_FIELDS:
        if expr.op not in (":", "like", "like~"):
            return None  # regex: not enumerable here
        vals = _literal_strings(expr.values)
        if vals is None:
            return None
        # only * and ? are wildcards: a backslash stands for itself
        return frozenset((expr.left.name, v.lower().replace("\\", "\\\\")) for v in vals)
    if isinstance(expr, ast.InSet) and not expr.negated and isinstance(expr.left, ast.Field) \
            and expr.left.name in NAME_FIELDS:
        vals = _literal_strings(expr.values)
        return frozenset((expr.left.name, _escape(v.lower())) for v in vals) if vals is not None else None
    if isinstance(expr, ast.And):
        left = required_names(expr.left)
        return left if left is not None else required_names(expr.right)
    if isinstance(expr, ast.Or):
        left, right = required_names(expr.left), required_names(expr.right)
        return left | right if left is not None and right is not None else None
    return None


def _escape(text: str) -> str:
    """A literal (``==``/``in``) as a pattern: its own ``*``/``?`` must not act as wildcards."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _pattern_regex(patterns: frozenset[str]) -> re.Pattern[str]:
    parts = []
    for pat in sorted(patterns):
        out, i = [], 0
        while i < len(pat):
            ch = pat[i]
            if ch == "\\" and i + 1 < len(pat):
                out.append(re.escape(pat[i + 1]))
                i += 2
                continue
            out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
            i += 1
        parts.append("".join(out))
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


# --------------------------------------------------------------------------- the filter


@dataclass(frozen=True)
class _Allow:
    syscalls: frozenset[str] | None
    #: record key (b"comm", b"exe") -> pattern; None = any identity
    names: tuple[tuple[bytes, re.Pattern[str]], ...] | None
    #: for a later sequence stage without identity constraint: the join keys it waits for
    awaits: _Awaited | None = None


#: ECS join-key fields readable from the raw SYSCALL record (decimal values) -> record key.
#: ``host.id`` is the same for every record of one live source and is left out of the comparison.
KEY_FIELDS: dict[str, bytes] = {"process.pid": b"pid", "process.parent.pid": b"ppid"}
_IGNORED_KEYS = frozenset({"host.id"})
_AWAIT_MAX = 65_536


@dataclass
class _Awaited:
    """Keys a sequence stage k > 0 can still advance: those of documents that matched stage k-1.

    A sequence only advances at stage k for a join key whose stage k-1 already matched, so an
    event whose key was never produced by stage k-1 (within the span) cannot be part of a
    result through this stage. A superset of the engine's own pending keys, hence sound.
    """

    previous: Callable[[Any], bool]  # stage k-1's compiled predicate
    previous_paths: tuple[str, ...]  # its key paths (positions kept)
    raw_keys: tuple[bytes, ...]  # this stage's keys, read off the raw record (same positions)
    span_ms: int
    seen: OrderedDict[tuple[int, ...], int]
    overflow: bool = False

    def observe(self, doc: Any, ts_ms: int) -> None:
        if not self.previous(doc):
            return
        key = []
        for path in self.previous_paths:
            value = first(doc, path)
            try:
                key.append(int(value))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return  # a non-numeric key can never equal a raw pid: nothing to wait for
        k = tuple(key)
        self.seen.pop(k, None)
        self.seen[k] = ts_ms
        while self.seen:
            oldest_key, oldest = next(iter(self.seen.items()))
            if oldest >= ts_ms - self.span_ms and len(self.seen) <= _AWAIT_MAX:
                break
            if len(self.seen) > _AWAIT_MAX:
                self.overflow = True  # too many to track: stop narrowing (keep everything)
            del self.seen[oldest_key]

    def admits(self, payload: bytes) -> bool:
        if self.overflow:
            return True
        key = []
        for raw in self.raw_keys:
            value = _plain(payload, raw)
            if value is None or not value.isdigit():
                return True  # cannot read it: keep
            key.append(int(value))
        return tuple(key) in self.seen


def _awaited(rule: Any, stage: int) -> _Awaited | None:
    """The awaited-keys tracker for ``stage`` of a sequence rule, or None when not applicable."""
    plan = getattr(rule, "plan", None)
    if not isinstance(plan, SequencePlan) or stage < 1 or stage >= len(plan.filters):
        return None
    this, prev = plan.filters[stage], plan.filters[stage - 1]
    if this.missing or prev.missing or len(this.keys) != len(prev.keys) or not this.keys:
        return None
    raw: list[bytes] = []
    prev_paths: list[str] = []
    for mine, theirs in zip(this.keys, prev.keys):
        if mine.path in _IGNORED_KEYS and theirs.path in _IGNORED_KEYS:
            continue
        if mine.path not in KEY_FIELDS or mine.optional or theirs.optional:
            return None
        raw.append(KEY_FIELDS[mine.path])
        prev_paths.append(theirs.path)
    if not raw:
        return None
    span = plan.maxspan_ms or max(rule.from_offset_ms, 1)
    return _Awaited(prev.predicate, tuple(prev_paths), tuple(raw), span, OrderedDict())


def _identity(pairs: frozenset[tuple[str, str]] | None) -> tuple[tuple[bytes, re.Pattern[str]], ...] | None:
    if pairs is None:
        return None
    by_key: dict[bytes, set[str]] = {}
    for field_name, pattern in pairs:
        by_key.setdefault(IDENTITY_FIELDS[field_name], set()).add(pattern)
    return tuple((key, _pattern_regex(frozenset(pats))) for key, pats in sorted(by_key.items()))


class RecordPrefilter:
    """Decide per raw record (netlink type + payload) whether it can matter to any rule.

    ``skipped_events`` counts events skipped; ``active`` is False when every event must pass.
    """

    def __init__(self, rules: Sequence[Any] = (), on_drop: Callable[[int], Any] | None = None) -> None:
        #: called with the serial of each event skipped: records of it that came *before* its
        #: SYSCALL record (e.g. EVENT_LISTENER, AVC) are already in the reassembler and must be
        #: discarded there, or they would hold back every later event until they time out
        self.on_drop = on_drop
        #: how many events the reassembler still holds; sequence-stage narrowing is used only
        #: when it is 0 (then every earlier event has been observed). None: never narrow.
        self.pending: Callable[[], int] | None = None
        self._allows: tuple[_Allow, ...] = ()
        self._awaits: tuple[_Awaited, ...] = ()
        self.active = False
        self._dropped: OrderedDict[bytes, None] = OrderedDict()
        self.skipped_events = 0
        self.update(rules)

    def update(self, rules: Sequence[Any]) -> None:
        """(Re)build from ``rules``. Trackers of unchanged rules keep what they learnt, so that a
        reload (SIGHUP) does not make them forget keys a pending sequence still waits for."""
        allows = []
        old = getattr(self, "_trackers", {})
        trackers: dict[tuple[str, str, int], _Awaited] = {}
        for rule in rules:
            stages = query_filters(parse_query(rule.query))
            plan = getattr(rule, "plan", None)
            expanded = isinstance(plan, SequencePlan) and len(plan.filters) + (plan.until is not None) == len(stages)
            for i, (flt, _missing) in enumerate(stages):
                names = _identity(required_names(flt.condition))
                awaits = None
                if names is None and expanded:
                    ident = (str(getattr(rule, "rule_id", "")), rule.query, i)
                    awaits = old.get(ident) or _awaited(rule, i)
                    if awaits is not None:
                        trackers[ident] = awaits
                allows.append(_Allow(required_syscalls(flt.condition), names, awaits))
        self._trackers = trackers
        self._allows = tuple(allows)
        self._awaits = tuple(a.awaits for a in allows if a.awaits is not None)
        self.active = bool(allows) and not any(
            a.syscalls is None and a.names is None and a.awaits is None for a in allows)

    def observe(self, doc: Any) -> None:
        """Tell the awaited-key trackers about a document just built (call before the next record)."""
        if not self._awaits:
            return
        ts = first(doc, "@timestamp")
        try:
            ms = int(timestamp_ms(ts)) if ts is not None else None
        except (TypeError, ValueError):
            ms = None
        if ms is None:
            return
        for awaited in self._awaits:
            awaited.observe(doc, ms)

    def keep(self, msg_type: int, payload: bytes) -> bool:
        """False for a record of an event no filter can match (see the module docstring)."""
        if not self.active:
            return True
        serial = _serial(payload)
        if serial is None:
            return True
        if msg_type != tables.SYSCALL:
            return serial not in self._dropped
        if self._allowed(payload):
            return True
        dropped = self._dropped
        dropped[serial] = None
        if len(dropped) > _REMEMBER:
            dropped.popitem(last=False)
        self.skipped_events += 1
        if self.on_drop is not None and serial.isdigit():
            self.on_drop(int(serial))
        return False

    def _allowed(self, payload: bytes) -> bool:
        syscall = _syscall_name(payload)
        values: dict[bytes, str | None] = {}
        for allow in self._allows:
            if allow.syscalls is not None:
                if syscall is None:
                    return True  # cannot tell: keep
                if syscall not in allow.syscalls:
                    continue
            if allow.names is None:
                if allow.awaits is None:
                    return True
                # every earlier event must already be a document the trackers have seen
                if self.pending is None or self.pending() or allow.awaits.admits(payload):
                    return True
                continue
            for key, regex in allow.names:
                if key not in values:
                    values[key] = _quoted(payload, key)
                value = values[key]
                if value is None:
                    return True  # hex-encoded or absent: cannot tell, keep
                if regex.match(value.lower()):
                    return True
        return False


def _serial(payload: bytes) -> bytes | None:
    start = payload.find(b"audit(")
    if start < 0:
        return None
    end = payload.find(b")", start)
    colon = payload.rfind(b":", start, end)
    if end < 0 or colon < 0:
        return None
    return payload[colon + 1:end]


def _syscall_name(payload: bytes) -> str | None:
    a = payload.find(b" arch=")
    s = payload.find(b" syscall=")
    if a < 0 or s < 0 or payload.count(b" arch=") > 1 or payload.count(b" syscall=") > 1:
        return None  # (a repeated key: the record keeps the last value) cannot tell
    arch_hex = payload[a + 6:payload.find(b" ", a + 6)].decode("ascii", "replace").lower().lstrip("0") or "0"
    end = payload.find(b" ", s + 9)
    number = payload[s + 9:end if end >= 0 else None]
    arch = tables.ARCH_NAMES.get(arch_hex)
    table = tables.SYSCALL_NAMES.get(arch) if arch else None
    if table is None or not number.isdigit():
        return None
    return table.get(int(number))


def _plain(payload: bytes, key: bytes) -> bytes | None:
    """The unquoted value of `` key=value`` in a record (pid, ppid…)."""
    marker = b" " + key + b"="
    c = payload.find(marker)
    if c < 0 or payload.count(marker) > 1:
        return None  # absent, or repeated (the record keeps the last value): cannot tell
    start = c + len(marker)
    end = payload.find(b" ", start)
    return payload[start:end if end >= 0 else None]


def _quoted(payload: bytes, key: bytes) -> str | None:
    """The value of ``key="…"`` in a SYSCALL record; None when absent or hex-encoded."""
    marker = b" " + key + b'="'
    c = payload.find(marker)
    if c < 0 or payload.count(b" " + key + b"=") > 1:
        return None  # absent, hex-encoded or repeated: let the normalizer decide
    start = c + len(marker)
    end = payload.find(b'"', start)
    if end < 0:
        return None
    return payload[start:end].decode("utf-8", "replace")
