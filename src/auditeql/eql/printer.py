"""AST -> EQL text. ``parse_query(to_text(q)) == q`` for every AST in the parser's normal form.

Parentheses are emitted only where precedence needs them; strings always use escaped double
quotes; field name segments that are not plain identifiers (or are keywords) get backticks.
"""

from __future__ import annotations

import math
import re

from . import ast

KEYWORDS = frozenset(
    "and any by false in like maxspan not null or regex runs sample sequence true until where with".split()
)
_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@]*\Z")

# precedence levels (higher binds tighter)
_OR, _AND, _NOT, _VALUE, _ADD, _MUL, _UNARY, _PRIMARY = range(1, 9)
_ARITH_LEVEL = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "%": _MUL}


def to_text(node: ast.Query | ast.Expr | ast.EventFilter | ast.SubQuery) -> str:
    """Render a query or any expression node as EQL text."""
    if isinstance(node, ast.EventQuery):
        return _filter(node.filter) + _pipes(node.pipes)
    if isinstance(node, ast.SampleQuery):
        head = "sample" + _by(node.by)
        return " ".join([head, *(_sub(s) for s in node.subqueries)]) + _pipes(node.pipes)
    if isinstance(node, ast.SequenceQuery):
        head = "sequence" + _by(node.by)
        if node.maxspan is not None:
            head += f" with maxspan={node.maxspan.value}{node.maxspan.unit}"
        parts = [head, *(_sub(s) for s in node.subqueries)]
        if node.until is not None:
            parts.append("until " + _sub(node.until))
        return " ".join(parts) + _pipes(node.pipes)
    if isinstance(node, ast.EventFilter):
        return _filter(node)
    if isinstance(node, ast.SubQuery):
        return _sub(node)
    return _expr(node, 0)


def _pipes(pipes: tuple[ast.Pipe, ...]) -> str:
    return "".join(f" | {p.kind} {p.count}" for p in pipes)


def _by(fields: tuple[ast.Field, ...]) -> str:
    return " by " + ", ".join(_field(f) for f in fields) if fields else ""


def _sub(sub: ast.SubQuery) -> str:
    text = ("!" if sub.missing else "") + "[" + _filter(sub.filter) + "]" + _by(sub.by)
    if sub.runs is not None:
        text += f" with runs={sub.runs}"
    return text


def _filter(flt: ast.EventFilter) -> str:
    cat = flt.category
    if cat is None:
        name = "any"
    elif _NAME.match(cat) and cat not in KEYWORDS:
        name = cat
    else:
        name = quote(cat)
    return f"{name} where {_expr(flt.condition, 0)}"


def quote(value: str) -> str:
    """A double-quoted EQL string literal for ``value``."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\u{%02x}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _field(f: ast.Field) -> str:
    segs = []
    for seg in f.name.split("."):
        if _NAME.match(seg) and seg not in KEYWORDS:
            segs.append(seg)
        else:
            segs.append("`" + seg.replace("`", "``") + "`")
    return ("?" if f.optional else "") + ".".join(segs)


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} has no EQL literal form")
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    return str(value)


def _level(node: ast.Expr) -> int:
    if isinstance(node, ast.Or):
        return _OR
    if isinstance(node, ast.And):
        return _AND
    if isinstance(node, ast.Not):
        return _NOT
    if isinstance(node, (ast.Comparison, ast.StringMatch, ast.InSet)):
        return _VALUE
    if isinstance(node, ast.Arithmetic):
        return _ARITH_LEVEL[node.op]
    if isinstance(node, ast.Negate):
        return _UNARY
    if isinstance(node, ast.Literal) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _UNARY if node.value < 0 or str(node.value).startswith("-") else _PRIMARY
    return _PRIMARY


def _expr(node: ast.Expr, min_level: int) -> str:
    text = _expr_raw(node)
    return f"({text})" if _level(node) < min_level else text


def _expr_raw(node: ast.Expr) -> str:
    if isinstance(node, ast.Literal):
        return _literal(node.value)
    if isinstance(node, ast.Field):
        return _field(node)
    if isinstance(node, ast.Or):
        return f"{_expr(node.left, _OR)} or {_expr(node.right, _AND)}"
    if isinstance(node, ast.And):
        return f"{_expr(node.left, _AND)} and {_expr(node.right, _NOT)}"
    if isinstance(node, ast.Not):
        return f"not {_expr(node.expr, _NOT)}"
    if isinstance(node, ast.Comparison):
        return f"{_expr(node.left, _ADD)} {node.op} {_expr(node.right, _ADD)}"
    if isinstance(node, ast.StringMatch):
        vals = ", ".join(_expr(v, _UNARY) for v in node.values)
        if node.list_form or len(node.values) != 1:
            vals = f"({vals})"
        return f"{_expr(node.left, _ADD)} {node.op} {vals}"
    if isinstance(node, ast.InSet):
        op = ("not " if node.negated else "") + ("in~" if node.case_insensitive else "in")
        vals = ", ".join(_expr(v, 0) for v in node.values)
        return f"{_expr(node.left, _ADD)} {op} ({vals})"
    if isinstance(node, ast.Arithmetic):
        level = _ARITH_LEVEL[node.op]
        return f"{_expr(node.left, level)} {node.op} {_expr(node.right, level + 1)}"
    if isinstance(node, ast.Negate):
        return f"-{_expr(node.expr, _UNARY)}"
    if isinstance(node, ast.FunctionCall):
        args = ", ".join(_expr(a, 0) for a in node.args)
        return f"{node.name}{'~' if node.case_insensitive else ''}({args})"
    raise TypeError(f"not an EQL expression node: {node!r}")
