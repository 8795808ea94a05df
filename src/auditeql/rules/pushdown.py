"""Rule-driven push-down: skip, before parsing, the events no loaded rule can match.

Why: almost all the cost of a scan is building ECS documents (splitting key=value bodies,
coalescing records, placing fields) and testing them. Most audit events cannot match any loaded
rule — the seed rule only reads execve/socket/connect events of shells — and that is visible on
the raw SYSCALL line: its syscall number and its ``comm``. Deciding there makes a skipped event
cost a few byte operations per line instead of a full document.

What is derived (from each filter's AST, :attr:`CompiledFilter.source`): the filter's top-level
``and`` conjuncts that are *positive atoms* on fields a SYSCALL record alone determines —

* ``auditd.data.syscall`` (the syscall number, named with the architecture's table),
* ``event.action`` (go-libaudit's normalization of that syscall, when the SYSCALL record heads
  its event),
* ``process.name`` (the record's ``comm``, quoted or hex-encoded),
* ``auditd.data.a0``–``a3`` (the argument registers, verbatim; e.g. the seed rule's
  ``auditd.data.a1 == "2"``, a datagram socket), applied in a second step to the filters the
  others leave possible (:meth:`PushDown.refine_mask`, cached per value),

written as ``f == lit``, ``f in (…)``, ``f : …``, ``f like …``, ``f regex …``. Each atom is
compiled with the project's own compiler (``any where <atom>``) and evaluated on a small document
holding just those fields, so the matching rules (case folding, wildcards) are exactly the
engine's. An event is skipped only when, for every filter of every rule (``until`` and missing
``![…]`` stages included), some atom is false. Why that is exact: a positive atom is false on a
document that lacks its field, and the small document holds the same values the full document
would hold, so "false on the small document" implies "false on the full one"; every other
conjunct is treated as unknown (true). Decisions depend only on ``(syscall, comm)`` (and the
registers some remaining filter reads) and are cached.

Event boundaries are the reassembler's, not guessed: a skipped event is handed to the
normalizer as a placeholder (:meth:`~auditeql.audit.pipeline.Normalizer.feed_placeholder`) that
stays in flight exactly as long as its records would (an event without its completing PROCTITLE
or EOE holds back later ones), records with its serial that arrive meanwhile join it, and a
SYSCALL line starts a skippable event only when no event with its serial is in flight. So the
document stream, stand-ins built, is the full path's (``fuzz/targets.py`` ``check_pushdown``).

Three consumers:

* :meth:`PushDown.keep` — the syscall-level decision the audit :class:`~auditeql.audit.pipeline.
  Normalizer` consults (its ``keep`` seam). It sees no ``comm``, so it only uses syscall atoms.
* :meth:`PushDown.line_feeder` — the byte-level fast path for audit.log lines used by
  :func:`auditeql.sources.files.read_documents`: lines of skipped events are never parsed.
  With ``defer=True`` (what ``scan`` uses) a skipped event is not lost but handed on as a
  :class:`Deferred` — its raw lines plus the facts process context needs (host, pid, time,
  whether it is a successful exec) — in exactly the stream position its document would have had.
  ``scan``'s process ancestry builds the document only if an alert ever needs that process, so
  alerts (ancestry included) are identical with and without push-down.
* :meth:`PushDown.ndjson_may_match` — a raw-line test for ECS NDJSON from the filters' required
  literals (:func:`auditeql.eql.plan.line_may_match`).

``tests/perf/test_pushdown_exact.py`` runs every built-in rule with and without push-down over the
recordings and requires identical alerts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from auditeql.audit import tables
from auditeql.audit.records import MAX_LINE_BYTES, AuditRecord, parse_line
from auditeql.eql import ast
from auditeql.eql.plan import CompiledFilter, line_may_match, literal_needles, plan_filters

#: Fields a SYSCALL record heading its event determines on its own.
SYSCALL_FIELD = "auditd.data.syscall"
ACTION_FIELD = "event.action"
NAME_FIELD = "process.name"
PUSHABLE = frozenset({SYSCALL_FIELD, ACTION_FIELD, NAME_FIELD})
#: The syscall's argument registers: ``auditd.data.aN`` is the SYSCALL record's ``aN=`` token as
#: written (lower-case hex), decided in a second step (:meth:`PushDown.refine_mask`) only for the
#: filters whose other atoms may match, since the values vary per event (pointers).
ARG_FIELDS: Mapping[str, bytes] = {f"auditd.data.a{i}": f" a{i}=".encode() for i in range(4)}
ATOM_FIELDS = PUSHABLE | frozenset(ARG_FIELDS)

#: Timestamp overrides the audit normalizer never writes (so the document's time is @timestamp).
_INGEST_ONLY_TIMESTAMPS = frozenset({None, "", "@timestamp", "event.ingested"})

_EXEC_SYSCALLS = frozenset({"execve", "execveat"})

Predicate = Callable[[Mapping[str, Any]], bool]


# --------------------------------------------------------------------------- derivation


def _conjuncts(expr: Any) -> Iterable[Any]:
    if isinstance(expr, ast.And):
        yield from _conjuncts(expr.left)
        yield from _conjuncts(expr.right)
    else:
        yield expr


def _pushable_field(atom: Any) -> str | None:
    """The field of a positive atom on a pushable field with literal right-hand sides, else None."""
    if isinstance(atom, ast.Comparison):
        if atom.op != "==":
            return None
        left, right = atom.left, atom.right
        if isinstance(right, ast.Field) and isinstance(left, ast.Literal):
            left, right = right, left
        if isinstance(left, ast.Field) and isinstance(right, ast.Literal) and right.value is not None:
            return left.name if left.name in ATOM_FIELDS else None
        return None
    if isinstance(atom, ast.InSet):
        if atom.negated or not isinstance(atom.left, ast.Field):
            return None
        if not all(isinstance(v, ast.Literal) and v.value is not None for v in atom.values):
            return None
        return atom.left.name if atom.left.name in ATOM_FIELDS else None
    if isinstance(atom, ast.StringMatch):
        if not isinstance(atom.left, ast.Field) or not all(isinstance(v, ast.Literal) for v in atom.values):
            return None
        return atom.left.name if atom.left.name in ATOM_FIELDS else None
    return None


@dataclass(frozen=True)
class FilterNeeds:
    """The pushable atoms of one filter: (field, predicate on a small document)."""

    atoms: tuple[tuple[str, Predicate], ...]

    def may_match(self, small: Mapping[str, Any], known: frozenset[str]) -> bool:
        """False only when an atom on a field in ``known`` is false on ``small``."""
        for fld, pred in self.atoms:
            if fld in known and not pred(small):
                return False
        return True


def filter_needs(flt: CompiledFilter) -> FilterNeeds:
    """The pushable atoms of ``flt`` (none when its AST is unavailable: then it matches anything)."""
    from auditeql.eql import compile_query

    source = flt.source
    if isinstance(source, ast.SubQuery):
        source = source.filter
    condition = getattr(source, "condition", None)
    if condition is None:
        return FilterNeeds(())
    atoms = []
    for atom in _conjuncts(condition):
        fld = _pushable_field(atom)
        if fld is None:
            continue
        # (the AST itself: printing and parsing it back gives the same AST, one parse less)
        query = ast.EventQuery(filter=ast.EventFilter(category=None, condition=atom))
        plan = compile_query(query)
        atoms.append((fld, plan.filter.predicate))  # type: ignore[union-attr]
    return FilterNeeds(tuple(atoms))


def _syscall_actions() -> dict[str, str]:
    """syscall name -> event.action, as the coalescer normalizes a SYSCALL-headed event."""
    table = tables.normalizations()
    out: dict[str, str] = {}
    for entry in table["syscalls"]:
        for name in entry.get("syscalls", []):
            out[name] = entry.get("action", "")
    return out


def small_document(syscall: str | None, action: str | None, comm: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if syscall is not None:
        doc["auditd"] = {"data": {"syscall": syscall}}
    if action is not None:
        doc["event"] = {"action": action}
    if comm is not None:
        doc["process"] = {"name": comm}
    return doc


# --------------------------------------------------------------------------- the policy


class PushDown:
    """What any filter of any loaded rule needs; build with :meth:`from_rules`.

    ``defer``: skipped events become :class:`Deferred` items in the document stream (for process
    context) instead of vanishing. ``active`` is False when no filter has a pushable atom (then
    nothing can be skipped and callers should not bother).
    """

    def __init__(self, needs: Sequence[FilterNeeds], literals: tuple[bytes, ...] | None, *, defer: bool = False) -> None:
        self.needs = tuple(needs)
        self.defer = defer
        self._ndjson_needles = literals
        self._actions = _syscall_actions()
        self._default_action = self._actions.get("*", "")
        self._decisions: dict[tuple[str | None, str | None], int] = {}
        self._syscall_decisions: dict[str | None, bool] = {}
        self.active = bool(self.needs) and all(n.atoms for n in self.needs)
        #: filters (bits) with atoms on argument registers, and the registers they read
        self.arg_bits = 0
        arg_fields: set[str] = set()
        for i, n in enumerate(self.needs):
            used = {fld for fld, _pred in n.atoms if fld in ARG_FIELDS}
            if used:
                self.arg_bits |= 1 << i
                arg_fields |= used
        self._arg_fields = tuple(sorted(arg_fields))
        self._arg_keys = tuple(ARG_FIELDS[f] for f in self._arg_fields)
        self._arg_decisions: dict[tuple[int, tuple[bytes | None, ...]], int] = {}
        #: the join-key semi-join of :mod:`auditeql.rules.semijoin` (``scan`` of regular files)
        self.semijoin: Any = None

    @classmethod
    def from_rules(cls, rules: Iterable[Any], *, defer: bool = False, semijoin: bool = False) -> PushDown:
        """From loaded :class:`~auditeql.rules.model.Rule` objects (their compiled plans).

        ``semijoin``: also prepare the join-key semi-join (used when every input can be read twice)."""
        needs: list[FilterNeeds] = []
        needles: set[bytes] | None = set()
        rules = list(rules)
        for rule in rules:
            if rule.plan is None:
                return cls([FilterNeeds(())], None, defer=defer)
            for flt in plan_filters(rule.plan):
                needs.append(filter_needs(flt))
                n = literal_needles(flt.literals)
                if n is None or needles is None:
                    needles = None
                else:
                    needles.update(n)
        literals = None if needles is None else tuple(sorted(needles, key=len, reverse=True))
        pd = cls(needs, literals, defer=defer)
        if defer and any(getattr(r, "timestamp_override", None) not in _INGEST_ONLY_TIMESTAMPS for r in rules):
            # a deferred event's time is its header time, i.e. @timestamp; a rule windowing on a
            # field the normalizer writes would place it differently: read everything instead
            pd.active = False
        if semijoin and pd.active:
            from auditeql.rules.semijoin import SemiJoin

            pd.semijoin = SemiJoin.from_rules(rules)
        return pd

    # -- decisions ---------------------------------------------------------------------------
    def action_of(self, syscall: str) -> str:
        return self._actions.get(syscall, self._default_action)

    def decide(self, syscall: str | None, comm: str | None) -> bool:
        """May an event headed by a SYSCALL record with this syscall name and comm match?"""
        return self.decide_mask(syscall, comm) != 0

    def decide_mask(self, syscall: str | None, comm: str | None) -> int:
        """Which filters (bit ``i`` = ``needs[i]``) may match an event headed by such a SYSCALL record."""
        key = (syscall, comm)
        got = self._decisions.get(key)
        if got is None:
            action = self.action_of(syscall) if syscall is not None else None
            small = small_document(syscall, action, comm)
            known = PUSHABLE if comm is not None else frozenset({SYSCALL_FIELD, ACTION_FIELD})
            got = 0
            for i, n in enumerate(self.needs):
                if n.may_match(small, known):
                    got |= 1 << i
            self._decisions[key] = got
        return got

    def refine_mask(self, mask: int, body: bytes) -> int:
        """``mask`` (from :meth:`decide_mask`, > 0) narrowed by the filters' atoms on argument
        registers, read off the SYSCALL line ``body`` (the ENRICHED tail cut off).

        Exact: a register's value is used only when the body holds ``aN=`` once, after a space,
        with plain lower-case hex (what the kernel writes), and no ``msg=`` (whose nested pairs
        the record parser would merge); that token is then verbatim the document's
        ``auditd.data.aN`` (the SYSCALL record heads the event, and other records never replace
        its keys), or the document has no such key (the text sat inside a quoted value: then a
        positive atom is false on the document anyway). Anything else leaves the register
        unknown, and its atoms count as true."""
        bits = mask & self.arg_bits
        if not bits:
            return mask
        payload = body[body.find(b"): ") + 3 :]
        plain = b"msg=" not in payload
        vals = tuple(_arg_token(payload, k) if plain else None for k in self._arg_keys)
        key = (bits, vals)
        got = self._arg_decisions.get(key)
        if got is None:
            data = {f[12:]: v.decode("ascii") for f, v in zip(self._arg_fields, vals) if v is not None}
            known = frozenset(f for f, v in zip(self._arg_fields, vals) if v is not None)
            small = {"auditd": {"data": data}}
            got = bits
            i = 0
            while bits >> i:
                if bits >> i & 1 and not self.needs[i].may_match(small, known):
                    got &= ~(1 << i)
                i += 1
            if len(self._arg_decisions) < _SHAPES:
                self._arg_decisions[key] = got
        return (mask & ~self.arg_bits) | got

    def keep(self, record_type: int, arch: str | None, syscall: str | None) -> bool:
        """The Normalizer's ``keep`` seam: syscall atoms only (the head record type is unknown)."""
        if not self.active or record_type != tables.SYSCALL or syscall is None:
            return True
        got = self._syscall_decisions.get(syscall)
        if got is None:
            small = small_document(syscall, None, None)
            got = any(n.may_match(small, frozenset({SYSCALL_FIELD})) for n in self.needs)
            self._syscall_decisions[syscall] = got
        return got

    __call__ = keep

    @property
    def normalizer_keep(self) -> Callable[[int, str | None, str | None], bool] | None:
        """The policy to give the Normalizer next to :meth:`line_feeder` (None when deferring:
        a deferred event must never be dropped silently further down)."""
        return None if (self.defer or not self.active) else self.keep

    # -- NDJSON ----------------------------------------------------------------------------------
    def ndjson_may_match(self, line: bytes) -> bool:
        """False only for an ECS NDJSON line no filter can match (required literals absent)."""
        return line_may_match(line, self._ndjson_needles)

    @property
    def ndjson_prefilter(self) -> Callable[[bytes], bool] | None:
        return None if self._ndjson_needles is None else self.ndjson_may_match

    # -- audit.log lines -------------------------------------------------------------------------
    def line_feeder(self, normalizer: Any, *, census: str | None = None) -> LineFeeder:
        """The line-level fast path over ``normalizer``; ``census``: the semi-join's first pass
        (``"count"``: count and forget, a second pass follows; ``"hold"``: also defer every
        candidate, for :func:`held_items`)."""
        return LineFeeder(normalizer, self, census=census)


# --------------------------------------------------------------------------- deferred events


@dataclass(eq=False, slots=True)
class Deferred:
    """A skipped event: its raw lines and the facts process context needs without parsing."""

    host: Any
    pid: int
    time_ms: int
    is_exec: bool
    #: raw lines; an element may hold several whole lines (a block taken at once by feed_chunks)
    lines: list[bytes]
    normalizer_factory: Callable[[], Any] = field(repr=False)
    #: (header, filter mask, raw join key) of an event some filter may match, held by the
    #: semi-join's census until it knows whether the event is needed (see :func:`held_items`)
    candidate: tuple[bytes, int, tuple[Any, int, int]] | None = None
    #: parsed records with its serial that joined the event after it was handed to the
    #: normalizer (while it was still in flight there), in arrival order: see :meth:`absorb`
    extra: list[Any] | None = None
    _doc: dict[str, Any] | None = field(default=None, repr=False)

    def absorb(self, records: list[Any]) -> None:
        """Records the normalizer's reassembler put into this event's group after its raw lines."""
        if self.extra is None:
            self.extra = list(records)
        else:
            self.extra.extend(records)

    def document(self) -> dict[str, Any]:
        """The ECS document the event would have produced (built on first use): its raw lines
        parsed as the normalizer parses them, then the absorbed records, as one group."""
        if self._doc is None:
            records: list[Any] = []
            for piece in self.lines:
                for line in _lines(piece) if piece.count(b"\n") > 1 else (piece,):
                    rec = parse_line(line)
                    if rec.__class__ is AuditRecord:
                        records.append(rec)
            if self.extra:
                records.extend(self.extra)
            doc = self.normalizer_factory().build_group(records) if records else None
            self._doc = doc if doc is not None else {}
            self.lines = []
            self.extra = None
        return self._doc


def held_items(items: Iterable[Any], semijoin: Any) -> Iterator[Any]:
    """The stream of a "hold" census after :meth:`SemiJoin.finish`: every needed candidate is
    replaced by its document, built from its lines as in the full path; the rest passes through."""
    for item in items:
        if item.__class__ is Deferred and item.candidate is not None:
            header, mask, key = item.candidate
            item.candidate = None
            if not semijoin.skips(header, mask, key):
                doc = item.document()
                if doc:
                    yield doc
                continue
        yield item


def _token(line: bytes, key: bytes) -> bytes | None:
    """The value of the *last* ``key`` on the line (a dict of key=value keeps the last one)."""
    i = line.rfind(key)
    if i < 0:
        return None
    start = i + len(key)
    end = line.find(b" ", start)
    return line[start:] if end < 0 else line[start:end]


_HEX_TOKEN = re.compile(rb"[0-9a-f]{1,16}").fullmatch


def _arg_token(payload: bytes, key: bytes) -> bytes | None:
    """The value of ``key`` (`` aN=``) when it is surely the record's: ``aN=`` occurs once in the
    payload (the key=value splitter finds keys anywhere, not only after a space), after a space,
    and its value is plain lower-case hex up to the next space or the end."""
    bare = key[1:]
    i = payload.find(bare)
    if i <= 0 or payload[i - 1] != 0x20 or payload.find(bare, i + 1) >= 0:
        return None
    start = i + len(bare)
    end = payload.find(b" ", start)
    value = payload[start:] if end < 0 else payload[start:end]
    return value if _HEX_TOKEN(value) else None


def _comm(line: bytes) -> str | None:
    """``comm`` as the normalizer decodes it, or None when unsure (then nothing is skipped)."""
    raw = _token(line, b" comm=")
    if raw is None:
        return None
    if raw.startswith(b'"'):
        if len(raw) < 3 or not raw.endswith(b'"') or b'"' in raw[1:-1]:
            return None
        value = raw[1:-1]
        if not value.isascii() or value.strip(b"'\" ") != value or value in (b"?", b"(null)"):
            return None
        return value.decode("ascii")
    return None  # hex-encoded or unquoted: rare, leave it to the full path


def _lines(block: bytes) -> list[bytes]:
    """``block`` cut after each ``\n`` only, as iterating a file gives lines (the path without
    push-down): ``bytes.splitlines`` would also cut at a lone ``\r``, making two records of what
    is one (unusable) line there."""
    return BytesIO(block).readlines()


def _header(line: bytes) -> bytes | None:
    i = line.find(b" msg=audit(", 4)
    if i < 0:
        return None
    j = line.find(b")", i + 11)
    if j < 0:
        return None
    return line[i + 11 : j]


class LineFeeder:
    """``feed(line)`` / ``flush()`` like the Normalizer's, skipping events at the SYSCALL line.

    An event is skipped only when its SYSCALL line is the first line of the event (no event
    with its serial in flight), the line is a record the parser accepts, plain (no ``node=``
    prefix, quoted ASCII ``comm``, parseable header, arch and syscall) and no filter can match
    (:meth:`PushDown.decide_mask`, :meth:`PushDown.refine_mask`; with the semi-join: or its join
    key is not needed); anything unusual goes the full way. The lines that follow with the same
    header are taken into it until it is complete; then it goes to the normalizer as a
    placeholder (a stand-in, or nothing without deferral), which later records with its serial
    join as long as it is in flight there.
    """

    def __init__(self, normalizer: Any, pushdown: PushDown, *, census: str | None = None) -> None:
        self.normalizer = normalizer
        self.pushdown = pushdown
        # census (the semi-join's first pass): candidates are counted with their raw key and
        # skipped — forgotten ("count") or deferred ("hold"); only events not headed by a plain
        # SYSCALL line are built
        self.census = pushdown.semijoin if census else None
        self.semijoin = None if census else pushdown.semijoin
        self.defer = pushdown.defer and census != "count"
        host = getattr(normalizer, "host", None)
        host_fields = getattr(host, "fields", None) or {}
        self.host_id = host_fields.get("id")
        self._current: Deferred | None = None
        self._current_header: bytes | None = None
        self._current_numbers: tuple[int, int, int] = (0, 0, 0)
        self._current_state = _Skipped([])
        self._pending = normalizer.pending
        self.skipped_events = 0
        self.skipped_lines = 0
        self._shapes: dict[tuple[bytes, ...], int] = {}
        self._execs: dict[tuple[bytes, ...], bool] = {}
        flavor = getattr(normalizer, "flavor", "auditd-manager")

        builder: list[Any] = []

        def factory() -> Any:
            # one normalizer builds every stand-in's document (build_group keeps no event state)
            if not builder:
                from auditeql.audit.pipeline import Normalizer

                builder.append(Normalizer(flavor, host))
            return builder[0]

        self._factory = factory

    # -- public ------------------------------------------------------------------------------
    def feed(self, line: bytes) -> list[Any]:
        header = _header(line) if line.startswith(b"type=") else None
        if header is None:
            # (``node=`` lines, odd lines) the skipped event in progress goes first, where its
            # records already are without push-down
            out = self._finish() if self._current_header is not None else []
            out.extend(self.normalizer.feed_line(line))
            return out
        if header == self._current_header:
            state = self._current_state
            if not state.complete:
                self.skipped_lines += 1
                state.add(line)
                return []
        # any other line ends the skipped event in progress: it goes to the normalizer as a
        # placeholder, where later records with its serial join it while it is in flight
        out: list[Any] = self._finish() if self._current_header is not None else []
        if line.startswith(b"type=SYSCALL "):
            numbers = _header_numbers(header)
            # a SYSCALL record whose serial is in flight joins that event: the full way
            if numbers is not None and not self._pending(numbers[2]) and self._try_skip(line, header, numbers):
                return out
        out.extend(self.normalizer.feed_line(line))
        return out

    def feed_lines(self, lines: Iterable[bytes]) -> Iterator[Any]:
        """:meth:`feed` over many lines. The lines that continue the skipped event in progress
        are taken here without a call: same header, the event not complete."""
        feed = self.feed
        last: bytes | None = None
        marker = b""
        for line in lines:
            cur = self._current_header
            if cur is not None and line.startswith(b"type="):
                if cur is not last:
                    last, marker = cur, b" msg=audit(" + cur + b")"
                # `type=NAME msg=audit(HEADER)`: the first space ends NAME, so the header test
                # of :func:`_header` is "the marker starts at the first space"
                if line.startswith(marker, line.find(b" ", 5)):
                    state = self._current_state
                    if not state._maybe and not state._complete:
                        self.skipped_lines += 1
                        state.add(line)
                        continue
            docs = feed(line)
            if docs:
                yield from docs

    def feed_chunks(self, chunks: Iterable[bytes]) -> Iterator[Any]:
        """:meth:`feed_lines` over blocks of whole lines (a file read in large pieces).

        One regular expression (:data:`_EVENT`) finds a SYSCALL line in the kernel's standard
        layout and the lines after it with the same header (open record types, then at most one
        record of any type), and captures what a decision needs. An event whose shape was decided
        before is skipped right here, with no Python per line and no token search; everything
        else (first sight of a shape, kept events, odd lines) takes the line-by-line path, so the
        result is what :meth:`feed` line by line gives.

        The common case costs one call into the normalizer: an event that ends with its PROCTITLE
        while nothing else is in flight would leave the reassembler at once without push-down,
        so its stand-in is released on the spot (:meth:`Normalizer.release_placeholder`) and
        never becomes the event in progress."""
        feed_lines, event_re, pending = self.feed_lines, _EVENT, self._pending
        shapes, execs = self._shapes, self._execs
        census, semijoin, defer, host_id = self.census, self.semijoin, self.defer, self.host_id
        release = getattr(self.normalizer, "release_placeholder", None)
        factory = self._factory
        arg_bits, refine = self.pushdown.arg_bits, self.pushdown.refine_mask
        for chunk in chunks:
            pos = 0
            for m in event_re.finditer(chunk):
                start, end = m.span()
                if start > pos:
                    yield from feed_lines(_lines(chunk[pos:start]))
                pos = end
                header, sec, ms, serial_b, arch, nr, success, ppid, pid, comm, proctitle = m.groups()
                cur = self._current_header
                if cur is not None and header != cur:
                    out = self._finish()  # what any path does first with a line of another header
                    if out:
                        yield from out
                    cur = None
                serial = int(serial_b)
                if cur is None and serial <= 0xFFFFFFFF and end - start <= MAX_LINE_BYTES:
                    shape = (arch, nr, comm)
                    mask = shapes.get(shape)
                    is_exec = execs.get(shape) if defer else False
                    if mask is not None and is_exec is not None and mask >= 0:
                        candidate = None
                        if mask & arg_bits:
                            mask = refine(mask, chunk[start : chunk.find(b"\n", start)].partition(b"\x1d")[0])
                        if mask:
                            key = (host_id, int(pid), int(ppid))
                            if census is not None:
                                census.note_raw(header, mask, key)
                                candidate = (header, mask, key)
                            elif semijoin is None or not semijoin.skips(header, mask, key):
                                mask = -1  # kept: the line-by-line path builds it
                        if mask >= 0:
                            complete = proctitle is not None  # ends with its PROCTITLE
                            if complete and defer and release is not None and release(serial):
                                self.skipped_events += 1
                                self.skipped_lines += chunk.count(b"\n", start, end)
                                if is_exec and success is not None and success not in (b"yes", b"1"):
                                    is_exec = success.lower().startswith(b"suc")
                                yield Deferred(host_id, int(pid), int(sec) * 1000 + int(ms), is_exec,
                                               [chunk[start:end]],
                                               factory, candidate)
                                continue
                            block = chunk[start:end]
                            if pending(serial):
                                # an event with this serial is in flight: the SYSCALL record joins it
                                # (a noted census candidate only makes the census a larger superset)
                                yield from self._feed_block(header, _lines(block))
                                continue
                            if complete:
                                state = _Skipped([block], True)
                            else:
                                state = _Skipped([])
                                state.add_run(block)  # one element holding the event's lines
                            self.skipped_lines += block.count(b"\n")
                            self._hold(header, state, (int(sec), int(ms), serial), int(pid), is_exec, success,
                                       candidate)
                            continue
                yield from self._feed_block(header, _lines(chunk[start:end]))
            if pos < len(chunk):
                yield from feed_lines(_lines(chunk[pos:]))

    def _feed_block(self, header: bytes, lines: list[bytes]) -> list[Any]:
        """The lines of one :data:`_EVENT` match that was not skipped at once."""
        if header == self._current_header:
            return list(self.feed_lines(lines))
        out = self._finish() if self._current_header is not None else []
        numbers = _header_numbers(header)
        if numbers is None or self._pending(numbers[2]) or not self._try_skip(lines[0], header, numbers):
            out.extend(self.normalizer.feed_line(lines[0]))
            for line in lines[1:]:
                out.extend(self.feed(line))
            return out
        if len(lines) > 1:
            # the rest of the event: open record types, perhaps one completing record last
            self._current_state.add_run(b"".join(lines[1:]))
            self.skipped_lines += len(lines) - 1
        return out

    def flush(self) -> list[Any]:
        out = self._finish() if self._current_header is not None else []
        out.extend(self.normalizer.flush())
        return out

    # -- internals ---------------------------------------------------------------------------
    def _try_skip(self, line: bytes, header: bytes, numbers: tuple[int, int, int]) -> bool:
        """Skip the event this SYSCALL line starts, if no filter (or, with the semi-join, no
        needed join key) can want it; ``numbers``: its header's seconds, milliseconds, serial
        (the caller checked that no event with that serial is in flight)."""
        if type(parse_line(line)) is not AuditRecord:
            return False  # without push-down this line is no record at all: the full way
        body = line.partition(b"\x1d")[0].rstrip(b"\r\n")
        m = _SHAPE.search(body)
        if m is None or body.count(b" arch=") != 1 or body.count(b" syscall=") != 1:
            # (a repeated key: the record keeps the last value, _SHAPE reads the first) the full way
            return False
        shape = m.group(1, 2, 3)
        mask = self._shapes.get(shape)
        if mask is None:
            # first time this (arch, syscall, comm) is seen: decide carefully, then remember
            syscall = _syscall_name(body)
            mask = -1 if syscall is None else self.pushdown.decide_mask(syscall, _comm(body))
            if len(self._shapes) < _SHAPES:
                self._shapes[shape] = mask
        if mask > 0 and mask & self.pushdown.arg_bits:
            mask = self.pushdown.refine_mask(mask, body)
        candidate = None
        key = None
        if mask:
            census, semijoin = self.census, self.semijoin
            if mask < 0 or (census is None and semijoin is None):
                return False  # undecidable, or some filter may match: the full way
            key = _raw_key(self.host_id, body)
            if key is None:
                return False  # the full way (the census tests its document)
            if census is not None:
                census.note_raw(header, mask, key)
                candidate = (header, mask, key)
            elif not semijoin.skips(header, mask, key):
                return False
        if not self.defer:
            self.skipped_lines += 1
            self._hold(header, _Skipped([line]), numbers)
            return True
        if key is not None:
            pid = key[1]
        else:
            raw = _token(body, b" pid=")
            if raw is None or not raw.isdigit():
                return False
            pid = int(raw)
        is_exec = self._execs.get(shape)
        if is_exec is None:
            name = _syscall_name(body) or ""
            is_exec = self._execs[shape] = name in _EXEC_SYSCALLS or self.pushdown.action_of(name) == "executed"
        success = _token(body, b" success=") if is_exec else None
        self.skipped_lines += 1
        self._hold(header, _Skipped([line]), numbers, pid, is_exec, success, candidate)
        return True

    def _hold(self, header: bytes, state: _Skipped, numbers: tuple[int, int, int],
              pid: int = 0, exec_shape: bool = False, success: bytes | None = None,
              candidate: tuple[bytes, int, tuple[Any, int, int]] | None = None) -> None:
        """Make ``state`` the skipped event in progress (``numbers``: its header's seconds,
        milliseconds, serial); when deferring, also its stand-in for process context."""
        self._current_header, self._current_state = header, state
        self._current_numbers = numbers
        self.skipped_events += 1
        if not self.defer:
            self._current = None
            return
        is_exec = exec_shape and (success is None or success in (b"yes", b"1") or success.lower().startswith(b"suc"))
        self._current = Deferred(self.host_id, pid, numbers[0] * 1000 + numbers[1], is_exec, state.lines,
                                 self._factory, candidate)

    def _finish(self) -> list[Any]:
        """Hand the skipped event in progress to the normalizer as a placeholder (its stand-in,
        or None without deferral), so that it leaves in serial order among documents and holds
        back later events as long as its records would (an incomplete event stays in flight)."""
        d, state = self._current, self._current_state
        self._current, self._current_header = None, None
        seconds, millis, serial = self._current_numbers
        return self.normalizer.feed_placeholder(seconds, millis, serial, d, state.complete)


#: (arch hex, syscall number, last comm token) of a SYSCALL line: the cache key of a decision.
#: The comm group takes the *last* `` comm=`` (as the key=value split does) thanks to the greedy ``.*``.
_SHAPE = re.compile(rb"\): arch=([0-9a-fA-F]+) syscall=(\d+)(?: .*)? comm=(\S*)")
#: Bound on remembered decisions (comm values are attacker-chosen).
_SHAPES = 65_536


def _open_types() -> frozenset[bytes]:
    """Record type names that never complete an event (so no parsing is needed to know it)."""
    from auditeql.audit.reassembly import completes

    return frozenset(name.encode() for name, num in tables.RECORD_TYPE_NUMBERS.items()
                     if num != tables.EOE and not completes(num))


_OPEN_TYPES = _open_types()


def _alternation(words: Iterable[bytes]) -> bytes:
    """A regular expression matching exactly ``words``, as a prefix tree (``P(?:ATH|ROCTITLE)``):
    the regex engine tries a flat alternation branch by branch, a tree one byte at a time."""
    tree: dict[int | None, Any] = {}
    for word in words:
        node = tree
        for byte in word:
            node = node.setdefault(byte, {})
        node[None] = {}

    def emit(node: dict[int | None, Any]) -> bytes:
        branches = [re.escape(bytes([b])) + emit(node[b]) for b in sorted(k for k in node if k is not None)]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if None in node else body

    return emit(tree)


#: One SYSCALL-headed event in a block of lines (``feed_chunks``): a SYSCALL line in the kernel's
#: standard layout (auditd's SYSCALL record: fixed keys, each once, in order, so each captured
#: token is the one :func:`_token` and :data:`_SHAPE` would find) — then lines of open record types with the same header, then at
#: most one more line with that header. Groups: 1 header, 2–4 seconds/milliseconds/serial,
#: 5 arch, 6 syscall number, 7 success, 8 ppid, 9 pid, 10 comm, 11 the last line when it is a
#: PROCTITLE record the record parser surely accepts (kernel encoding: hex, or quoted printable
#: ASCII), so the event is known complete without parsing it.
#: Values in the kernel's encoding (anything else it hex-encodes): printable ASCII, no space, quotes
#: only around a whole value. So a match is a line the record parser accepts (no control bytes,
#: valid UTF-8, an even number of quotes) and the event is one it would build without push-down.
_TOKEN = rb"[!#-~]+"
_VALUE = rb'(?:"[!#-~]*"|[!#-~]*)'
_EVENT = re.compile(
    rb"^type=SYSCALL msg=audit\(((\d{1,11})\.(\d{1,3}):(\d{1,10}))\): arch=([0-9a-fA-F]+) syscall=(\d+) "
    rb"(?:success=(" + _TOKEN + rb") exit=" + _TOKEN + rb" )?"
    + b"".join(k + b"=" + _TOKEN + b" " for k in (b"a0", b"a1", b"a2", b"a3", b"items"))
    + rb"ppid=(\d+) pid=(\d+) "
    + b"".join(k + b"=" + _TOKEN + b" " for k in (b"auid", b"uid", b"gid", b"euid", b"suid", b"fsuid", b"egid",
                                                    b"sgid", b"fsgid", b"tty", b"ses"))
    + rb"comm=(" + _VALUE + rb") exe=" + _VALUE + rb"(?: subj=" + _VALUE + rb")? key=" + _VALUE
    + rb"\r?(?:\x1d[^\n]*)?\n"
    rb"(?:type=" + _alternation(_OPEN_TYPES) + rb" msg=audit\(\1\):[^\n]*\n)*"
    rb"(?:(type=PROCTITLE msg=audit\(\1\): proctitle=(?:[0-9A-F]+|\"[!#-~]*\")\r?\n)|type=[A-Z_]+ msg=audit\(\1\):[^\n]*\n)?",
    re.M,
)


class _Skipped:
    """The lines of a skipped event so far, and whether the reassembler would call it complete
    (then the next line with its header ends it: it goes to the normalizer as a placeholder, and
    the reassembler decides whether that line joins it or starts a new event).

    Completion is worked out lazily: a line whose type may complete the event (PROCTITLE, EOE,
    user/daemon messages…) is parsed only when the answer is needed (another line with the same
    serial follows it, or the event is handed to the normalizer), unless the caller already
    knows (``complete=True``: :data:`_EVENT` matched a PROCTITLE line that surely parses).
    """

    __slots__ = ("lines", "_maybe", "_complete")

    def __init__(self, lines: list[bytes], complete: bool = False) -> None:
        self.lines = lines
        self._maybe: list[bytes] = []
        self._complete = complete

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self._note(line)

    def add_run(self, run: bytes) -> None:
        """Several whole lines at once (one element of ``lines``), all of open record types but
        perhaps the last — what one match of :data:`_EVENT` takes."""
        self.lines.append(run)
        self._note(run[run.rfind(b"\n", 0, -1) + 1 :])

    def _note(self, line: bytes) -> None:
        if line.startswith(b"type="):
            end = line.find(b" ", 5)
            if line[5:end] in _OPEN_TYPES:
                return
        self._maybe.append(line)

    @property
    def complete(self) -> bool:
        if self._complete or not self._maybe:
            return self._complete
        from auditeql.audit.reassembly import completes

        while self._maybe:
            rec = parse_line(self._maybe.pop(0))
            if isinstance(rec, AuditRecord) and (rec.type == tables.EOE or completes(rec.type)):
                self._complete = True
                self._maybe.clear()
                break
        return self._complete


def _header_numbers(header: bytes) -> tuple[int, int, int] | None:
    """(seconds, milliseconds, serial) of a plain ``sec.mmm:serial`` header, or None."""
    m = _HEADER_NUMBERS(header)
    if m is None:
        return None
    sec, ms, serial = m.groups()
    serial_n = int(serial)
    if serial_n > 0xFFFFFFFF:
        return None
    return int(sec), int(ms), serial_n


#: As the record parser accepts a header: seconds of at most 11 digits, a u32 serial (checked).
_HEADER_NUMBERS = re.compile(rb"(\d{1,11})\.(\d{1,3}):(\d{1,10})").fullmatch


def _raw_key(host: Any, body: bytes) -> tuple[Any, int, int] | None:
    """(host.id, process.pid, process.parent.pid) of a plain SYSCALL line, as its document has them."""
    pid = _token(body, b" pid=")
    ppid = _token(body, b" ppid=")
    if pid is None or ppid is None or not pid.isdigit() or not ppid.isdigit():
        return None
    return host, int(pid), int(ppid)


def _syscall_name(body: bytes) -> str | None:
    """The syscall name of a SYSCALL line whose body starts ``arch=<hex> syscall=<n>``, else None."""
    i = body.find(b"): arch=")
    if i < 0:
        return None
    start = i + 8
    sp = body.find(b" ", start)
    if sp < 0 or not body.startswith(b"syscall=", sp + 1):
        return None
    arch_hex = body[start:sp]
    end = body.find(b" ", sp + 9)
    number = body[sp + 9 :] if end < 0 else body[sp + 9 : end]
    if not number.isdigit() or not arch_hex.isalnum():
        return None
    try:
        int(arch_hex, 16)
    except ValueError:
        return None
    arch = tables.arch_name(arch_hex.decode("ascii"))
    table = tables.SYSCALL_NAMES.get(arch)
    n = int(number)
    if table is not None and n in table:
        return table[n]
    return number.decode("ascii")
