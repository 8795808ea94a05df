"""EQL text -> :mod:`auditeql.eql.ast`, with errors that point at line and column.

The grammar (``grammar.lark``) is LALR(1); this module turns lark's tree into frozen AST nodes,
decodes literals (escapes, raw strings, Java int/long/double numbers) and turns every lark
error into an :class:`EqlError` carrying the position of the offending token.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark
from lark import Token, Transformer, v_args

from . import ast
from .errors import EqlError

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1


@lru_cache(maxsize=1)
def _lark() -> lark.Lark:
    # (read next to this module: ``importlib.resources`` alone costs ~30 ms of every start-up)
    text = Path(__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=True, cache=True)


def parse_query(text: str) -> ast.Query:
    """Parse one EQL query (syntax only; call :func:`auditeql.eql.verifier.verify` for semantics)."""
    if not isinstance(text, str):
        raise EqlError("the query must be a string", 1, 1)
    try:
        tree = _lark().parse(text)
        query, pipes = _Builder().transform(tree)
    except EqlError:
        raise
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, EqlError):
            raise exc.orig_exc from None
        raise EqlError(f"cannot parse query: {exc.orig_exc}", 1, 1) from None
    except lark.exceptions.UnexpectedToken as exc:
        raise _unexpected_token(text, exc) from None
    except lark.exceptions.UnexpectedCharacters as exc:
        raise _unexpected_char(text, exc) from None
    except lark.exceptions.UnexpectedEOF:  # pragma: no cover - LALR reports UnexpectedToken($END)
        raise EqlError("unexpected end of query", *_end_position(text)) from None
    if pipes:
        query = _with_pipes(query, pipes)
    return query


def _with_pipes(query: ast.Query, pipes: tuple[ast.Pipe, ...]) -> ast.Query:
    kwargs = {"line": query.line, "column": query.column}
    if isinstance(query, ast.EventQuery):
        return ast.EventQuery(query.filter, pipes, **kwargs)
    if isinstance(query, ast.SampleQuery):
        return ast.SampleQuery(query.by, query.subqueries, pipes, **kwargs)
    return ast.SequenceQuery(query.by, query.subqueries, query.maxspan, query.until, pipes, **kwargs)


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


_TOKEN_NAMES = {
    "$END": "end of query", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('", "RPAR": "')'", "COMMA": "','",
    "NAME": "a name", "STRING": "a string", "INT": "an integer", "WHERE": "'where'", "BY": "'by'",
    "EQUAL": "'='", "VBAR": "'|'", "DOT": "'.'", "COMP_OP": "a comparison", "MATCH_OP": "':'/like/regex",
    "IN_OP": "'in'", "AND": "'and'", "OR": "'or'", "NOT": "'not'", "BACKTICK": "a `quoted` name",
}


def _unexpected_token(text: str, exc: lark.exceptions.UnexpectedToken) -> EqlError:
    tok = exc.token
    if tok.type == "$END":
        return EqlError("unexpected end of query", *_end_position(text))
    expected = sorted({_TOKEN_NAMES.get(e, e.lower().strip("_")) for e in exc.expected})
    hint = ""
    if tok.type == "EQUAL":
        hint = "; use == to compare, = is not an operator"
    elif tok.type == "SQ_STRING":
        hint = "; use double quotes [\"] to define string literals, not single quotes [']"
    shown = ", ".join(expected[:8]) + (", …" if len(expected) > 8 else "")
    return EqlError(f"mismatched input [{tok.value}], expecting one of: {shown}{hint}", tok.line, tok.column)


def _unexpected_char(text: str, exc: lark.exceptions.UnexpectedCharacters) -> EqlError:
    char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
    if char == "'":
        msg = "use double quotes [\"] to define string literals, not single quotes [']"
    elif char == '"':
        msg = "unterminated string literal (strings cannot span lines; use \"\"\"...\"\"\" for raw text)"
    elif char == "`":
        msg = "unterminated `quoted` field name"
    else:
        msg = f"unexpected character [{char}]"
    return EqlError(msg, exc.line, exc.column)


# ---------------------------------------------------------------------------- literals

_ESCAPE = re.compile(r"\\(u\{([0-9A-Fa-f]*)\}?|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def decode_string(tok: Token) -> str:
    """The value of a STRING / RAW_STRING token; raises on single quotes and unknown escapes."""
    raw = str(tok)
    if tok.type == "SQ_STRING":
        raise EqlError("use double quotes [\"] to define string literals, not single quotes [']", tok.line, tok.column)
    if tok.type == "RAW_STRING":
        return raw[3:-3]
    body = raw[1:-1]
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        col = tok.column + 1 + m.start()
        if esc[0] == "u":
            digits = m.group(2)
            if not m.group(0).endswith("}") or not 2 <= len(digits) <= 8:
                raise EqlError("unicode escape must be \\u{XX} with 2 to 8 hex digits", tok.line, col)
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise EqlError(f"invalid unicode code point [\\u{{{digits}}}]", tok.line, col)
            return chr(code)
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        raise EqlError(f"unknown escape sequence [\\{esc}]; valid: \\n \\r \\t \\\\ \\\" \\u{{XX}}", tok.line, col)

    return _ESCAPE.sub(repl, body)


def decode_int(text: str) -> int | float:
    """Java literal typing: int, else long, else double."""
    value = int(text)
    return value if value <= _LONG_MAX else float(value)


def _pos(meta_or_tok: Any) -> dict[str, int]:
    line = getattr(meta_or_tok, "line", 0) or 0
    col = getattr(meta_or_tok, "column", 0) or 0
    return {"line": line, "column": col}


def _field_name(tok: Token) -> str:
    if tok.type == "BACKTICK":
        return str(tok)[1:-1].replace("``", "`")
    return str(tok)


# ---------------------------------------------------------------------------- tree -> AST


@v_args(meta=True, inline=True)
class _Builder(Transformer):  # type: ignore[type-arg]
    def start(self, meta: Any, query: ast.Query, *pipes: ast.Pipe) -> tuple[ast.Query, tuple[ast.Pipe, ...]]:
        return query, tuple(pipes)

    # ---- queries
    def event_query(self, meta: Any, flt: ast.EventFilter) -> ast.EventQuery:
        return ast.EventQuery(flt, **_pos(meta))

    def event_filter(self, meta: Any, category: str | None, cond: ast.Expr) -> ast.EventFilter:
        return ast.EventFilter(category, cond, **_pos(meta))

    def category(self, meta: Any, tok: Token) -> str | None:
        if tok.type == "ANY":
            return None
        if tok.type == "NAME":
            return str(tok)
        return decode_string(tok)

    def sample(self, meta: Any, *items: Any) -> ast.SampleQuery:
        by, rest = _split_by(items)
        return ast.SampleQuery(by, tuple(rest), **_pos(meta))

    def sequence(self, meta: Any, *items: Any) -> ast.SequenceQuery:
        by: tuple[ast.Field, ...] = ()
        maxspan = None
        until = None
        subs = []
        for item in items:
            if isinstance(item, _JoinBy):
                by = item.fields
            elif isinstance(item, ast.TimeSpan):
                maxspan = item
            elif isinstance(item, _Until):
                until = item.sub
            elif item is not None:
                subs.append(item)
        return ast.SequenceQuery(by, tuple(subs), maxspan, until, **_pos(meta))

    def sequence_by_after_with(self, meta: Any, maxspan: ast.TimeSpan, by: Any, *rest: Any) -> Any:
        raise EqlError("please specify sequence [by] before [with] not after", by.line, by.column)

    def maxspan(self, meta: Any, value: Token, unit: Token | None) -> ast.TimeSpan:
        if value.type == "DECIMAL":
            raise EqlError(f"decimal time interval [{value}] not supported", value.line, value.column)
        if unit is None:
            raise EqlError(
                f"no time unit specified, did you mean [s] as in [{value}s]?", value.line, value.column
            )
        if str(unit) not in ast.TIME_UNITS:
            raise EqlError(
                f"unknown time unit [{unit}]; use one of ms, s, m, h, d", unit.line, unit.column
            )
        return ast.TimeSpan(int(value), str(unit), **_pos(meta))

    def span_value(self, meta: Any, tok: Token) -> Token:
        return tok

    def join_by(self, meta: Any, *fields: ast.Field) -> _JoinBy:
        return _JoinBy(tuple(fields), meta.line, meta.column)

    def subquery(self, meta: Any, bang: Token | None, flt: ast.EventFilter, by: Any, runs: Any) -> ast.SubQuery:
        return ast.SubQuery(
            flt, by.fields if by else (), missing=bang is not None, runs=runs, **_pos(meta)
        )

    def runs(self, meta: Any, tok: Token) -> int:
        return int(tok)

    def until(self, meta: Any, sub: ast.SubQuery) -> _Until:
        return _Until(sub)

    def pipe(self, meta: Any, name: Token, *args: Token) -> ast.Pipe:
        kind = str(name).lower()
        if kind not in ("head", "tail"):
            raise EqlError(f"unknown pipe [{name}]; Elasticsearch supports only head and tail", name.line, name.column)
        if len(args) != 1:
            raise EqlError(f"pipe [{kind}] takes exactly one argument, a non-negative integer", name.line, name.column)
        arg = args[0]
        if arg.type != "INT":
            raise EqlError(f"pipe [{kind}] needs a non-negative integer, not [{arg}]", arg.line, arg.column)
        count = int(arg)
        if count > _INT_MAX:
            raise EqlError(f"pipe [{kind}] count [{arg}] is too large", arg.line, arg.column)
        return ast.Pipe(kind, count, **_pos(meta))

    def pipe_arg(self, meta: Any, tok: Token) -> Token:
        return tok

    # ---- expressions
    def or_(self, meta: Any, left: ast.Expr, right: ast.Expr) -> ast.Or:
        return ast.Or(left, right, **_pos(meta))

    def and_(self, meta: Any, left: ast.Expr, right: ast.Expr) -> ast.And:
        return ast.And(left, right, **_pos(meta))

    def not_(self, meta: Any, expr: ast.Expr) -> ast.Not:
        return ast.Not(expr, **_pos(meta))

    def comparison(self, meta: Any, left: ast.Expr, op: Token, right: ast.Expr) -> ast.Comparison:
        return ast.Comparison(str(op), left, right, **_pos(meta))

    def eq_sign(self, meta: Any) -> tuple[int, int]:
        return meta.line, meta.column

    def single_eq(self, meta: Any, left: ast.Expr, where: tuple[int, int], right: ast.Expr) -> Any:
        raise EqlError("[=] is not an operator; use == to compare", *where)

    def string_match(self, meta: Any, left: ast.Expr, op: Token, values: Any) -> ast.StringMatch:
        list_form, vals = values
        return ast.StringMatch(str(op), left, vals, list_form, **_pos(meta))

    def match_values(self, meta: Any, value: ast.Expr) -> tuple[bool, tuple[ast.Expr, ...]]:
        return False, (value,)

    def match_list(self, meta: Any, *values: ast.Expr) -> tuple[bool, tuple[ast.Expr, ...]]:
        return True, tuple(values)

    def neg_literal(self, meta: Any, lit: ast.Literal) -> ast.Literal:
        return ast.Literal(-lit.value, **_pos(meta))  # type: ignore[operator]

    def in_set(self, meta: Any, left: ast.Expr, op: Token, *values: ast.Expr) -> ast.InSet:
        return ast.InSet(left, tuple(values), False, str(op) == "in~", **_pos(meta))

    def not_in_set(self, meta: Any, left: ast.Expr, op: Token, *values: ast.Expr) -> ast.InSet:
        return ast.InSet(left, tuple(values), True, str(op) == "in~", **_pos(meta))

    def arith(self, meta: Any, left: ast.Expr, op: Token, right: ast.Expr) -> ast.Arithmetic:
        return ast.Arithmetic(str(op), left, right, **_pos(meta))

    def neg(self, meta: Any, expr: ast.Expr) -> ast.Expr:
        if isinstance(expr, ast.Literal) and type(expr.value) in (int, float):
            return ast.Literal(-expr.value, **_pos(meta))
        return ast.Negate(expr, **_pos(meta))

    def pos(self, meta: Any, expr: ast.Expr) -> ast.Expr:
        return expr

    def funcall(self, meta: Any, name: Token, tilde: Token | None, *args: ast.Expr | None) -> ast.FunctionCall:
        real = tuple(a for a in args if a is not None)
        return ast.FunctionCall(str(name), real, tilde is not None, **_pos(meta))

    def field(self, meta: Any, qmark: Token | None, *names: Token) -> ast.Field:
        return ast.Field(".".join(_field_name(n) for n in names), qmark is not None, **_pos(meta))

    # ---- literals
    def string(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(decode_string(tok), **_pos(meta))

    def int_(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(decode_int(str(tok)), **_pos(meta))

    def decimal(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(float(str(tok)), **_pos(meta))

    def true(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(True, **_pos(meta))

    def false(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(False, **_pos(meta))

    def null(self, meta: Any, tok: Token) -> ast.Literal:
        return ast.Literal(None, **_pos(meta))


class _JoinBy:
    __slots__ = ("fields", "line", "column")

    def __init__(self, fields: tuple[ast.Field, ...], line: int, column: int) -> None:
        self.fields, self.line, self.column = fields, line, column


class _Until:
    __slots__ = ("sub",)

    def __init__(self, sub: ast.SubQuery) -> None:
        self.sub = sub


def _split_by(items: tuple[Any, ...]) -> tuple[tuple[ast.Field, ...], list[Any]]:
    by: tuple[ast.Field, ...] = ()
    rest = []
    for item in items:
        if isinstance(item, _JoinBy):
            by = item.fields
        elif item is not None:
            rest.append(item)
    return by, rest


def parse_expression(text: str) -> ast.Expr:
    """Parse a bare expression (``length(x) > 2``) — for tools and tests."""
    prefix = "any where "
    try:
        query = parse_query(prefix + text)
    except EqlError as exc:
        column = exc.column - len(prefix) if exc.line == 1 else exc.column
        raise EqlError(exc.message, exc.line, max(column, 1)) from None
    assert isinstance(query, ast.EventQuery)
    if query.pipes:
        raise EqlError("an expression cannot contain pipes", 1, 1)
    return query.filter.condition
