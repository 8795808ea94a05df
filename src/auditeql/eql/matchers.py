"""Per-value tests with Elasticsearch *query* semantics (term, wildcard, range, prefix…).

Each builder takes the query's constant and returns ``test(value) -> bool`` for one non-null
field value. "Any value" iteration over arrays, missing fields and negation are the compiler's
job; these only decide a single value. Without an index mapping, the JSON type of the value
stands in for the field type (see docs/deviations.md): a string value behaves like a
``keyword``, a JSON number like ``long``/``double``, a JSON boolean like ``boolean``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from .javatypes import ascii_lower, java_str
from .lucene_regex import LuceneRegex

Test = Callable[[Any], bool]
_NUM_RE = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*\Z")


def parse_number(text: str) -> int | float | None:
    """How a numeric field would read a string query value (``"123"`` -> 123); ``None`` if not numeric."""
    if not _NUM_RE.match(text):
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def term_test(x: Any) -> Test:
    """``term`` on a field: equality with the field's type deciding how ``x`` is read."""
    if isinstance(x, bool):
        word = "true" if x else "false"

        def test_bool(v: Any) -> bool:
            if v.__class__ is bool:
                return v is x
            return v.__class__ is str and v == word

        return test_bool
    if isinstance(x, str):
        xnum = parse_number(x)
        bool_word = x if x in ("true", "false") else None

        def test_str(v: Any) -> bool:
            cls = v.__class__
            if cls is str:
                return v == x
            if cls is bool:
                return bool_word is not None and (v is (bool_word == "true"))
            if xnum is not None and (cls is int or cls is float):
                return v == xnum
            return False

        return test_str
    text = java_str(x)

    def test_num(v: Any) -> bool:
        cls = v.__class__
        if cls is int or cls is float:
            return v == x
        if cls is str:
            return v == text
        return False

    return test_num


_RANGE_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def range_test(op: str, x: Any) -> Test:
    """``range`` query: numeric for numbers, byte (code point) order for keyword strings."""
    cmp = _RANGE_OPS[op]
    if isinstance(x, bool) or x is None:
        return lambda v: False
    if isinstance(x, str):
        xnum = parse_number(x)

        def test_str(v: Any) -> bool:
            cls = v.__class__
            if cls is str:
                return cmp(v, x)
            if xnum is not None and (cls is int or cls is float):
                return cmp(v, xnum)
            return False

        return test_str
    text = java_str(x)

    def test_num(v: Any) -> bool:
        cls = v.__class__
        if cls is int or cls is float:
            return cmp(v, x)
        if cls is str:
            return cmp(v, text)
        return False

    return test_num


# ----------------------------------------------------------------------------- wildcards


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _wildcard_regex(pattern: str, ci: bool) -> Callable[[str], bool]:
    """A matcher for one wildcard pattern; few stars -> ``re`` (bounded cost), else the DFA."""
    if pattern.count("*") <= 2:
        parts = []
        for ch in pattern:
            parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        flags = re.S | (re.I | re.A if ci else 0)
        return re.compile("".join(parts), flags).fullmatch  # type: ignore[return-value]
    lucene = "".join(
        ".*" if ch == "*" else "." if ch == "?" else ch if ch.isalnum() else "\\" + ch for ch in pattern
    )
    return LuceneRegex(lucene, ci).fullmatch


def wildcard_test(patterns: list[str], ci: bool) -> Callable[[str], bool]:
    """String test for ``:``/``like``/``like~`` over several patterns (any may match).

    Patterns are sorted into exact values, prefixes (``abc*``), suffixes (``*abc``), infixes
    (``*abc*``) and general ones, so the common rule shapes cost one set lookup or one
    ``startswith`` call.
    """
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    infixes: list[str] = []
    general: list[Callable[[str], bool]] = []
    match_all = False
    for p in patterns:
        q = ascii_lower(p) if ci else p
        if not has_wildcard(q):
            exact.add(q)
            continue
        inner = q.strip("*")
        if not inner and "?" not in q:
            match_all = True
        elif not has_wildcard(inner):
            if q.startswith("*") and q.endswith("*"):
                infixes.append(inner)
            elif q.endswith("*") and not q.startswith("*"):
                prefixes.append(inner)
            elif q.startswith("*"):
                suffixes.append(inner)
            else:  # pragma: no cover - no wildcard at either end but has one: general
                general.append(_wildcard_regex(q, ci))
        else:
            general.append(_wildcard_regex(p, ci))
    if match_all:
        return lambda s: True
    pre, suf = tuple(prefixes), tuple(suffixes)
    if ci:

        def test_ci(s: str) -> bool:
            low = s.lower() if s.isascii() else ascii_lower(s)
            if low in exact:
                return True
            if pre and low.startswith(pre):
                return True
            if suf and low.endswith(suf):
                return True
            for inf in infixes:
                if inf in low:
                    return True
            for g in general:
                if g(s):
                    return True
            return False

        return test_ci

    def test_cs(s: str) -> bool:
        if s in exact:
            return True
        if pre and s.startswith(pre):
            return True
        if suf and s.endswith(suf):
            return True
        for inf in infixes:
            if inf in s:
                return True
        for g in general:
            if g(s):
                return True
        return False

    return test_cs


def match_test(values: list[Any], ci: bool, wildcards: bool = True) -> Test:
    """``:`` / ``like`` / ``like~`` / ``in~`` over a list of constants, on one field value.

    String values go through the wildcard matcher (or plain folded equality when
    ``wildcards`` is false, as for ``in~``); non-string values fall back to ``term``.
    """
    strs = [v for v in values if isinstance(v, str)]
    others = [term_test(v) for v in values if not isinstance(v, str) and v is not None]
    # a pattern without wildcards is a term query: it can also match numbers and booleans
    str_terms = [term_test(v) for v in strs if not wildcards or not has_wildcard(v)]
    if wildcards:
        s_test = wildcard_test(strs, ci)
    else:
        lows = {ascii_lower(v) for v in strs} if ci else set(strs)
        s_test = (lambda s: ascii_lower(s) in lows) if ci else (lambda s: s in lows)
    non_str = others + str_terms

    def test(v: Any) -> bool:
        if v.__class__ is str:
            return s_test(v)
        for t in non_str:
            if t(v):
                return True
        return False

    return test


def regex_test(patterns: list[LuceneRegex]) -> Test:
    def test(v: Any) -> bool:
        if v.__class__ is not str:
            return False
        for r in patterns:
            if r.fullmatch(v):
                return True
        return False

    return test
