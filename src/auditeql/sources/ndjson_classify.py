"""Which lines of a block of NDJSON are candidates of a sample's rare or common filters (one Hyperscan scan).

Why: the sample semi-join of ``auditeql query`` (:mod:`auditeql.sources.ndjson_semijoin`) parses
the rare filters' lines at once and keeps the common filters' lines aside; both sets are found in
one scan of each block, at memory speed, from the filters' term groups
(``CompiledFilter.line_groups``: each group is a necessary condition, a matching line holds one
of its terms). :func:`choose_groups` measures on the first bytes of the input which groups are
worth searching; :class:`LineClassifier` tells, per line of a block, R (a rare filter's
candidate, or an escape that could spell a term differently), C (a common filter's candidate
only) or neither. Exactness rules are those of :mod:`auditeql.sources.linescan` (ASCII case
folding for ``:``, escape guards).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from .linescan import Group, _hs, _pattern

#: Classes of a line (see :class:`LineClassifier`).
_R, _C = 0, 1


def _guards(texts: Sequence[str]) -> list[bytes]:
    """Escapes that could spell a term differently (a line holding one is a candidate of every filter)."""
    # An ASCII character can only be escaped as \u00XX; other text needs the wider guard.
    guards = [b"\\u00" if all(t.isascii() for t in texts) else b"\\u"]
    if any("/" in t for t in texts):
        guards.append(b"\\/")
    return guards


def _compile(patterns: Sequence[tuple[bytes, int]]) -> Any:
    """A block-mode database of Hyperscan ``(expression, flags)``; pattern ids are list positions."""
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    db.compile(
        expressions=[e for e, _f in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[f for _e, f in patterns],
    )
    return db


def _term_pattern(text: str, caseless: bool) -> tuple[bytes, int]:
    return _pattern(text.encode("utf-8")), _hs.HS_FLAG_CASELESS if caseless else 0


#: Bytes of the first file looked at to measure how common each term group is.
PROBE_BYTES = 4 << 20
#: A term group on more than this share of lines is not searched (it costs more than it leaves out).
GROUP_MAX_SHARE = 0.3
#: At most this many term groups per filter are searched (the rarest ones).
GROUPS_PER_FILTER = 3


#: What can come before a JSON string token: ``{ [ , :`` or JSON whitespace.
_BEFORE_STRING = rb"[\x7b\x5b\x2c\x3a\x20\x09\x0d\x0a]"


def _token_pattern(text: str, caseless: bool) -> tuple[bytes, int]:
    """:func:`_term_pattern`, with what must precede a term that opens a JSON string (``"bash"``).

    A string token of a JSON object line is never its first byte and always follows one of
    :data:`_BEFORE_STRING`, so requiring one finds the same tokens; Hyperscan scans the longer
    pattern faster (measured: the seed rule's twenty shell names, ~20% less time).
    """
    expr, flags = _term_pattern(text, caseless)
    return (_BEFORE_STRING + expr, flags) if text.startswith('"') else (expr, flags)


#: The first bytes of the probe, on which every group is measured; groups found common there are
#: not measured on the rest (their hits, on nearly every line, are most of the probe's cost).
PROBE_FIRST_BYTES = 256 << 10


def _group_lines(
    groups: Sequence[Group], text: bytes, guards: Sequence[bytes]
) -> tuple[list[set[int]], set[int], int]:
    """Per group, the numbers of the lines of ``text`` (whole lines) holding one of its terms;
    the lines holding a guard; the number of lines."""
    patterns: list[tuple[bytes, int]] = []
    owner: list[int] = []  # pattern id -> group number (-1: a guard)
    for gi, g in enumerate(groups):
        for t, ci in g:
            patterns.append(_term_pattern(t, ci))
            owner.append(gi)
    for gb in guards:
        patterns.append((_pattern(gb), 0))
        owner.append(-1)
    found: list[list[int]] = [[] for _ in patterns]
    appends = [f.append for f in found]
    _compile(patterns).scan(text, match_event_handler=lambda i, _f, to, _fl, _c: appends[i](to - 1))
    # line number of a hit: a binary search over the line ends
    ends: list[int] = []
    find = text.find
    j = find(b"\n")
    while j != -1:
        ends.append(j)
        j = find(b"\n", j + 1)
    per_group: list[set[int]] = [set() for _ in groups]
    guarded: set[int] = set()
    for i, offs in enumerate(found):
        if offs:
            gi = owner[i]
            (guarded if gi < 0 else per_group[gi]).update(map(bisect_left, repeat(ends, len(offs)), offs))
    return per_group, guarded, len(ends)


def choose_groups(
    per_filter: Sequence[Sequence[Group]], head: bytes
) -> tuple[list[list[Group]], list[float]] | None:
    """Per filter, the term groups worth searching on lines like ``head``'s, and the share of lines
    holding a term of each of them.

    Every group is a necessary condition of its filter (``CompiledFilter.line_groups``), so a line
    must hold a term of EACH chosen group: which groups are chosen only changes speed. Chosen: the
    rarest group, then, rarest first, up to :data:`GROUPS_PER_FILTER` groups in all that are on at
    most :data:`GROUP_MAX_SHARE` of the lines and leave out a fifth or more of the lines chosen so
    far. ``None``: nothing to measure on, or a filter without term groups (it cannot be scanned for).
    """
    cut = head.rfind(b"\n") + 1
    if not cut or not per_filter or any(not groups for groups in per_filter):
        return None
    head = head[:cut]
    groups = [g for gs in per_filter for g in gs]
    guards = _guards([t for g in groups for t, _ci in g])
    # every group on the first lines; then on the whole head only the groups that may be chosen
    first = head.rfind(b"\n", 0, PROBE_FIRST_BYTES) + 1 or cut
    early, _g, n_early = _group_lines(groups, head[:first], ())
    maybe = set()
    gi = 0
    for gs in per_filter:
        ks = range(gi, gi + len(gs))
        maybe.add(min(ks, key=lambda k: len(early[k])))
        maybe.update(k for k in ks if len(early[k]) <= 2 * GROUP_MAX_SHARE * n_early)  # (a sample: a margin)
        gi += len(gs)
    ordered = sorted(maybe)
    measured, guarded, lines = _group_lines([groups[k] for k in ordered], head, guards)
    everything = set(range(lines))  # a group found common on the first lines: taken as on every line
    per_group = [everything] * len(groups)
    for k, got in zip(ordered, measured):
        per_group[k] = got
    chosen: list[list[Group]] = []
    shares: list[float] = []
    gi = 0
    for gs in per_filter:
        ranked = sorted(range(gi, gi + len(gs)), key=lambda k: len(per_group[k]))
        picked = [ranked[0]]
        hit = set(per_group[ranked[0]])
        for k in ranked[1:]:
            # a further group must be rare itself and leave out a good part of the lines so far
            if len(picked) == GROUPS_PER_FILTER or len(per_group[k]) > GROUP_MAX_SHARE * lines:
                break
            narrower = hit & per_group[k]
            if len(narrower) <= 0.8 * len(hit):
                picked.append(k)
                hit = narrower
        chosen.append([groups[k] for k in picked])
        shares.append(len(hit | guarded) / lines)
        gi += len(gs)
    return chosen, shares


class LineClassifier:
    """One Hyperscan database telling, per line of a block, R (a candidate of a rare filter, or an
    escape that could spell a term differently), C (a candidate of a common filter only) or neither.

    A line is a candidate of a filter when it holds a term of each of the filter's chosen groups.
    Every line of a block with a line not ending in ``}`` is R (parsed, so that damage is
    reported, as the single pass does).
    """

    def __init__(self, rare: Sequence[Sequence[Group]], common: Sequence[Sequence[Group]]) -> None:
        texts = [t for gs in (*rare, *common) for g in gs for t, _ci in g]
        slots: dict[Group, int] = {}  # distinct groups
        for gs in (*rare, *common):
            for g in gs:
                slots.setdefault(g, len(slots))
        self._rare = [tuple(slots[g] for g in gs) for gs in rare]
        self._common = [tuple(slots[g] for g in gs) for gs in common]
        self._slots = len(slots)
        pats: dict[tuple[bytes, int], set[int]] = {}
        for g, slot in slots.items():
            for t, ci in g:
                pats.setdefault(_token_pattern(t, ci), set()).add(slot)
        self._guard_slot = len(slots)
        self._shape_slot = len(slots) + 1
        for gb in _guards(texts):
            pats.setdefault((_pattern(gb), 0), set()).add(self._guard_slot)
        # a line ending in something else than "}" (or an empty line)
        pats.setdefault((rb"[^\x7d]\x0a", 0), set()).add(self._shape_slot)
        patterns = list(pats)
        self._owner = [tuple(sorted(pats[p])) for p in patterns]
        self._bits = max(1, (len(patterns) - 1).bit_length())
        self._db = _compile(patterns)

    def _lines(self, block: bytes, begin: int, cut: int) -> list[set[int]]:
        """Per slot (groups, then guards, then shape), the lines of ``block[begin:cut]`` it hits, each
        given by the position of the newline before it (``begin - 1`` for the first line)."""
        per_pattern: list[list[int]] = [[] for _ in self._owner]
        appends = [hits.append for hits in per_pattern]
        self._db.scan(
            memoryview(block)[begin:cut],
            match_event_handler=lambda i, _f, to, _fl, _c: appends[i](to),
        )
        # ``begin + to`` is just after the match, whose last byte is not a newline (terms never
        # hold one; the shape pattern's slot is only tested for being empty). The view starts at
        # ``begin``, and ``begin - 1`` is a newline (or -1, the block's start).
        rfind = block.rfind
        nl = repeat(b"\n")
        zero = repeat(0)
        at = begin.__add__
        lines: list[set[int]] = [set() for _ in range(self._slots + 2)]
        for pid, tos in enumerate(per_pattern):
            if tos:
                found = set(map(rfind, nl, zero, map(at, tos)))
                for slot in self._owner[pid]:
                    lines[slot] |= found
        return lines

    @staticmethod
    def _candidates(lines: list[set[int]], filters: list[tuple[int, ...]]) -> set[int]:
        out: set[int] = set()
        for slots in filters:
            ordered = sorted((lines[s] for s in slots), key=len)
            out |= ordered[0].intersection(*ordered[1:])
        return out

    def classify(self, block: bytes, begin: int, cut: int) -> tuple[list[int], list[int]]:
        """``(R line starts, C line starts)`` of the lines in ``block[begin:cut]`` (whole lines, each
        ending in ``\\n``), sorted."""
        lines = self._lines(block, begin, cut)
        if lines[self._shape_slot] or block[begin] == 0x0A:
            # a block with a line not ending in "}" is read line by line, every line parsed, as
            # the single pass reads it: so every damaged line in it is reported
            return _nonblank_lines(block, begin, cut), []
        r = self._candidates(lines, self._rare) | lines[self._guard_slot]
        c = self._candidates(lines, self._common)
        c -= r
        one = (1).__add__
        return list(map(one, sorted(r))), list(map(one, sorted(c)))

    def line_class(self, line: bytes) -> int | None:
        """The class of one whole line (the lines that straddle two blocks); ``None``: neither."""
        if not line.strip():
            return None
        if not line.rstrip().endswith(b"}"):
            return _R
        lines = self._lines(line, 0, len(line))
        if lines[self._guard_slot] or self._candidates(lines, self._rare):
            return _R
        return _C if self._candidates(lines, self._common) else None


def _nonblank_lines(block: bytes, begin: int, cut: int) -> list[int]:
    """Starts of the non-blank lines of ``block[begin:cut]``."""
    out: list[int] = []
    find = block.find
    i = begin
    while i < cut:
        j = find(b"\n", i, cut)
        if block[i:j].strip():
            out.append(i)
        i = j + 1
    return out
