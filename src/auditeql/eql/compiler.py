"""AST -> :mod:`auditeql.eql.plan`: Python predicates with Elasticsearch *query* semantics.

Elasticsearch never evaluates an EQL filter in memory: it translates each condition into Query
DSL (term, wildcard, range, prefix, exists, bool must/must_not) and only what it cannot
translate becomes a Painless script wrapped in a null-safe "any value" filter (spec §3.1).
This compiler mirrors that split:

* an *atom on a field* (``f == v``, ``f : "a*"``, ``startsWith(f, "x")``, ``cidrMatch(f, …)``)
  becomes "any value of ``f`` passes the per-value test" — false when ``f`` is missing;
* ``not``, ``not in`` and field-level ``!=`` are plain complements (true on a missing field);
* any other atom (functions/arithmetic on fields) is a *script*: it is evaluated for every
  combination of its fields' values (a missing field once, as null), a null/erroring result
  counts as false, and it matches if any combination is true;
* constant sub-expressions are folded at compile time with Java semantics (errors -> EqlError).

Predicates are closures built once per node; the hot paths (string equality and ``:`` on a
nested field) read the field with a specialised getter and allocate nothing per event.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from .. import fields as _fields
from . import ast
from . import javatypes as jt
from .errors import EqlError
from .functions import ARITH_FUNCTIONS, FUNCTIONS, CidrSet
from .lucene_regex import LuceneRegex, RegexError
from .matchers import (
    Test,
    has_wildcard,
    match_test,
    parse_number,
    range_test,
    regex_test,
    term_test,
    wildcard_test,
)
from .prefilter import filter_literals, filter_needs, line_filter_of, need_groups
from .plan import CompiledFilter, EventPlan, KeyField, Pipe, Plan, Predicate, SamplePlan, SequencePlan

Env = dict[str, Any]
ValueFn = Callable[[Env], Any]

_ABSENT = object()
_values = _fields.values
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _true(doc: Mapping[str, Any]) -> bool:
    return True


def _false(doc: Mapping[str, Any]) -> bool:
    return False


# ----------------------------------------------------------------------------- field access


def make_getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """Raw nested lookup of ``path``; returns ``_ABSENT`` when the slow path must decide.

    The caller treats a scalar result as the field's only value, ``None`` as missing, and
    anything else (absent key, list, object) by calling :func:`auditeql.fields.values`,
    so the semantics stay exactly those of ``fields.values``.
    """
    parts = path.split(".")
    if len(parts) == 1:
        (a,) = parts

        def get1(doc: Mapping[str, Any]) -> Any:
            try:
                return doc[a]
            except (KeyError, TypeError):
                return _ABSENT

        return get1
    if len(parts) == 2:
        a, b = parts

        def get2(doc: Mapping[str, Any]) -> Any:
            try:
                return doc[a][b]
            except (KeyError, TypeError, IndexError):
                return _ABSENT

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(doc: Mapping[str, Any]) -> Any:
            try:
                return doc[a][b][c]
            except (KeyError, TypeError, IndexError):
                return _ABSENT

        return get3

    def getn(doc: Mapping[str, Any]) -> Any:
        node: Any = doc
        try:
            for p in parts:
                node = node[p]
        except (KeyError, TypeError, IndexError):
            return _ABSENT
        return node

    return getn


def any_value(path: str, test: Test, str_test: Callable[[str], bool] | None = None) -> Predicate:
    """True if any value of ``path`` passes ``test`` (false when the field is missing).

    ``str_test`` (optional) is a faster test used for string values. A nested scalar or a flat
    list of scalars is decided here (the lookup is inlined for paths of up to three parts);
    anything else goes through ``fields.values``, so semantics stay those of ``fields.values``.
    """
    stest = str_test or test

    def slow(doc: Mapping[str, Any]) -> bool:
        for item in _values(doc, path):
            if item.__class__ is str:
                if stest(item):
                    return True
            elif test(item):
                return True
        return False

    def decide(doc: Mapping[str, Any], v: Any) -> bool:
        cls = v.__class__
        if cls is list:
            for item in v:
                icls = item.__class__
                if icls is str:
                    if stest(item):
                        return True
                elif icls is dict or icls is list:
                    return slow(doc)
                elif item is not None and test(item):
                    return True
            return False
        if cls is int or cls is float or cls is bool:
            return test(v)
        if v is None:
            return False
        return slow(doc)

    parts = path.split(".")
    if len(parts) == 1:
        (a,) = parts

        def pred1(doc: Mapping[str, Any]) -> bool:
            try:
                v = doc[a]
            except (KeyError, TypeError):
                return slow(doc)
            if v.__class__ is str:
                return stest(v)
            return decide(doc, v)

        return pred1
    if len(parts) == 2:
        a, b = parts

        def pred2(doc: Mapping[str, Any]) -> bool:
            try:
                v = doc[a][b]
            except (KeyError, TypeError, IndexError):
                return slow(doc)
            if v.__class__ is str:
                return stest(v)
            return decide(doc, v)

        return pred2
    if len(parts) == 3:
        a, b, c = parts

        def pred3(doc: Mapping[str, Any]) -> bool:
            try:
                v = doc[a][b][c]
            except (KeyError, TypeError, IndexError):
                return slow(doc)
            if v.__class__ is str:
                return stest(v)
            return decide(doc, v)

        return pred3
    get = make_getter(path)

    def pred(doc: Mapping[str, Any]) -> bool:
        v = get(doc)
        if v is _ABSENT:
            return slow(doc)
        if v.__class__ is str:
            return stest(v)
        return decide(doc, v)

    return pred


def has_value(path: str) -> Predicate:
    get = make_getter(path)

    def pred(doc: Mapping[str, Any]) -> bool:
        v = get(doc)
        cls = v.__class__
        if cls is str or cls is int or cls is float or cls is bool:
            return True
        if v is None:
            return False
        return bool(_values(doc, path))

    return pred


def _negate(p: Predicate) -> Predicate:
    return lambda doc: not p(doc)


#: Documents a conjunction watches before putting its most selective parts first.
AND_PROBE = 500


def _and(a: Predicate, b: Predicate) -> Predicate:
    if a is _true:
        return b
    if b is _true:
        return a
    if a is _false or b is _false:
        return _false
    parts = getattr(a, "_and_parts", (a,)) + getattr(b, "_and_parts", (b,))
    return _conjunction(parts)


def _conjunction(parts: tuple[Predicate, ...]) -> Predicate:
    """``all(p(doc) for p in parts)``, learning the cheapest order on the first documents.

    Parts are pure (no side effects, errors already turned into False), so evaluating them in
    any order gives the same answer; rejecting early saves the rest. For the first
    :data:`AND_PROBE` documents every part is evaluated and its pass count kept, then the
    parts are re-ordered by pass rate, most rejecting first.
    """
    order = list(parts)
    passes = [0] * len(parts)
    state = [0]

    def and_n(doc: Mapping[str, Any]) -> bool:
        n = state[0]
        if n < AND_PROBE:
            result = True
            for i, p in enumerate(parts):
                if p(doc):
                    passes[i] += 1
                else:
                    result = False
            n += 1
            state[0] = n
            if n == AND_PROBE:
                ranked = sorted(range(len(parts)), key=lambda i: passes[i])
                order[:] = [parts[i] for i in ranked]
            return result
        for p in order:
            if not p(doc):
                return False
        return True

    and_n._and_parts = parts  # type: ignore[attr-defined]
    return and_n


def _or(a: Predicate, b: Predicate) -> Predicate:
    if a is _false:
        return b
    if b is _false:
        return a
    if a is _true or b is _true:
        return _true
    return lambda doc: a(doc) or b(doc)


# ----------------------------------------------------------------------------- helpers on AST


def field_names(node: Any) -> list[str]:
    """Field paths referenced by an expression, in first-seen order."""
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, ast.Field):
            if n.name not in out:
                out.append(n.name)
        elif isinstance(n, (ast.Comparison, ast.Arithmetic, ast.And, ast.Or)):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, (ast.Not, ast.Negate)):
            walk(n.expr)
        elif isinstance(n, (ast.StringMatch, ast.InSet)):
            walk(n.left)
            for v in n.values:
                walk(v)
        elif isinstance(n, ast.FunctionCall):
            for a in n.args:
                walk(a)

    walk(node)
    return out


def static_int(node: Any) -> bool:
    """Whether ``node`` has Java type ``int`` (vs long/double): literals in int range, length, indexOf."""
    if isinstance(node, ast.Literal):
        return type(node.value) is int and jt.INT_MIN <= node.value <= jt.INT_MAX
    if isinstance(node, ast.FunctionCall):
        c = node.canonical
        if c in ("length", "indexof"):
            return True
        if c in ARITH_FUNCTIONS:
            return all(static_int(a) for a in node.args)
        return False
    if isinstance(node, ast.Arithmetic):
        return static_int(node.left) and static_int(node.right)
    if isinstance(node, ast.Negate):
        return static_int(node.expr)
    return False


def _err(node: Any, message: str) -> EqlError:
    return EqlError(message, getattr(node, "line", 0), getattr(node, "column", 0))


# ----------------------------------------------------------------------------- script values


def _java_eq(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if jt.is_number(a) and jt.is_number(b):
        return a == b
    if type(a) is type(b):
        return a == b
    return None


def _java_cmp(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if op == "==":
        return _java_eq(a, b)
    if op == "!=":
        r = _java_eq(a, b)
        return None if r is None else not r
    if jt.is_number(a) and jt.is_number(b) or type(a) is type(b) and type(a) in (str, bool):
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b
    return None


class _Compiler:
    def __init__(self, category_field: str) -> None:
        self.category_field = category_field

    # ---------------------------------------------------------------- constants
    def fold(self, node: ast.Expr) -> Any:
        """Evaluate a field-free expression now (Java semantics); errors become EqlError."""
        fn = self.value(node)
        try:
            return fn({})
        except jt.JavaError as exc:
            raise _err(node, str(exc)) from None

    # ---------------------------------------------------------------- script values
    def value(self, node: ast.Expr) -> ValueFn:
        """Compile an expression to ``env -> value`` (env maps field path -> one value or None)."""
        if isinstance(node, ast.Literal):
            v = node.value
            return lambda env: v
        if isinstance(node, ast.Field):
            name = node.name
            return lambda env: env.get(name)
        if isinstance(node, ast.Negate):
            inner = self.value(node.expr)
            is_int = static_int(node.expr)
            return lambda env: jt.negate(inner(env), is_int)
        if isinstance(node, ast.Arithmetic):
            return self._arith_value(node.op, node.left, node.right)
        if isinstance(node, ast.FunctionCall):
            return self._call_value(node)
        # boolean-valued nodes used as values (rare): evaluate as script predicates
        pred = self.script_bool(node)
        return pred

    def _arith_value(self, op: str, left: ast.Expr, right: ast.Expr) -> ValueFn:
        lf, rf = self.value(left), self.value(right)
        is_int = static_int(left) and static_int(right)
        return lambda env: jt.arith(op, lf(env), rf(env), is_int)

    def _call_value(self, node: ast.FunctionCall) -> ValueFn:
        c = node.canonical
        spec = FUNCTIONS.get(c)
        if spec is None:
            raise _err(node, f"unknown function [{node.name}]")
        if c in ARITH_FUNCTIONS:
            return self._arith_value(ARITH_FUNCTIONS[c], node.args[0], node.args[1])
        args = [self.value(a) for a in node.args]
        impl = spec.impl
        ci = node.case_insensitive
        if c == "cidrmatch":
            blocks = tuple(self.fold(a) for a in node.args[1:])
            try:
                cset = CidrSet(blocks)  # type: ignore[arg-type]
            except (jt.JavaError, TypeError) as exc:
                raise _err(node, str(exc)) from None
            ip_fn = args[0]

            def cidr(env: Env) -> Any:
                ip = ip_fn(env)
                if ip is None:
                    return None
                if not isinstance(ip, str) or _ip_invalid(ip):
                    raise jt.JavaError(f"[{jt.java_str(ip)}] is not an IP address")
                return cset.contains(ip)

            return cidr
        if len(args) == 1:
            a0 = args[0]
            return lambda env: impl(a0(env), ci=ci)
        if len(args) == 2:
            a0, a1 = args
            return lambda env: impl(a0(env), a1(env), ci=ci)
        return lambda env: impl(*(a(env) for a in args), ci=ci)

    def script_bool(self, node: ast.Expr) -> ValueFn:
        """A boolean atom evaluated as a script: ``env -> True | False | None``."""
        if isinstance(node, ast.Comparison):
            lf, rf = self.value(node.left), self.value(node.right)
            op = node.op
            if isinstance(node.right, ast.Literal) and node.right.value is None:
                if op == "==":
                    return lambda env: lf(env) is None
                if op == "!=":
                    return lambda env: lf(env) is not None
            return lambda env: _java_cmp(op, lf(env), rf(env))
        if isinstance(node, ast.InSet):
            lf = self.value(node.left)
            consts = [self.fold(v) for v in node.values]
            ci = node.case_insensitive

            def in_set(env: Env) -> Any:
                v = lf(env)
                if v is None:
                    return None
                for c in consts:
                    if ci and isinstance(v, str) and isinstance(c, str):
                        if jt.java_lower(v) == jt.java_lower(c):
                            return True
                    elif _java_eq(v, c):
                        return True
                return False

            if node.negated:
                return lambda env: None if (r := in_set(env)) is None else not r
            return in_set
        if isinstance(node, ast.StringMatch):
            lf = self.value(node.left)
            test = self._string_match_test(node)

            def sm(env: Env) -> Any:
                v = lf(env)
                if v is None:
                    return None
                return test(v)

            return sm
        if isinstance(node, ast.Not):
            inner = self.script_bool(node.expr)
            return lambda env: None if (r := inner(env)) is None else not r
        if isinstance(node, ast.And):
            a, b = self.script_bool(node.left), self.script_bool(node.right)
            return lambda env: a(env) is True and b(env) is True
        if isinstance(node, ast.Or):
            a, b = self.script_bool(node.left), self.script_bool(node.right)
            return lambda env: a(env) is True or b(env) is True
        return self.value(node)

    # ---------------------------------------------------------------- predicates
    def predicate(self, node: ast.Expr) -> Predicate:
        if isinstance(node, ast.And):
            return _and(self.predicate(node.left), self.predicate(node.right))
        if isinstance(node, ast.Or):
            return _or(self.predicate(node.left), self.predicate(node.right))
        if isinstance(node, ast.Not):
            inner = self.predicate(node.expr)
            if inner is _true:
                return _false
            if inner is _false:
                return _true
            return _negate(inner)
        if not field_names(node):
            return _true if self.fold(node) is True else _false
        if isinstance(node, ast.Field):
            return any_value(node.name, term_test(True))
        if isinstance(node, ast.Comparison):
            return self._comparison(node)
        if isinstance(node, ast.InSet):
            return self._in_set(node)
        if isinstance(node, ast.StringMatch):
            return self._string_match(node)
        if isinstance(node, ast.FunctionCall):
            pushed = self._pushdown_call(node)
            if pushed is not None:
                return pushed
        return self._script(node)

    def _script(self, node: ast.Expr) -> Predicate:
        """multiValueDocValues + nullSafeFilter: any combination of field values gives true."""
        fn = self.script_bool(node)
        names = field_names(node)
        if len(names) == 1:
            (path,) = names

            def one(doc: Mapping[str, Any]) -> bool:
                vals = _values(doc, path) or (None,)
                for v in vals:
                    try:
                        if fn({path: v}) is True:
                            return True
                    except (jt.JavaError, TypeError, ValueError, OverflowError):
                        continue
                return False

            return one

        def many(doc: Mapping[str, Any]) -> bool:
            lists = [_values(doc, p) or (None,) for p in names]
            for combo in itertools.product(*lists):
                try:
                    if fn(dict(zip(names, combo))) is True:
                        return True
                except (jt.JavaError, TypeError, ValueError, OverflowError):
                    continue
            return False

        return many

    def _comparison(self, node: ast.Comparison) -> Predicate:
        left, right, op = node.left, node.right, node.op
        if not field_names(right) and field_names(left):
            pass
        elif not field_names(left) and field_names(right):
            left, right, op = right, left, _FLIP[op]
        else:
            raise _err(node, "comparisons against fields are not (currently) supported")
        if not isinstance(left, ast.Field):
            const = self.fold(right)
            return self._script(ast.Comparison(op, left, ast.Literal(const), line=node.line, column=node.column))
        x = self.fold(right)
        path = left.name
        if x is None:
            if op == "==":
                return _negate(has_value(path))
            if op == "!=":
                return has_value(path)
            return _false
        if op in ("==", "!="):
            test = term_test(x)
            if isinstance(x, str):
                pred = any_value(path, test, x.__eq__)
            else:
                pred = any_value(path, test)
            return pred if op == "==" else _negate(pred)
        return any_value(path, range_test(op, x))

    def _in_set(self, node: ast.InSet) -> Predicate:
        for v in node.values:
            if field_names(v):
                raise _err(v, "comparisons against fields are not (currently) supported")
        if not isinstance(node.left, ast.Field):
            pred = self._script(ast.InSet(node.left, node.values, False, node.case_insensitive))
            return _negate(pred) if node.negated else pred
        consts = [self.fold(v) for v in node.values]
        path = node.left.name
        non_null = [c for c in consts if c is not None]
        if node.case_insensitive:
            test = match_test(non_null, ci=True, wildcards=False)
            pred = any_value(path, test)
        else:
            tests = [term_test(c) for c in non_null]
            strs = frozenset(c for c in non_null if isinstance(c, str))

            def test(v: Any) -> bool:
                for t in tests:
                    if t(v):
                        return True
                return False

            only_plain_strs = all(isinstance(c, str) and parse_number(c) is None and c not in ("true", "false") for c in non_null)
            pred = any_value(path, test, strs.__contains__ if only_plain_strs else None)
        if None in consts:
            pred = _or(pred, _negate(has_value(path)))
        return _negate(pred) if node.negated else pred

    def _string_match_test(self, node: ast.StringMatch) -> Test:
        consts = [self.fold(v) for v in node.values]
        op = node.op
        if op.startswith("regex"):
            regexes = []
            for v, c in zip(node.values, consts):
                if not isinstance(c, str):
                    raise _err(v, f"[{op}] needs string patterns, found [{jt.java_str(c)}]")
                try:
                    regexes.append(LuceneRegex(c, op == "regex~"))
                except RegexError as exc:
                    raise _err(v, f"invalid regular expression [{c}]: {exc} (at offset {exc.pos})") from None
            return regex_test(regexes)
        ci = op != "like"
        return match_test([c for c in consts if c is not None], ci=ci, wildcards=True)

    def _string_match(self, node: ast.StringMatch) -> Predicate:
        if not isinstance(node.left, ast.Field):
            return self._script(node)
        consts = [self.fold(v) for v in node.values]
        path = node.left.name
        if node.op in (":", "like", "like~") and any(isinstance(c, str) and c and set(c) == {"*"} for c in consts):
            return has_value(path)  # `f : "*"` is an exists query
        test = self._string_match_test(node)
        pred = any_value(path, test)
        if None in consts:
            pred = _or(pred, _negate(has_value(path)))
        return pred

    def _pushdown_call(self, node: ast.FunctionCall) -> Predicate | None:
        """Functions Elasticsearch runs as queries when their first argument is a field."""
        c = node.canonical
        if not node.args or not isinstance(node.args[0], ast.Field):
            return None
        path = node.args[0].name
        rest = node.args[1:]
        if any(field_names(a) for a in rest):
            return None
        if c == "cidrmatch":
            blocks = tuple(self.fold(a) for a in rest)
            for a, b in zip(rest, blocks):
                if not isinstance(b, str):
                    raise _err(a, "cidrMatch blocks must be string literals")
            try:
                cset = CidrSet(blocks)  # type: ignore[arg-type]
            except jt.JavaError as exc:
                raise _err(node, str(exc)) from None
            return any_value(path, lambda v: v.__class__ is str and cset.contains(v))
        if c in ("startswith", "endswith", "stringcontains") and len(rest) == 1:
            x = self.fold(rest[0])
            if not isinstance(x, str):
                return None
            if c == "startswith":
                pattern = x + "*"
            elif c == "endswith":
                pattern = "*" + x
            else:
                pattern = "*" + x + "*"
            if c == "startswith":
                # a prefix query: no wildcard interpretation of x
                ci = node.case_insensitive
                low = jt.ascii_lower(x) if ci else x
                if ci:
                    return any_value(path, lambda v: v.__class__ is str and jt.ascii_lower(v).startswith(low))
                return any_value(path, lambda v: v.__class__ is str and v.startswith(x))
            if has_wildcard(x):
                # ES escapes nothing here: `*`/`?` in x act as wildcards of the pushed-down query
                stest = wildcard_test([pattern], node.case_insensitive)
            else:
                ci = node.case_insensitive
                low = jt.ascii_lower(x) if ci else x
                if c == "endswith":
                    stest = (lambda s: jt.ascii_lower(s).endswith(low)) if ci else (lambda s: s.endswith(x))
                else:
                    stest = (lambda s: low in jt.ascii_lower(s)) if ci else (lambda s: x in s)
            return any_value(path, lambda v: v.__class__ is str and stest(v))
        return None


def _ip_invalid(ip: str) -> bool:
    from .functions import ip_to_int

    return ip_to_int(ip) is None


# ----------------------------------------------------------------------------- plans


def compile_filter(
    flt: ast.EventFilter,
    *,
    keys: tuple[ast.Field, ...] = (),
    missing: bool = False,
    source: Any = None,
    event_category_field: str = "event.category",
) -> CompiledFilter:
    comp = _Compiler(event_category_field)
    cond = comp.predicate(flt.condition)
    need = filter_needs(flt)
    if flt.category is not None:
        cat = flt.category
        cat_pred = any_value(event_category_field, lambda v: v == cat, cat.__eq__)
        pred = _and(cat_pred, cond)
    else:
        pred = cond
    return CompiledFilter(
        predicate=pred,
        keys=tuple(KeyField(k.name, k.optional) for k in keys),
        missing=missing,
        category=flt.category,
        literals=filter_literals(flt),
        source=source if source is not None else flt,
        line_filter=line_filter_of(need),
        line_groups=need_groups(need),
    )


def build_plan(query: ast.Query, *, event_category_field: str = "event.category") -> Plan:
    """Compile a verified query into a plan."""
    kw = {"event_category_field": event_category_field}
    if isinstance(query, ast.EventQuery):
        flt = compile_filter(query.filter, source=query.filter, **kw)
        return EventPlan(flt, tuple(Pipe(p.kind, p.count) for p in query.pipes), source=query)
    if isinstance(query, ast.SampleQuery):
        filters = tuple(
            compile_filter(s.filter, keys=query.by + s.by, source=s, **kw) for s in query.subqueries
        )
        return SamplePlan(filters, source=query)
    filters_l: list[CompiledFilter] = []
    for s in query.subqueries:
        f = compile_filter(s.filter, keys=query.by + s.by, missing=s.missing, source=s, **kw)
        filters_l.extend([f] * (s.runs or 1))
    until = None
    if query.until is not None:
        until = compile_filter(query.until.filter, keys=query.by + query.until.by, source=query.until, **kw)
    return SequencePlan(
        tuple(filters_l),
        maxspan_ms=query.maxspan.millis if query.maxspan is not None else None,
        until=until,
        pipes=tuple(Pipe(p.kind, p.count) for p in query.pipes),
        source=query,
    )


def evaluate_constant(expr: ast.Expr | str) -> Any:
    """The value of a field-free expression, folded with Java semantics (``EqlError`` on errors)."""
    from .parser import parse_expression
    from .verifier import _expr

    node = parse_expression(expr) if isinstance(expr, str) else expr
    _expr(node)
    if field_names(node):
        raise _err(node, "the expression references fields; it has no constant value")
    comp = _Compiler("event.category")
    if isinstance(node, (ast.Comparison, ast.InSet, ast.StringMatch, ast.Not, ast.And, ast.Or)):
        try:
            return comp.script_bool(node)({})
        except jt.JavaError as exc:
            raise _err(node, str(exc)) from None
    return comp.fold(node)
