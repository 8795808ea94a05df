"""Lucene ``regexp`` syntax, matched the way Lucene does: anchored, linear time.

Elasticsearch turns ``f regex "…"`` into a Lucene ``regexp`` query, which compiles the pattern
to an automaton and matches the *whole* value. Python's ``re`` backtracks (``(a+)+b`` is
exponential), so a user pattern is never handed to it. Instead the pattern is parsed here into a
Thompson NFA and matched by a lazily built DFA (each state set is computed once and cached), so
matching costs O(len(value)) after warm-up whatever the pattern.

Supported syntax (Lucene RegExp with the flags Elasticsearch uses): literals, ``\\``-escapes,
``.``, ``[…]``/``[^…]`` classes with ranges, ``\\d \\D \\s \\S \\w \\W``, grouping ``( )``,
alternation ``|``, ``? * + {n} {n,} {n,m}``, ``"quoted literal"``, ``@`` (any string),
``#`` (the empty language), ``<n-m>`` (numeric interval). Intersection ``&`` and complement ``~``
are rejected with a clear error (see docs/deviations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .javatypes import ascii_lower

CharPred = Callable[[str], bool]
_MAX_REPEAT = 1000
_MAX_NFA = 50_000
_MAX_DFA_STATES = 20_000


class RegexError(ValueError):
    """An invalid or unsupported pattern; ``pos`` is the 0-based offset in the pattern."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


# ----------------------------------------------------------------------------- NFA building


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[CharPred, int]]] = []

    def new(self) -> int:
        if len(self.eps) >= _MAX_NFA:
            raise RegexError("pattern too large", 0)
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1


@dataclass(frozen=True)
class _Frag:
    start: int
    end: int


_DIGIT = lambda c: "0" <= c <= "9"  # noqa: E731
_SPACE = lambda c: c in " \t\n\r\f\v"  # noqa: E731
_WORD = lambda c: c == "_" or ("0" <= c <= "9") or ("a" <= c <= "z") or ("A" <= c <= "Z")  # noqa: E731
_SHORTHAND: dict[str, CharPred] = {
    "d": _DIGIT,
    "D": lambda c: not _DIGIT(c),
    "s": _SPACE,
    "S": lambda c: not _SPACE(c),
    "w": _WORD,
    "W": lambda c: not _WORD(c),
}


class _Parser:
    """Recursive descent over the pattern, emitting NFA fragments directly."""

    def __init__(self, pattern: str, nfa: _NFA, fold: bool) -> None:
        self.p = pattern
        self.i = 0
        self.nfa = nfa
        self.fold = fold

    # -- helpers
    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def eat(self, ch: str) -> bool:
        if self.peek() == ch:
            self.i += 1
            return True
        return False

    def _char(self, pred: CharPred) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        if self.fold:
            base = pred
            pred = lambda c, b=base: b(c) or ("a" <= c <= "z" and b(c.upper()))  # noqa: E731
        self.nfa.edges[s].append((pred, e))
        return _Frag(s, e)

    def _empty(self) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        self.nfa.eps[s].append(e)
        return _Frag(s, e)

    def _nothing(self) -> _Frag:
        return _Frag(self.nfa.new(), self.nfa.new())

    def _literal(self, text: str) -> _Frag:
        if not text:
            return self._empty()
        frags = [self._char(lambda c, x=ch: c == x) for ch in text]
        return self._seq(frags)

    def _seq(self, frags: list[_Frag]) -> _Frag:
        for a, b in zip(frags, frags[1:]):
            self.nfa.eps[a.end].append(b.start)
        return _Frag(frags[0].start, frags[-1].end)

    def _alt(self, frags: list[_Frag]) -> _Frag:
        if len(frags) == 1:
            return frags[0]
        s, e = self.nfa.new(), self.nfa.new()
        for f in frags:
            self.nfa.eps[s].append(f.start)
            self.nfa.eps[f.end].append(e)
        return _Frag(s, e)

    # -- grammar
    def parse(self) -> _Frag:
        frag = self.union()
        if self.i != len(self.p):
            raise RegexError(f"unexpected [{self.p[self.i]}]", self.i)
        return frag

    def union(self) -> _Frag:
        branches = [self.concat()]
        while self.eat("|"):
            branches.append(self.concat())
        return self._alt(branches)

    def concat(self) -> _Frag:
        parts: list[tuple[int, int]] = []  # (start offset, end offset) of each repeat unit
        frags: list[_Frag] = []
        while self.peek() is not None and self.peek() not in "|)":
            if self.peek() == "&":
                raise RegexError("intersection [&] is not supported; escape it as \\& for a literal", self.i)
            start = self.i
            frags.append(self.repeat())
            parts.append((start, self.i))
        if not frags:
            return self._empty()
        return self._seq(frags)

    def repeat(self) -> _Frag:
        start = self.i
        frag = self.atom()
        while True:
            ch = self.peek()
            if ch == "*":
                self.i += 1
                frag = self._star(frag)
            elif ch == "+":
                self.i += 1
                frag = self._plus(frag)
            elif ch == "?":
                self.i += 1
                frag = self._opt(frag)
            elif ch == "{":
                lo, hi = self._bounds()
                frag = self._bounded(start, lo, hi)
            else:
                return frag

    def _bounds(self) -> tuple[int, int | None]:
        at = self.i
        self.i += 1
        lo = self._int()
        hi: int | None = lo
        if self.eat(","):
            hi = self._int() if self.peek() not in ("}", None) else None
        if not self.eat("}"):
            raise RegexError("expected [}] to close a repeat count", self.i)
        if lo is None or (hi is not None and hi < lo):
            raise RegexError("invalid repeat count", at)
        if (hi if hi is not None else lo) > _MAX_REPEAT:
            raise RegexError(f"repeat count above {_MAX_REPEAT}", at)
        return lo, hi

    def _int(self) -> int | None:
        j = self.i
        while self.peek() is not None and self.peek().isdigit():  # type: ignore[union-attr]
            self.i += 1
        return int(self.p[j : self.i]) if self.i > j else None

    def _reparse(self, start: int, end: int) -> _Frag:
        """A fresh copy of the atom spelled by ``p[start:end]`` (for counted repeats)."""
        sub = _Parser(self.p, self.nfa, self.fold)
        sub.i = start
        frag = sub.atom()
        assert sub.i == end
        return frag

    def _bounded(self, start: int, lo: int, hi: int | None) -> _Frag:
        # the atom is at p[start:atom_end]; quantifiers applied before "{" are ignored for copies
        # (Lucene applies them in order; stacking "a*{2}" is rare and equivalent for matching).
        sub = _Parser(self.p, self.nfa, self.fold)
        sub.i = start
        sub.atom()
        atom_end = sub.i
        copies = [self._reparse(start, atom_end) for _ in range(lo)]
        if hi is None:
            copies.append(self._star(self._reparse(start, atom_end)))
        else:
            copies.extend(self._opt(self._reparse(start, atom_end)) for _ in range(hi - lo))
        return self._seq(copies) if copies else self._empty()

    def _star(self, f: _Frag) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        self.nfa.eps[s] += [f.start, e]
        self.nfa.eps[f.end] += [f.start, e]
        return _Frag(s, e)

    def _plus(self, f: _Frag) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        self.nfa.eps[s].append(f.start)
        self.nfa.eps[f.end] += [f.start, e]
        return _Frag(s, e)

    def _opt(self, f: _Frag) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        self.nfa.eps[s] += [f.start, e]
        self.nfa.eps[f.end].append(e)
        return _Frag(s, e)

    def atom(self) -> _Frag:
        ch = self.peek()
        if ch is None:
            raise RegexError("unexpected end of pattern", self.i)
        at = self.i
        self.i += 1
        if ch == "(":
            if self.eat(")"):
                return self._empty()
            frag = self.union()
            if not self.eat(")"):
                raise RegexError("missing [)]", at)
            return frag
        if ch == "[":
            return self._class(at)
        if ch == ".":
            return self._char(lambda c: True)
        if ch == "@":
            return self._star(self._char(lambda c: True))
        if ch == "#":
            return self._nothing()
        if ch == '"':
            j = self.p.find('"', self.i)
            if j < 0:
                raise RegexError('missing closing ["]', at)
            text = self.p[self.i : j]
            self.i = j + 1
            return self._literal(self._fold_lit(text))
        if ch == "<":
            return self._interval(at)
        if ch == "~":
            raise RegexError("complement [~] is not supported; escape it as \\~ for a literal", at)
        if ch in "*+?{":
            raise RegexError(f"nothing to repeat before [{ch}]", at)
        if ch == "\\":
            nxt = self.peek()
            if nxt is None:
                raise RegexError("pattern ends with [\\]", at)
            self.i += 1
            if nxt in _SHORTHAND:
                return self._char(_SHORTHAND[nxt])
            return self._literal(self._fold_lit(nxt))
        return self._literal(self._fold_lit(ch))

    def _fold_lit(self, text: str) -> str:
        return ascii_lower(text) if self.fold else text

    def _interval(self, at: int) -> _Frag:
        j = self.p.find(">", self.i)
        body = self.p[self.i : j] if j >= 0 else ""
        lo_s, dash, hi_s = body.partition("-")
        if j < 0 or not dash or not lo_s.isdigit() or not hi_s.isdigit():
            raise RegexError("numeric interval must look like <n-m>", at)
        self.i = j + 1
        lo, hi = int(lo_s), int(hi_s)
        if lo > hi:
            lo, hi = hi, lo
        width = len(lo_s) if len(lo_s) == len(hi_s) else 0
        if hi - lo > 10_000:
            raise RegexError("numeric interval wider than 10000 values", at)

        def pred_text(n: int) -> str:
            return str(n).zfill(width) if width else str(n)

        # Lucene accepts leading zeros when the bounds differ in width; model that with 0*.
        alts = []
        for n in range(lo, hi + 1):
            lit = self._literal(pred_text(n))
            if not width:
                lit = self._seq([self._star(self._char(lambda c: c == "0")), lit])
            alts.append(lit)
        return self._alt(alts)

    def _class(self, at: int) -> _Frag:
        negate = self.eat("^")
        items: list[CharPred] = []
        first = True
        while True:
            ch = self.peek()
            if ch is None:
                raise RegexError("missing []] to close a character class", at)
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            self.i += 1
            if ch == "\\":
                nxt = self.peek()
                if nxt is None:
                    raise RegexError("pattern ends with [\\]", self.i - 1)
                self.i += 1
                if nxt in _SHORTHAND:
                    items.append(_SHORTHAND[nxt])
                    continue
                ch = nxt
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                hi = self.p[self.i]
                self.i += 1
                if hi == "\\" and self.i < len(self.p):
                    hi = self.p[self.i]
                    self.i += 1
                if hi < ch:
                    raise RegexError(f"invalid range [{ch}-{hi}]", self.i - 3)
                items.append(lambda c, a=ch, b=hi: a <= c <= b)
            else:
                items.append(lambda c, a=ch: c == a)

        def member(c: str) -> bool:
            for item in items:
                if item(c):
                    return True
            return False

        if negate:
            if self.fold:
                return self._char_nofold(
                    lambda c: not (member(c) or ("a" <= c <= "z" and member(c.upper())))
                )
            return self._char(lambda c: not member(c))
        return self._char(member)

    def _char_nofold(self, pred: CharPred) -> _Frag:
        s, e = self.nfa.new(), self.nfa.new()
        self.nfa.edges[s].append((pred, e))
        return _Frag(s, e)


# ----------------------------------------------------------------------------- lazy DFA


class LuceneRegex:
    """A compiled pattern; :meth:`fullmatch` tells whether the whole string matches."""

    __slots__ = ("pattern", "case_insensitive", "_nfa", "_start", "_accept", "_cache", "_closure_memo")

    def __init__(self, pattern: str, case_insensitive: bool = False) -> None:
        self.pattern = pattern
        self.case_insensitive = case_insensitive
        nfa = _NFA()
        frag = _Parser(pattern, nfa, case_insensitive).parse()
        self._nfa = nfa
        self._accept = frag.end
        self._closure_memo: dict[int, frozenset[int]] = {}
        self._start = self._closure(frozenset((frag.start,)))
        self._cache: dict[frozenset[int], dict[str, frozenset[int]]] = {}

    def _closure(self, states: frozenset[int]) -> frozenset[int]:
        stack = list(states)
        seen = set(states)
        eps = self._nfa.eps
        while stack:
            s = stack.pop()
            for t in eps[s]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    def _step(self, state: frozenset[int], c: str) -> frozenset[int]:
        edges = self._nfa.edges
        nxt = set()
        for s in state:
            for pred, t in edges[s]:
                if pred(c):
                    nxt.add(t)
        return self._closure(frozenset(nxt)) if nxt else frozenset()

    def fullmatch(self, value: str) -> bool:
        if self.case_insensitive:
            value = ascii_lower(value)
        cache = self._cache
        state = self._start
        for c in value:
            row = cache.get(state)
            if row is None:
                if len(cache) > _MAX_DFA_STATES:
                    cache.clear()
                row = cache[state] = {}
            nxt = row.get(c)
            if nxt is None:
                nxt = row[c] = self._step(state, c)
            if not nxt:
                return False
            state = nxt
        return self._accept in state

    def literal_value(self) -> str | None:
        """The single string this pattern matches, if it is a plain literal (for push-down)."""
        text = self.pattern
        if any(c in text for c in '.?+*|{}[]()"\\#@&<>~'):
            return None
        return text


def compile_regex(pattern: str, case_insensitive: bool = False) -> LuceneRegex:
    return LuceneRegex(pattern, case_insensitive)
