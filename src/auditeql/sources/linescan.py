"""Which lines of a block of NDJSON may hold a document that some filter matches (Hyperscan).

Why: a rule's selective condition is often case-insensitive (``process.name : ("bash", …)``),
and Python has no fast way to look for twenty case-insensitive strings in 4 MiB of text
(``re`` runs at ~70 MB/s, ``bytes.lower()`` + ``find`` per term is slower than parsing). Hyperscan
searches all terms of all filters in one pass at memory speed, in byte mode, where
``HS_FLAG_CASELESS`` folds ASCII letters only — exactly the folding of EQL's ``:`` (spec §3.1),
so no non-ASCII look-alike (Kelvin sign, long s) is folded.

Exactness: each filter brings groups of terms (``CompiledFilter.line_groups``), each group a
necessary condition of that filter. Per filter ONE group is searched; a line is a candidate if
it holds a term of the chosen group of any filter, or an escape (``\\u…``, ``\\/``) that could
spell a term differently. Which group is chosen only changes speed: on the first block every
group is searched and, per filter, the group that leaves the fewest lines is kept.

Hyperscan is optional (``pip install 'auditeql[fast]'``): without it :func:`block_scanner`
returns ``None`` and callers fall back to case-sensitive literal search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:  # optional speed-up
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the installation
    _hs = None

Term = tuple[str, bool]
Group = tuple[Term, ...]


def _pattern(text: bytes) -> bytes:
    """A Hyperscan (PCRE syntax) pattern matching ``text`` literally."""
    return b"".join(bytes([c]) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else b"\\x%02x" % c for c in text)


class BlockScanner:
    """Offsets in a block of the lines that may matter, for a fixed list of filters' groups."""

    def __init__(self, per_filter: Sequence[Sequence[Group]]) -> None:
        self._per_filter = [list(groups) for groups in per_filter]
        texts = [t for groups in self._per_filter for g in groups for t, _ci in g]
        # An ASCII character can only be escaped as \u00XX; other text needs the wider guard.
        guards = [b"\\u00" if all(t.isascii() for t in texts) else b"\\u"]
        if any("/" in t for t in texts):
            guards.append(b"\\/")
        self._guards = guards
        # probe database: every term of every group; id -> group number (-1 = guard)
        self._groups: list[Group] = [g for groups in self._per_filter for g in groups]
        terms: list[tuple[bytes, bool, int]] = []
        for gi, g in enumerate(self._groups):
            terms.extend((t.encode("utf-8"), ci, gi) for t, ci in g)
        terms.extend((gb, False, -1) for gb in guards)
        self._probe_ids = [gi for _t, _ci, gi in terms]
        self._db = self._compile([(t, ci) for t, ci, _gi in terms])
        self._probing = True

    @staticmethod
    def _compile(terms: list[tuple[bytes, bool]]) -> Any:
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[_pattern(t) for t, _ci in terms],
            ids=list(range(len(terms))),
            elements=len(terms),
            flags=[_hs.HS_FLAG_CASELESS if ci else 0 for _t, ci in terms],
        )
        return db

    def offsets(self, block: bytes, begin: int, cut: int) -> list[int]:
        """Sorted offsets in ``[begin, cut)`` of ``block`` lying in candidate lines (one or more per line)."""
        if self._probing:
            return self._probe(block, begin, cut)
        found: list[int] = []
        add = found.append
        self._db.scan(block, match_event_handler=lambda _i, _f, to, _fl, _c: add(to - 1))
        found.sort()  # Hyperscan reports by end offset already; sorting a sorted list is linear
        return [p for p in found if begin <= p < cut]

    def _probe(self, block: bytes, begin: int, cut: int) -> list[int]:
        """First block: search every group, keep per filter the one leaving the fewest lines."""
        found: list[tuple[int, int]] = []
        add = found.append
        self._db.scan(block, match_event_handler=lambda i, _f, to, _fl, _c: add((i, to - 1)))
        ids = self._probe_ids
        per_group: list[list[int]] = [[] for _ in self._groups]
        guard_hits: list[int] = []
        for i, p in found:
            if begin <= p < cut:
                gi = ids[i]
                (guard_hits if gi < 0 else per_group[gi]).append(p)
        rfind = block.rfind

        def lines_hit(offs: list[int]) -> int:
            return len({rfind(b"\n", begin, p) for p in offs})

        chosen: list[Group] = []
        out = list(guard_hits)
        gi = 0
        for groups in self._per_filter:
            best = min(range(gi, gi + len(groups)), key=lambda k: lines_hit(per_group[k]))
            chosen.append(self._groups[best])
            out.extend(per_group[best])
            gi += len(groups)
        terms = sorted({(t.encode("utf-8"), ci) for g in chosen for t, ci in g})
        terms.extend((gb, False) for gb in self._guards)
        self._db = self._compile(terms)
        self._probing = False
        out.sort()
        return out

    def may_match(self, line: bytes) -> bool:
        """Whether one ``line`` is a candidate (for the lines split across two blocks)."""
        return bool(self.offsets(line, 0, len(line)))


def block_scanner(per_filter: Sequence[Sequence[Group]]) -> BlockScanner | None:
    """A scanner for these filters' groups, or ``None`` (no Hyperscan, or a filter with no group)."""
    if _hs is None or not per_filter or any(not groups for groups in per_filter):
        return None
    try:
        return BlockScanner(per_filter)
    except Exception:  # noqa: BLE001 - a pattern Hyperscan refuses: fall back to the slow path
        return None


def filter_shares(
    per_filter: Sequence[Sequence[Group]], block: bytes
) -> tuple[list[float], list[BlockScanner]] | None:
    """Per filter, the share of ``block``'s lines its own scanner leaves as candidates (and the scanner).

    A sample of the input (the first block of a file) tells which filters are rare and which are
    common, which the sample semi-join (:mod:`auditeql.engine.semijoin`) uses to order its passes;
    the scanners, already tuned on that block, can be used for reading.
    ``None`` when a filter cannot be scanned (no Hyperscan, or a filter without term groups).
    """
    cut = block.rfind(b"\n") + 1
    lines = block.count(b"\n", 0, cut)
    if not lines:
        return None
    shares: list[float] = []
    scanners: list[BlockScanner] = []
    rfind = block.rfind
    for groups in per_filter:
        scanner = block_scanner([groups])
        if scanner is None:
            return None
        hit = {rfind(b"\n", 0, p) for p in scanner.offsets(block, 0, cut)}
        shares.append(len(hit) / lines)
        scanners.append(scanner)
    return shares, scanners
