"""Static checks Elasticsearch applies before running an EQL query, with line:column errors.

The parser accepts some things Elasticsearch refuses (they parse the same way in ES's grammar
but fail its verifier/optimizer): unknown functions, wrong arity, ``~`` on functions that have
no case-insensitive form, field-to-field comparisons, mixed-type ``in`` lists, non-boolean
conditions, inconsistent join-key counts, pipes on samples, missing events without maxspan,
``runs`` outside 1..100. Regex and CIDR literals are validated when the compiler builds them.
"""

from __future__ import annotations

from typing import Any

from . import ast
from .errors import EqlError
from .functions import FUNCTIONS

MAX_SAMPLE_FILTERS = 5
MAX_RUNS = 100

# parameter kinds per function (by position; the last repeats for variadic functions)
_PARAMS: dict[str, tuple[str, ...]] = {
    "add": ("number", "number"), "subtract": ("number", "number"), "multiply": ("number", "number"),
    "divide": ("number", "number"), "modulo": ("number", "number"),
    "between": ("string", "string", "string", "boolean"),
    "cidrmatch": ("string", "string"),
    "concat": ("any",),
    "endswith": ("string", "string"), "startswith": ("string", "string"), "stringcontains": ("string", "string"),
    "indexof": ("string", "string", "number"),
    "length": ("string",),
    "number": ("string", "number"),
    "string": ("any",),
    "substring": ("string", "number", "number"),
}


def _err(node: Any, message: str) -> EqlError:
    return EqlError(message, getattr(node, "line", 0), getattr(node, "column", 0))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def has_field(node: Any) -> bool:
    if isinstance(node, ast.Field):
        return True
    for attr in ("left", "right", "expr"):
        child = getattr(node, attr, None)
        if child is not None and has_field(child):
            return True
    for attr in ("args", "values"):
        for child in getattr(node, attr, ()) or ():
            if has_field(child):
                return True
    return False


def expr_type(node: ast.Expr) -> str:
    """'boolean' | 'string' | 'number' | 'null' | 'any' (fields: unknown without a mapping)."""
    if isinstance(node, ast.Literal):
        return _kind(node.value)
    if isinstance(node, (ast.Comparison, ast.StringMatch, ast.InSet, ast.And, ast.Or, ast.Not)):
        return "boolean"
    if isinstance(node, (ast.Arithmetic, ast.Negate)):
        return "number"
    if isinstance(node, ast.FunctionCall):
        spec = FUNCTIONS.get(node.canonical)
        if spec is None:
            return "any"
        return "number" if spec.returns == "int" else spec.returns
    return "any"


def verify(query: ast.Query) -> ast.Query:
    """Raise :class:`EqlError` for the first problem found; return the query unchanged."""
    if isinstance(query, ast.EventQuery):
        _filter(query.filter)
        return query
    if isinstance(query, ast.SampleQuery):
        _verify_sample(query)
    else:
        _verify_sequence(query)
    return query


def _keys_consistent(query: ast.SampleQuery | ast.SequenceQuery, subs: list[ast.SubQuery]) -> None:
    expected = None
    for sub in subs:
        count = len(query.by) + len(sub.by)
        if expected is None:
            expected = count
        elif count != expected:
            where = sub.by[0] if sub.by else sub
            raise _err(where, f"inconsistent number of join keys specified; expected [{expected}] but found [{count}]")


def _verify_sample(query: ast.SampleQuery) -> None:
    if query.pipes:
        raise _err(query.pipes[0], "pipes are not supported with sample queries")
    if len(query.subqueries) > MAX_SAMPLE_FILTERS:
        raise _err(query.subqueries[MAX_SAMPLE_FILTERS], f"a sample query accepts at most {MAX_SAMPLE_FILTERS} filters")
    for sub in query.subqueries:
        if sub.missing:
            raise _err(sub, "missing events [![...]] are only supported in sequences")
        if sub.runs is not None:
            raise _err(sub, "[with runs] is not supported with sample queries")
        _filter(sub.filter)
    _keys_consistent(query, list(query.subqueries))
    if not query.by and not any(s.by for s in query.subqueries):
        raise _err(query, "a sample query needs at least one join key (sample by … or [...] by …)")


def _verify_sequence(query: ast.SequenceQuery) -> None:
    total = 0
    positives = 0
    for sub in query.subqueries:
        if sub.runs is not None and not 1 <= sub.runs <= MAX_RUNS:
            raise _err(sub, f"[runs] must be between 1 and {MAX_RUNS}, found [{sub.runs}]")
        n = sub.runs or 1
        total += n
        if not sub.missing:
            positives += n
        _filter(sub.filter)
    if total < 2:
        raise _err(query, f"a sequence requires a minimum of 2 queries, found [{total}]")
    if positives == 0:
        raise _err(query, "a sequence requires at least one positive (non-missing) event filter")
    if any(s.missing for s in query.subqueries) and query.maxspan is None:
        first = next(s for s in query.subqueries if s.missing)
        raise _err(first, "missing events [![...]] require [with maxspan]")
    if query.maxspan is not None and query.maxspan.value <= 0:
        raise _err(query.maxspan, f"a positive maxspan value is required; found [{query.maxspan.value}]")
    subs = list(query.subqueries)
    if query.until is not None:
        if query.until.missing:
            raise _err(query.until, "[until] cannot be a missing event")
        if query.until.runs is not None:
            raise _err(query.until, "[with runs] is not supported on [until]")
        _filter(query.until.filter)
        subs.append(query.until)
    _keys_consistent(query, subs)


def _filter(flt: ast.EventFilter) -> None:
    _condition(flt.condition)


def _condition(node: ast.Expr) -> None:
    if isinstance(node, (ast.And, ast.Or)):
        _condition(node.left)
        _condition(node.right)
        return
    if isinstance(node, ast.Not):
        _condition(node.expr)
        return
    _expr(node)
    kind = expr_type(node)
    if kind not in ("boolean", "any", "null"):
        raise _err(node, f"condition expression needs to be boolean, found [{kind}]")


def _expr(node: ast.Expr) -> None:
    if isinstance(node, (ast.Literal, ast.Field)):
        return
    if isinstance(node, ast.Comparison):
        _expr(node.left)
        _expr(node.right)
        if has_field(node.left) and has_field(node.right):
            raise _err(node, "comparisons against fields are not (currently) supported")
        for side in (node.left, node.right):
            if expr_type(side) == "boolean" and not isinstance(side, ast.Literal) and node.op not in ("==", "!="):
                raise _err(side, f"[{node.op}] cannot compare boolean expressions")
        return
    if isinstance(node, ast.InSet):
        _expr(node.left)
        kinds = set()
        for v in node.values:
            _expr(v)
            if has_field(v):
                raise _err(v, "comparisons against fields are not (currently) supported")
            k = expr_type(v)
            if k not in ("null", "any"):
                kinds.add(k)
        if len(kinds) > 1:
            raise _err(node.values[0], f"[in] list mixes types {sorted(kinds)}; use values of a single type")
        return
    if isinstance(node, ast.StringMatch):
        _expr(node.left)
        for v in node.values:
            if node.op.startswith("regex") and not (isinstance(v, ast.Literal) and isinstance(v.value, str)):
                raise _err(v, f"[{node.op}] needs string patterns")
        return
    if isinstance(node, (ast.And, ast.Or)):
        _expr(node.left)
        _expr(node.right)
        return
    if isinstance(node, ast.Not):
        _expr(node.expr)
        return
    if isinstance(node, ast.Arithmetic):
        for side in (node.left, node.right):
            _expr(side)
            kind = expr_type(side)
            if kind in ("string", "boolean"):
                raise _err(side, f"arithmetic [{node.op}] needs numbers, found [{kind}]")
        return
    if isinstance(node, ast.Negate):
        _expr(node.expr)
        if expr_type(node.expr) in ("string", "boolean"):
            raise _err(node.expr, "unary [-] needs a number")
        return
    if isinstance(node, ast.FunctionCall):
        _call(node)
        return
    raise _err(node, f"unsupported expression [{type(node).__name__}]")  # pragma: no cover


def _call(node: ast.FunctionCall) -> None:
    spec = FUNCTIONS.get(node.canonical)
    if spec is None:
        known = ", ".join(s.name for s in FUNCTIONS.values())
        raise _err(node, f"unknown function [{node.name}]; known functions: {known}")
    n = len(node.args)
    if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
        if spec.max_args is None:
            want = f"at least {spec.min_args}"
        elif spec.min_args == spec.max_args:
            want = f"exactly {spec.min_args}"
        else:
            want = f"{spec.min_args} to {spec.max_args}"
        raise _err(node, f"function [{spec.name}] expects {want} argument(s), found [{n}]")
    if node.case_insensitive and not spec.insensitive:
        raise _err(node, f"function [{spec.name}] has no case-insensitive [~] form")
    params = _PARAMS[node.canonical]
    for i, arg in enumerate(node.args):
        _expr(arg)
        want = params[min(i, len(params) - 1)]
        kind = expr_type(arg)
        if want != "any" and kind not in ("any", "null", want):
            raise _err(arg, f"argument {i + 1} of [{spec.name}] must be [{want}], found [{kind}]")
    c = node.canonical
    if c == "cidrmatch":
        for arg in node.args[1:]:
            if not (isinstance(arg, ast.Literal) and isinstance(arg.value, str)):
                raise _err(arg, "cidrMatch blocks must be string literals")
    if c == "number" and n == 2:
        base = node.args[1]
        if not (isinstance(base, ast.Literal) and (base.value is None or type(base.value) is int)):
            raise _err(base, "the base of [number] must be an integer literal")
    if c == "between" and n == 4 and not (isinstance(node.args[3], ast.Literal) and isinstance(node.args[3].value, bool)):
        raise _err(node.args[3], "the greedy argument of [between] must be true or false")
