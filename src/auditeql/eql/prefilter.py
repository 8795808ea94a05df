"""Exact raw-line pre-filters: skip an NDJSON line without parsing it, when no match is possible.

From a filter's AST we derive *necessary* conditions on the raw JSON text of any matching
document: a string value ``v`` equal to ``"x"`` is written ``"x"`` (quotes included) in the line;
a wildcard pattern's fixed segments must appear; ``a and b`` needs both; ``a or b`` needs one
of them; ``not`` needs nothing. Case-insensitive operators (``:``, ``like~``, ``in~``, ``~``
functions) fold ASCII only, exactly like ``bytes.lower()``, so their segments are searched in
the lower-cased line. Anything unsure (numbers, which JSON may spell several ways; negations;
scripts) contributes no condition.

Two products: ``literals`` (the plan's simple case-sensitive hint: one of these strings must
occur) and ``line_filter`` (a closure over the full condition tree). Both rely on JSON writers
escaping only what they must: a line holding a ``\\u`` or ``\\/`` escape is never skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import ast
from .lucene_regex import LuceneRegex
from .matchers import has_wildcard, parse_number
from .plan import LITERAL_GUARDS

# A need is ("any", ((text, ci), …)) | ("all", (need, …)) | ("or", (need, …))
Need = tuple[str, tuple[Any, ...]]
LineFilter = Callable[[bytes], bool]
_UNKNOWN = object()
#: Lines an ``all`` check watches before ordering its parts, most rejecting first.
PROBE = 200


def _safe_text(s: str) -> bool:
    """Text whose JSON encoding is itself (no quote, backslash, slash or control characters)."""
    for ch in s:
        if ch in '"\\/' or ord(ch) < 0x20 or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF or ch in "\u2028\u2029":
            return False
    return True


def _has_ascii_letter(s: str) -> bool:
    return any(("a" <= ch <= "z") or ("A" <= ch <= "Z") for ch in s)


def _ascii_lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def value_needs(consts: list[Any], *, ci: bool = False, wildcard: bool = False) -> Need | None:
    """What the line must contain when a field equals/matches one of ``consts``."""
    out: list[tuple[str, bool]] = []
    for c in consts:
        if c is True or c is False:
            out.append(("true" if c else "false", False))
            continue
        if not isinstance(c, str):
            return None  # numbers (several JSON spellings), null, unknown
        if (ci and _ascii_lower(c) in ("true", "false")) or (not ci and c in ("true", "false")):
            # a boolean field matches too, written without quotes
            out.append((_ascii_lower(c) if ci else c, ci))
            continue
        if wildcard and has_wildcard(c):
            parts = c.replace("?", "*").split("*")
            parts[0] = '"' + parts[0]
            parts[-1] = parts[-1] + '"'
            segments = [s for s in parts if s.strip('"')]
            if not segments:
                return None
            seg = max(segments, key=len)
        else:
            if parse_number(c) is not None:
                return None  # a numeric field matches 123 for "123.0"
            seg = '"' + c + '"'
        if not _safe_text(seg.strip('"')):
            return None
        seg_ci = ci and _has_ascii_letter(seg)
        out.append((_ascii_lower(seg) if seg_ci else seg, seg_ci))
    return ("any", tuple(out)) if out else None


def _consts(values: tuple[ast.Expr, ...]) -> list[Any]:
    return [v.value if isinstance(v, ast.Literal) else _UNKNOWN for v in values]


def needs(node: ast.Expr) -> Need | None:
    """The necessary raw-line condition of a filter condition, or ``None`` (no constraint)."""
    if isinstance(node, ast.And):
        parts = [n for n in (needs(node.left), needs(node.right)) if n is not None]
        if not parts:
            return None
        flat: list[Need] = []
        for p in parts:
            flat.extend(p[1] if p[0] == "all" else (p,))
        return flat[0] if len(flat) == 1 else ("all", tuple(flat))
    if isinstance(node, ast.Or):
        a, b = needs(node.left), needs(node.right)
        if a is None or b is None:
            return None
        if a[0] == "any" and b[0] == "any":
            return ("any", a[1] + b[1])
        return ("or", (a, b))
    if isinstance(node, ast.Comparison) and node.op == "==":
        for f, lit in ((node.left, node.right), (node.right, node.left)):
            if isinstance(f, ast.Field) and isinstance(lit, ast.Literal):
                return value_needs([lit.value])
        return None
    if isinstance(node, ast.InSet) and not node.negated and isinstance(node.left, ast.Field):
        return value_needs(_consts(node.values), ci=node.case_insensitive)
    if isinstance(node, ast.StringMatch) and isinstance(node.left, ast.Field):
        consts = _consts(node.values)
        if node.op.startswith("regex"):
            plain = [LuceneRegex(c).literal_value() if isinstance(c, str) else None for c in consts]
            if any(p is None for p in plain):
                return None
            return value_needs(plain, ci=node.op == "regex~")
        return value_needs(consts, ci=node.op != "like", wildcard=True)
    if isinstance(node, ast.FunctionCall) and len(node.args) == 2 and isinstance(node.args[0], ast.Field):
        c = node.canonical
        if c in ("startswith", "endswith", "stringcontains"):
            (x,) = _consts(node.args[1:])
            if isinstance(x, str) and x and not has_wildcard(x):
                pattern = x + "*" if c == "startswith" else "*" + x if c == "endswith" else "*" + x + "*"
                return value_needs([pattern], ci=node.case_insensitive, wildcard=True)
    return None


def category_need(flt: ast.EventFilter) -> Need | None:
    cat = flt.category
    if cat is None or not cat or not _safe_text(cat):
        return None
    return ("any", (('"' + cat + '"', False),))


def filter_literals(flt: ast.EventFilter) -> frozenset[str] | None:
    """The plan's hint; the category only as a last resort (its word is often a JSON key too)."""
    return literals_of(needs(flt.condition)) or literals_of(category_need(flt))


def filter_needs(flt: ast.EventFilter) -> Need | None:
    """Needs of ``cat where cond``: the category term and the condition."""
    cond = needs(flt.condition)
    cat_need = category_need(flt)
    if cat_need is None:
        return cond
    if cond is None:
        return cat_need
    # category words are common JSON keys ("process": {…}); check them after the condition
    return ("all", (*(cond[1] if cond[0] == "all" else (cond,)), cat_need))


def literals_of(need: Need | None) -> frozenset[str] | None:
    """The plan's simple hint: case-sensitive strings, one of which must occur."""
    if need is None:
        return None
    kind, items = need
    if kind == "any":
        if any(ci for _text, ci in items):
            return None
        return frozenset(text for text, _ci in items)
    subs = [literals_of(n) for n in items]
    if kind == "or":
        if any(s is None for s in subs):
            return None
        return frozenset().union(*subs)  # type: ignore[arg-type]
    best = None
    for s in subs:
        if s is None:
            continue
        key = (min(len(t) for t in s), -len(s))
        if best is None or key > best[0]:
            best = (key, s)
    return best[1] if best else None


def need_groups(need: Need | None) -> tuple[tuple[tuple[str, bool], ...], ...]:
    """Groups of terms, each alone a necessary condition: a matching line holds one of its terms.

    ``all`` contributes every group of its parts; ``or`` one group, the union of its branches'
    first groups (a branch without a group makes the ``or`` unknown). Used to pick, per filter,
    the group that rejects most lines when scanning whole blocks (auditeql.sources.linescan).
    """
    if need is None:
        return ()
    kind, items = need
    if kind == "any":
        return (tuple(items),)
    if kind == "all":
        return tuple(g for n in items for g in need_groups(n))
    branches = [need_groups(n) for n in items]
    if any(not b for b in branches):
        return ()
    return (tuple(t for b in branches for t in b[0]),)


def _compile(need: Need) -> tuple[Callable[[bytes, bytes], bool], bool]:
    """need -> (check(line, lowered_line), uses_lowered)."""
    kind, items = need
    if kind == "any":
        cs = tuple(sorted({t.encode() for t, ci in items if not ci}, key=len, reverse=True))
        low = tuple(sorted({t.encode() for t, ci in items if ci}, key=len, reverse=True))
        if len(cs) + len(low) > 3:
            # one pass over the line: an alternation of plain literals (no backtracking hazard)
            rx_cs = re.compile(b"|".join(re.escape(n) for n in cs)).search if cs else None
            rx_low = re.compile(b"|".join(re.escape(n) for n in low)).search if low else None

            def any_rx(line: bytes, lowered: bytes) -> bool:
                if rx_cs is not None and rx_cs(line) is not None:
                    return True
                return rx_low is not None and rx_low(lowered) is not None

            return any_rx, bool(low)

        def any_of(line: bytes, lowered: bytes) -> bool:
            for n in cs:
                if n in line:
                    return True
            for n in low:
                if n in lowered:
                    return True
            return False

        return any_of, bool(low)
    compiled = [_compile(n) for n in items]
    checks = tuple(c for c, _ in compiled)
    uses = any(u for _, u in compiled)
    if kind == "all":
        # learn the cheapest order: after PROBE lines, most rejecting checks first
        order = list(checks)
        fails = [0] * len(checks)
        seen = [0]

        def all_of(line: bytes, lowered: bytes) -> bool:
            n = seen[0]
            if n < PROBE:
                result = True
                for i, c in enumerate(checks):
                    if not c(line, lowered):
                        fails[i] += 1
                        result = False
                seen[0] = n + 1
                if n + 1 == PROBE:
                    order[:] = [checks[i] for i in sorted(range(len(checks)), key=lambda i: -fails[i])]
                return result
            for c in order:
                if not c(line, lowered):
                    return False
            return True

        return all_of, uses

    def or_of(line: bytes, lowered: bytes) -> bool:
        for c in checks:
            if c(line, lowered):
                return True
        return False

    return or_of, uses


def line_filter_of(need: Need | None) -> LineFilter | None:
    """``line -> False`` only when no document on that line can satisfy ``need``."""
    if need is None:
        return None
    check, uses_lower = _compile(need)
    guards = LITERAL_GUARDS

    def may_match(line: bytes) -> bool:
        if check(line, line.lower() if uses_lower else line):
            return True
        for g in guards:
            if g in line:
                return True
        return False

    return may_match


def combine_line_filters(filters: list[LineFilter | None]) -> LineFilter | None:
    """A line may be needed if any filter may match it (``None`` = every line)."""
    if not filters or any(f is None for f in filters):
        return None
    fs = tuple(filters)
    if len(fs) == 1:
        return fs[0]

    def any_filter(line: bytes) -> bool:
        for f in fs:
            if f(line):  # type: ignore[misc]
                return True
        return False

    return any_filter

