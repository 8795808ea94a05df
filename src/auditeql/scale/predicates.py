"""EQL conditions -> SQL boolean expressions with *bounds*, so SQL never decides wrongly.

Why bounds: a SQL engine cannot reproduce every corner of the Python engine (Lucene regexes,
functions on function results, a string compared with a number, IPv6 parsing). Rather than
guess, each condition compiles to two SQL expressions over one row:

* ``lo`` – true only if the row certainly matches;
* ``hi`` – false only if the row certainly does not match.

An atom SQL cannot express exactly gets ``lo = FALSE, hi = TRUE``; ``not`` swaps the bounds,
``and``/``or`` combine them monotonically. Rows with ``lo`` false and ``hi`` true are
*undecided*: the back end hands them (with the original document) to the Python engine's own
compiled predicate. When ``lo == hi`` for a filter, SQL alone is exact for it.

Semantics reproduced (eql-semantics.md §3.1, §7.1): every atom is "any value satisfies" over
ES-flattened values and false on a missing field; ``not``, ``not in`` and ``!=`` on a field are
complements (true on missing); ``:``/``like~``/``in~`` fold ASCII case only; ``*``/``?`` are the
only wildcards and cannot be escaped; ``== null`` is "absent".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from auditeql.eql import ast
from auditeql.eql.functions import parse_cidr
from auditeql.eql.javatypes import JavaError, ascii_lower, java_str
from auditeql.eql.matchers import has_wildcard, parse_number

from .dialect import Dialect
from .parquet import PINNED, PinnedField

TRUE, FALSE = "TRUE", "FALSE"


@dataclass(frozen=True)
class Bounds:
    lo: str
    hi: str

    @property
    def exact(self) -> bool:
        return self.lo == self.hi


UNKNOWN = Bounds(FALSE, TRUE)


def exact(sql: str) -> Bounds:
    return Bounds(sql, sql)


def sql_and(a: str, b: str) -> str:
    if a == FALSE or b == FALSE:
        return FALSE
    if a == TRUE:
        return b
    if b == TRUE:
        return a
    return f"({a} AND {b})"


def sql_or(a: str, b: str) -> str:
    if a == TRUE or b == TRUE:
        return TRUE
    if a == FALSE:
        return b
    if b == FALSE:
        return a
    return f"({a} OR {b})"


def sql_not(a: str) -> str:
    if a == TRUE:
        return FALSE
    if a == FALSE:
        return TRUE
    return f"(NOT {a})"


def b_and(a: Bounds, b: Bounds) -> Bounds:
    return Bounds(sql_and(a.lo, b.lo), sql_and(a.hi, b.hi))


def b_or(a: Bounds, b: Bounds) -> Bounds:
    return Bounds(sql_or(a.lo, b.lo), sql_or(a.hi, b.hi))


def b_not(a: Bounds) -> Bounds:
    return Bounds(sql_not(a.hi), sql_not(a.lo))


def field_kind(path: str) -> PinnedField:
    """The column type of a field: pinned, or a list of strings for any other field."""
    return PINNED.get(path) or PinnedField(path, "keyword[]")


_CMP = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class ConditionCompiler:
    """Compiles one filter's condition for one dialect; records the fields it reads."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.fields: dict[str, PinnedField] = {}
        #: scalar fields whose ASCII-folded value is read: the relation adds ``<path>#lower``
        self.folds: set[str] = set()
        self._scalar_cols: dict[str, str] = {}
        self._var = 0

    # ----------------------------------------------------------------- field access helpers

    def column(self, path: str) -> str:
        self.fields[path] = field_kind(path)
        return self.d.ident(path)

    def any_value(self, path: str, pred: Callable[[str], str]) -> str:
        """SQL: some value of ``path`` satisfies ``pred(element_sql)`` (false when absent)."""
        kind = field_kind(path)
        col = self.column(path)
        if not kind.is_list:
            self._scalar_cols[col] = path
            body = pred(col)
            if body in (TRUE, FALSE):
                return sql_and(f"({col} IS NOT NULL)", body)
            return f"coalesce({body}, false)"
        self._var += 1
        v = f"_v{self._var}"
        body = pred(v)
        if body == FALSE:
            return FALSE
        if body == TRUE:
            return self.exists(path)
        return self.d.render(self.d.list_any, col=col, v=v, pred=body)

    def fold(self, x: str) -> str:
        """ASCII-folded ``x``; a scalar column's folded value is computed once, in the relation."""
        path = self._scalar_cols.get(x)
        if path is not None:
            self.folds.add(path)
            return self.d.ident(fold_column(path))
        return self.d.ascii_lower(x)

    def exists(self, path: str) -> str:
        kind = field_kind(path)
        col = self.column(path)
        if kind.is_list:
            return self.d.render(self.d.list_nonempty, col=col)
        return f"({col} IS NOT NULL)"

    def lit(self, value: str | int) -> str:
        if isinstance(value, str):
            return self.d.quote(value)
        return str(int(value))

    # ----------------------------------------------------------------- entry points

    def filter(self, category: str | None, condition: ast.Expr, category_field: str) -> Bounds:
        out = self.expr(condition)
        if category is not None:
            out = b_and(exact(self.equals_any(category_field, [category])), out)
        return out

    def expr(self, e: ast.Expr) -> Bounds:
        if isinstance(e, ast.And):
            return b_and(self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.Or):
            return b_or(self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.Not):
            return b_not(self.expr(e.expr))
        if isinstance(e, ast.Literal):
            # a constant condition: the engine folds it, and only ``true`` matches
            return exact(TRUE if e.value is True else FALSE)
        if isinstance(e, ast.Field):
            # a bare field is ``term f: true``
            return exact(self.equals_any(e.name, self.term_values(e.name, [True])))
        if isinstance(e, ast.Comparison):
            return self.comparison(e)
        if isinstance(e, ast.StringMatch):
            return self.string_match(e)
        if isinstance(e, ast.InSet):
            return self.in_set(e)
        if isinstance(e, ast.FunctionCall):
            return self.function(e)
        return UNKNOWN

    # ----------------------------------------------------------------- atoms

    def term_values(self, path: str, consts: list[object]) -> list[str | int]:
        """The column values a ``term`` query for each constant can equal (matchers.term_test).

        A keyword column holds strings: a number constant matches its Java string form, a
        boolean its word. A long column holds integers: a string constant matches if it reads
        as a number, a float only if integral. Constants that can match nothing are dropped.
        """
        kind = field_kind(path).scalar_kind
        out: list[str | int] = []
        for c in consts:
            if c is None:
                continue
            if kind == "keyword":
                if isinstance(c, str):
                    out.append(c)
                elif isinstance(c, bool):
                    out.append("true" if c else "false")
                elif isinstance(c, (int, float)):
                    out.append(java_str(c))
            else:
                num: object = c
                if isinstance(c, bool):
                    continue
                if isinstance(c, str):
                    num = parse_number(c)
                if isinstance(num, int):
                    out.append(num)
                elif isinstance(num, float) and num.is_integer() and abs(num) < 2**62:
                    out.append(int(num))
        return out

    def equals_any(self, path: str, vals: list[str | int]) -> str:
        if not vals:
            return FALSE
        kind = field_kind(path)
        if kind.is_list and len(vals) == 1:
            return self.d.render(self.d.list_contains, col=self.column(path), value=self.lit(vals[0]))
        if len(vals) == 1:
            return self.any_value(path, lambda x: f"{x} = {self.lit(vals[0])}")
        inner = ", ".join(self.lit(v) for v in dict.fromkeys(vals))
        return self.any_value(path, lambda x: f"{x} IN ({inner})")

    def comparison(self, e: ast.Comparison) -> Bounds:
        left, right, op = e.left, e.right, e.op
        if isinstance(left, ast.Literal) and isinstance(right, ast.Field):
            left, right, op = right, left, _FLIP[op]
        if not (isinstance(left, ast.Field) and isinstance(right, ast.Literal)):
            return UNKNOWN
        path, x = left.name, right.value
        if x is None:
            if op == "==":
                return exact(sql_not(self.exists(path)))
            if op == "!=":
                return exact(self.exists(path))
            return exact(FALSE)
        if op in ("==", "!="):
            eq = self.equals_any(path, self.term_values(path, [x]))
            return exact(eq if op == "==" else sql_not(eq))
        bound = self.range_bound(path, op, x)
        if bound is None:
            return UNKNOWN
        if bound is False:
            return exact(FALSE)
        sql_op, value = bound
        return exact(self.any_value(path, lambda v: f"{v} {sql_op} {self.lit(value)}"))

    def range_bound(self, path: str, op: str, x: object) -> tuple[str, str | int] | bool | None:
        """``range`` (matchers.range_test) on this column: (sql op, constant), False, or None."""
        if isinstance(x, bool):
            return False
        kind = field_kind(path).scalar_kind
        if kind == "keyword":
            if isinstance(x, str):
                return _CMP[op], x
            if isinstance(x, (int, float)):
                return _CMP[op], java_str(x)
            return None
        num: object = parse_number(x) if isinstance(x, str) else x
        if num is None:
            return False
        if isinstance(num, int):
            return _CMP[op], num
        if isinstance(num, float):
            if num != num or abs(num) >= 2**62:
                return None
            if num.is_integer():
                return _CMP[op], int(num)
            # an integer column against a fraction: v < 1.5 <=> v <= 1, v > 1.5 <=> v >= 2
            lo, hi = math.floor(num), math.ceil(num)
            return {"<": ("<=", lo), "<=": ("<=", lo), ">": (">=", hi), ">=": (">=", hi)}[op]
        return None

    def in_set(self, e: ast.InSet) -> Bounds:
        if not isinstance(e.left, ast.Field) or not all(isinstance(v, ast.Literal) for v in e.values):
            return UNKNOWN
        path = e.left.name
        consts = [v.value for v in e.values]  # type: ignore[union-attr]
        kind = field_kind(path).scalar_kind
        if e.case_insensitive and kind == "keyword":
            folded = sorted({ascii_lower(c) for c in consts if isinstance(c, str)})
            if folded:
                inner = ", ".join(self.d.quote(c) for c in folded)
                sql = self.any_value(path, lambda x: f"{self.fold(x)} IN ({inner})")
            else:
                sql = FALSE
        else:
            sql = self.equals_any(path, self.term_values(path, consts))
        if None in consts:
            sql = sql_or(sql, sql_not(self.exists(path)))
        return exact(sql_not(sql) if e.negated else sql)

    def string_match(self, e: ast.StringMatch) -> Bounds:
        if not isinstance(e.left, ast.Field) or e.op in ("regex", "regex~"):
            return UNKNOWN
        if not all(isinstance(v, ast.Literal) for v in e.values):
            return UNKNOWN
        path = e.left.name
        consts = [v.value for v in e.values]  # type: ignore[union-attr]
        if any(isinstance(c, str) and c and set(c) == {"*"} for c in consts):
            return exact(self.exists(path))  # `f : "*"` is an exists query
        fold = e.op != "like"
        kind = field_kind(path).scalar_kind
        if kind == "keyword":
            patterns = [c for c in consts if isinstance(c, str)]
            sql = self.any_value(path, lambda x: self.wildcards(x, patterns, fold)) if patterns else FALSE
        else:
            # numbers: only the non-string constants and the wildcard-free strings act, as terms
            terms = [c for c in consts if c is not None and not (isinstance(c, str) and has_wildcard(c))]
            sql = self.equals_any(path, self.term_values(path, terms))
        if None in consts:
            sql = sql_or(sql, sql_not(self.exists(path)))
        return exact(sql)

    def wildcards(self, x: str, patterns: list[str], fold: bool) -> str:
        """``x`` matches one of the ``*``/``?`` patterns; plain strings become an ``IN`` list."""
        subject = self.fold(x) if fold else x
        if fold:
            patterns = [ascii_lower(p) for p in patterns]
        plain = sorted({p for p in patterns if not has_wildcard(p)})
        parts: list[str] = []
        if len(plain) == 1:
            parts.append(f"{subject} = {self.d.quote(plain[0])}")
        elif plain:
            parts.append(f"{subject} IN ({', '.join(self.d.quote(p) for p in plain)})")
        wild = [p for p in dict.fromkeys(patterns) if has_wildcard(p)]
        for p in wild:
            if "?" not in p and p.strip("*") == "":
                return TRUE  # only stars: any string value
        if len(wild) == 1 and "?" not in wild[0] and "*" not in wild[0][:-1] and wild[0].endswith("*"):
            parts.append(self.like(subject, _like_escape(wild[0][:-1]) + "%"))
        elif wild:
            # several patterns: one regular expression (one expression to plan and evaluate)
            pattern = self.d.render(self.d.regex_anchor, p="|".join(_wildcard_regex(p) for p in wild))
            parts.append(self.d.render(self.d.regex_match, x=subject, pattern=self.d.quote(pattern)))
        out = FALSE
        for part in parts:
            out = sql_or(out, part)
        return out

    def like(self, subject: str, pattern: str) -> str:
        return f"({subject} LIKE {self.d.quote(pattern)} ESCAPE {self.d.quote(chr(92))})"

    # ----------------------------------------------------------------- functions

    def function(self, e: ast.FunctionCall) -> Bounds:
        name = e.canonical
        if not e.args or not isinstance(e.args[0], ast.Field):
            return UNKNOWN
        path = e.args[0].name
        rest = e.args[1:]
        if not all(isinstance(a, ast.Literal) and isinstance(a.value, str) for a in rest):
            return UNKNOWN
        args: list[str] = [a.value for a in rest]  # type: ignore[union-attr,misc]
        if field_kind(path).scalar_kind != "keyword":
            # every pushed-down function tests string values only: a number column never matches
            return exact(FALSE) if name in _PUSHED and (name != "cidrmatch" or args) else UNKNOWN
        if name == "cidrmatch" and args:
            return self.cidrmatch(path, args)
        if name in ("startswith", "endswith", "stringcontains") and len(args) == 1:
            x = args[0]
            ci = e.case_insensitive
            if name != "startswith" and has_wildcard(x):
                pattern = ("*" + x) if name == "endswith" else ("*" + x + "*")
                return exact(self.any_value(path, lambda v: self.wildcards(v, [pattern], ci)))
            needle = ascii_lower(x) if ci else x
            pat = {"startswith": "{}%", "endswith": "%{}", "stringcontains": "%{}%"}[name].format(_like_escape(needle))
            return exact(self.any_value(path, lambda v: self.like(self.fold(v) if ci else v, pat)))
        return UNKNOWN

    def cidrmatch(self, path: str, blocks: list[str]) -> Bounds:
        """IPv4 values are decided in SQL (integer ranges); values with ``:`` are left to Python.

        DuckDB's inet extension cannot be loaded offline and Spark has no CIDR type, so a value
        is tested with a strict dotted-quad expression (what ``ipaddress.IPv4Address`` accepts:
        octets ≤ 255, no leading zeros) and compared as an integer with the blocks, which are
        parsed by the engine's own :func:`auditeql.eql.functions.parse_cidr` (IPv4 blocks,
        bare addresses, IPv4-mapped IPv6 blocks). A value without ``:`` that is not a dotted
        quad is no IP address: no match, as in the engine.
        """
        ranges: list[tuple[int, int]] = []
        for block in blocks:
            try:
                net, mask = parse_cidr(block)
            except JavaError:
                return UNKNOWN
            low_mask = mask & 0xFFFFFFFF
            if (_V4_MAPPED & mask) != (net & ~0xFFFFFFFF & ((1 << 128) - 1)):
                continue  # the block's upper 96 bits exclude every IPv4-mapped address
            lo = net & 0xFFFFFFFF
            ranges.append((lo, lo | (~low_mask & 0xFFFFFFFF)))
        d = self.d

        def is_v4(x: str) -> str:
            return d.render(d.regex_match, x=x, pattern=d.quote(d.render(d.regex_anchor, p=_V4_REGEX)))

        def inside(x: str) -> str:
            if not ranges:
                return FALSE
            octets = [f"TRY_CAST(regexp_extract({x}, {d.quote(_V4_GROUPS)}, {i}) AS BIGINT)" for i in range(1, 5)]
            n = f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"
            self._var += 1
            v = f"_n{self._var}"
            test = FALSE
            for a, b in ranges:
                test = sql_or(test, f"{v} BETWEEN {a} AND {b}" if a != b else f"{v} = {a}")
            # the address as an integer is computed once, then tested against every range
            within = d.render(d.list_any, col=d.render(d.one_list, x=n), v=v, pred=test)
            return sql_and(is_v4(x), within)

        def maybe_v6(x: str) -> str:
            return f"(instr({x}, ':') > 0)"

        lo = self.any_value(path, inside)
        hi = self.any_value(path, lambda x: sql_or(maybe_v6(x), inside(x)))
        return Bounds(lo, hi)


_PUSHED = ("cidrmatch", "startswith", "endswith", "stringcontains")
_V4_MAPPED = 0xFFFF << 32
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_REGEX = r"\.".join([_OCTET] * 4)
_V4_GROUPS = r"^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)$"


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _wildcard_regex(pattern: str) -> str:
    """``*``→any run, ``?``→one character; every other character matched literally.

    Non-alphanumeric ASCII is written as ``\\x{HH}`` so the text means the same to RE2 (DuckDB)
    and java.util.regex (Spark) without either's quoting rules.
    """
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isascii() and not ch.isalnum():
            out.append("\\x{%02x}" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def fold_column(path: str) -> str:
    """Name of the relation column holding the ASCII-folded value of scalar field ``path``."""
    return path + "#lower"


def compile_condition(
    dialect: Dialect, category: str | None, condition: ast.Expr, category_field: str = "event.category",
    folds: set[str] | None = None,
) -> tuple[Bounds, Mapping[str, PinnedField]]:
    """Bounds for one filter plus the fields (with column kinds) it reads.

    ``folds`` (if given) collects the scalar fields whose folded column the bounds reference.
    """
    cc = ConditionCompiler(dialect)
    out = cc.filter(category, condition, category_field)
    if folds is not None:
        folds.update(cc.folds)
    elif cc.folds:
        # no relation will add the folded columns: spell the folding inline
        cc2 = ConditionCompiler(dialect)
        cc2.fold = dialect.ascii_lower  # type: ignore[method-assign]
        out = cc2.filter(category, condition, category_field)
    return out, dict(cc.fields)
