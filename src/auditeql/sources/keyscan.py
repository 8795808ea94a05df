"""Which raw NDJSON lines may hold one of a known set of join-key values (Hyperscan).

Why: the second pass of the sample semi-join (:mod:`auditeql.engine.semijoin`) only needs the
lines of documents whose join key is one that every rare filter has already produced. A key
component such as ``process.pid`` then becomes a raw-byte necessary condition, searched at
memory speed over whole blocks, so the common filter's lines (a shell's execve: a fifth of
all documents) are parsed only when they share a pid with a rare match.

Exactness (false only for lines whose document cannot hold one of the values in the field):
whatever the spelling (``{"process": {"pid": …}}``, ``{"process.pid": …}``, arrays of objects),
the JSON text holds the field's last path segment as a key ending in ``pid"`` (a superset:
``"ppid"`` too), then ``:`` and the value. Compact spellings are searched for exactly, everything
else is let through. A line is a candidate for one key position when it holds, after such a key:

* ``:v`` for a wanted integer ``v >= 0`` (as a prefix: ``:1234`` is let through for ``123``,
  and so are ``123.0`` and ``123e0``, which Python joins with ``123``);
* ``:"…"`` for a wanted string, spelled as JSON writes it canonically (typed equality: an
  integer key never joins a string, so strings are only searched for string keys);
* a number with a fraction or an exponent (``1.23e2`` and ``122.99999999999999999`` both equal
  ``123`` once parsed: all are let through, when numbers are wanted);
* whitespace before or after the ``:``, an array (any element may be the value), a minus sign
  (negative numbers, ``-0``);

or when the line holds a ``\\u`` escape anywhere (a key or value spelled with escapes), or
``\\/`` when ``/`` occurs in the key or a wanted value. Values that are not plain (booleans,
an absent optional key, NaN) cannot be searched: :func:`key_patterns` returns ``None`` for them
and :func:`key_scanner` leaves that key position out (fewer conditions: still exact).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .linescan import _hs, _pattern

#: Above this many distinct values a key position is not searched (compile time, little selectivity).
MAX_VALUES = 10_000


def plain_values(values: Iterable[Any]) -> tuple[set[int], set[str], bool] | None:
    """``(integers, strings, any_number)`` to search for ``values``, or ``None`` if one is not plain.

    An integral float is searched as its integer (the spellings ``123`` and ``123.0`` join it);
    a non-integral float needs no needle of its own: every spelling of it has a fraction or an
    exponent, which the number guard lets through.
    """
    ints: set[int] = set()
    strs: set[str] = set()
    numbers = False
    for v in values:
        t = type(v)
        if t is int:
            ints.add(v)
            numbers = True
        elif t is float:
            numbers = True
            if not math.isfinite(v):
                return None
            if v.is_integer():
                ints.add(int(v))
        elif t is str:
            strs.add(v)
        else:  # None (absent optional key), booleans, anything else: no raw spelling to look for
            return None
    return ints, strs, numbers


def key_patterns(segments: Sequence[str], values: Iterable[Any]) -> tuple[list[bytes], bool] | None:
    """Patterns one of which a line holding one of ``values`` under a field ending in ``segments`` matches.

    Returns ``(patterns, slash)`` (``slash``: the ``\\/`` escape must be guarded too), or
    ``None`` when a value cannot be searched (or there are too many). The ``\\u`` guard is
    the caller's (:class:`KeyScanner` adds it).
    """
    plain = plain_values(values)
    if plain is None:
        return None
    ints, strs, numbers = plain
    if len(ints) + len(strs) > MAX_VALUES:
        return None
    pats: list[bytes] = []
    for seg in sorted(set(segments)):
        # ``pid"`` also ends ``"ppid"``: a superset, which keeps one literal in front of every
        # pattern (Hyperscan then scans at memory speed).
        key = _pattern(seg.encode("utf-8")) + b'"'
        pats.append(key + rb"[ \t\r\n]")  # not the compact spelling: let it through
        pats.append(key + rb":[ \t\r\n\x5b\x2d]")  # whitespace, an array, a minus sign
        if numbers:
            pats.append(key + rb":[0-9]+[.eE]")  # a fraction or exponent: may equal an integer
        # ":1234" holds ":123" too: a superset, with no end condition to compile.
        texts = [str(v).encode() for v in sorted(ints) if v >= 0]
        texts += [_pattern(orjson.dumps(x)) for x in sorted(strs)]
        # one pattern per value: Hyperscan compiles many short literals ~6x faster than one
        # long alternation of them (measured: 700 pids, 0.09 s vs 0.56 s), and scans them as fast
        pats.extend(key + b":" + t for t in texts)
    slash = any("/" in s for s in (*segments, *strs))
    return pats, slash


class KeyScanner:
    """Lines that may hold a wanted key: every component's condition holds (or an escape guard).

    ``other`` (a :class:`~auditeql.sources.linescan.BlockScanner`), when given, must hold too:
    checked line by line on the few key lines, or by one more scan of the block when they are many.

    Each component is a list of patterns (:func:`key_patterns`) for one position of the join
    key; a line whose document holds a wanted key satisfies all of them, so requiring all is
    still a necessary condition.
    """

    def __init__(self, components: Sequence[Sequence[bytes]], slash: bool, other: Any = None) -> None:
        exprs: list[bytes] = [rb"\x5cu"]  # any \u escape: a key or value spelled another way
        owner: list[int] = [-1]  # pattern id -> component (-1: a guard)
        if slash:
            exprs.append(rb"\x5c\x2f")  # \/
            owner.append(-1)
        for c, pats in enumerate(components):
            exprs.extend(pats)
            owner.extend([c] * len(pats))
        # Two databases: the values (plain literals, one per value: thousands) and the rest
        # (guards with character classes). Hyperscan compiles a database of literals alone ~5x
        # faster than the same literals mixed with a few classes (measured: 1,150 pids, 0.03 s vs
        # 0.15 s); scanning twice costs less than that. Pattern ids stay those of ``exprs``.
        self._dbs = []
        for want_plain in (True, False):
            ids = [i for i, e in enumerate(exprs) if (owner[i] >= 0 and b"[" not in e) == want_plain]
            if not ids:
                continue
            db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            db.compile(expressions=[exprs[i] for i in ids], ids=ids, elements=len(ids), flags=[0] * len(ids))
            self._dbs.append(db)
        self._owner = owner
        self._n = len(components)
        self.other = other
        self._first = True

    def offsets(self, block: bytes, begin: int, cut: int) -> list[int]:
        """Sorted offsets in ``[begin, cut)``, one per candidate line (its start)."""
        hits: list[list[int]] = [[] for _ in range(self._n + 1)]  # last: guards
        owner = self._owner
        for db in self._dbs:
            db.scan(block, match_event_handler=lambda i, _f, to, _fl, _c: hits[owner[i]].append(to - 1))
        rfind = block.rfind
        starts: set[int] | None = None
        for c in sorted(range(self._n), key=lambda c: len(hits[c])):
            mine = {rfind(b"\n", 0, p) + 1 for p in hits[c] if begin <= p < cut}
            starts = mine if starts is None else starts & mine
            if not starts:
                break
        lines = starts or set()
        if hits[-1]:
            lines |= {rfind(b"\n", 0, p) + 1 for p in hits[-1] if begin <= p < cut}
        other = self.other
        if other is None:
            return sorted(lines)
        if self._first or len(lines) > (cut - begin) >> 13:
            # many key lines (more than one per 8 KiB): one scan of the whole block by ``other``
            # costs less than one scan per line (and its first scan, a probe, needs a block)
            self._first = False
            theirs = {rfind(b"\n", 0, p) + 1 for p in other.offsets(block, begin, cut)}
            return sorted(lines & theirs)
        if not lines:
            return []
        find = block.find
        may = other.may_match
        return [s for s in sorted(lines) if may(block[s : find(b"\n", s, cut) + 1 or cut])]

    def may_match(self, line: bytes) -> bool:
        """Whether one ``line`` is a candidate (for the lines split across two blocks)."""
        return bool(self.offsets(line, 0, len(line)))


def key_scanner(
    components: Sequence[tuple[Sequence[str], Iterable[Any]]], other: Any = None
) -> KeyScanner | None:
    """A scanner for lines holding, for every ``(segments, values)`` component, one of its values.

    Components that cannot be searched are left out (still exact: fewer conditions);
    ``None`` when none can be (or Hyperscan is missing).
    """
    if _hs is None:
        return None
    comps: list[list[bytes]] = []
    slash = False
    for segments, values in components:
        got = key_patterns(segments, values)
        if got is None:
            continue
        comps.append(got[0])
        slash = slash or got[1]
    if not comps:
        return None
    try:
        return KeyScanner(comps, slash, other)
    except Exception:  # noqa: BLE001 - a pattern Hyperscan refuses: read without the key condition
        return None

