"""Compiled predicates agree with a plain, slow reference evaluator on generated documents.

The reference below restates spec §3.1 directly — "any value" over arrays, false on missing,
``not``/``not in``/field ``!=`` as complements, scripts null-safe — with naive code (a
recursive wildcard matcher, Python ``re`` for the generated regex subset, explicit loops),
independently of the compiler's closures, matchers and push-down shortcuts.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.eql import ast, compile_query, to_text
from auditeql.fields import values

# ----------------------------------------------------------------------------- reference


def ascii_fold(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def wildcard(s: str, p: str) -> bool:
    if not p:
        return not s
    if p[0] == "*":
        return any(wildcard(s[i:], p[1:]) for i in range(len(s) + 1))
    if not s:
        return False
    return (p[0] == "?" or p[0] == s[0]) and wildcard(s[1:], p[1:])


def as_number(text: str) -> float | None:
    if not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", text):
        return None
    return float(text)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def term_eq(v: Any, lit: Any) -> bool:
    if isinstance(lit, bool):
        return v is lit if isinstance(v, bool) else v == ("true" if lit else "false")
    if isinstance(lit, str):
        if isinstance(v, str):
            return v == lit
        if isinstance(v, bool):
            return lit == ("true" if v else "false")
        n = as_number(lit)
        return is_num(v) and n is not None and v == n
    if isinstance(v, str):
        return v == str(lit)
    return is_num(v) and v == lit


def rng(v: Any, op: str, lit: Any) -> bool:
    import operator

    f = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
    if isinstance(lit, bool) or isinstance(v, bool) or lit is None:
        return False
    if isinstance(lit, str):
        if isinstance(v, str):
            return f(v, lit)
        n = as_number(lit)
        return is_num(v) and n is not None and f(v, n)
    if isinstance(v, str):
        return f(v, str(lit))
    return is_num(v) and f(v, lit)


def lucene_to_re(p: str) -> str:
    # generated patterns only use letters, digits, '.', '*', '+', '?', '|', '(', ')'
    return p


def ref(node: ast.Expr, doc: dict) -> bool:
    if isinstance(node, ast.And):
        return ref(node.left, doc) and ref(node.right, doc)
    if isinstance(node, ast.Or):
        return ref(node.left, doc) or ref(node.right, doc)
    if isinstance(node, ast.Not):
        return not ref(node.expr, doc)
    if isinstance(node, ast.Literal):
        return node.value is True
    if isinstance(node, ast.Field):
        return any(v is True or v == "true" for v in values(doc, node.name))
    if isinstance(node, ast.Comparison) and isinstance(node.left, ast.Field):
        vals = values(doc, node.left.name)
        lit = node.right.value
        if lit is None:
            return (not vals) if node.op == "==" else bool(vals) if node.op == "!=" else False
        if node.op == "==":
            return any(term_eq(v, lit) for v in vals)
        if node.op == "!=":
            return not any(term_eq(v, lit) for v in vals)
        return any(rng(v, node.op, lit) for v in vals)
    if isinstance(node, ast.Comparison):  # length(f) op int: a script
        f = node.left.args[0].name
        lit = node.right.value
        for v in values(doc, f) or [None]:
            if not isinstance(v, str):
                continue
            n = len(v)
            if {"==": n == lit, "!=": n != lit, "<": n < lit, "<=": n <= lit, ">": n > lit, ">=": n >= lit}[node.op]:
                return True
        return False
    if isinstance(node, ast.InSet):
        vals = values(doc, node.left.name)
        lits = [v.value for v in node.values]
        if node.case_insensitive:
            hit = any(
                (ascii_fold(v) == ascii_fold(x)) if isinstance(v, str) and isinstance(x, str) else term_eq(v, x)
                for v in vals for x in lits
            )
        else:
            hit = any(term_eq(v, x) for v in vals for x in lits)
        return not hit if node.negated else hit
    if isinstance(node, ast.StringMatch):
        vals = values(doc, node.left.name)
        pats = [v.value for v in node.values]
        if node.op != "regex" and node.op != "regex~" and any(set(p) == {"*"} for p in pats):
            return bool(vals)
        for v in vals:
            for p in pats:
                if node.op.startswith("regex"):
                    flags = re.I | re.A if node.op == "regex~" else 0
                    if isinstance(v, str) and re.fullmatch(lucene_to_re(p), v, flags | re.S):
                        return True
                elif isinstance(v, str):
                    if not ("*" in p or "?" in p):
                        if (ascii_fold(v) == ascii_fold(p)) if node.op != "like" else v == p:
                            return True
                    elif node.op == "like" and wildcard(v, p):
                        return True
                    elif node.op != "like" and wildcard(ascii_fold(v), ascii_fold(p)):
                        return True
                elif not ("*" in p or "?" in p) and term_eq(v, p):
                    return True
        return False
    if isinstance(node, ast.FunctionCall):
        vals = values(doc, node.args[0].name)
        x = node.args[1].value
        name = node.canonical
        for v in vals:
            if not isinstance(v, str):
                continue
            a, b = (ascii_fold(v), ascii_fold(x)) if node.case_insensitive else (v, x)
            if name == "startswith" and a.startswith(b):
                return True
            if name == "endswith" and a.endswith(b):
                return True
            if name == "stringcontains" and b in a:
                return True
        return False
    raise AssertionError(f"reference cannot evaluate {node}")


# ----------------------------------------------------------------------------- generators

FIELDS = ["a", "c.d", "arr"]
ALPHA = "aAbB1.x*? Ä"
strs = st.one_of(st.text(alphabet="aA", max_size=2), st.text(alphabet="aAbdsw1. Ä", max_size=3))
patterns = st.one_of(st.text(alphabet="aA*", max_size=3), st.text(alphabet="aAbdsw1*?Ä", max_size=5))
regexes = st.lists(st.sampled_from(["a", "b", "A", "1", ".", ".*", "(a|b)", "b+", "a?"]), max_size=4).map("".join)
scalars = st.one_of(strs, st.integers(-3, 3), st.sampled_from([0.5, 1.0, -2.0]), st.booleans())
literal_for_eq = st.one_of(strs, st.integers(-3, 3), st.booleans(), st.none(), st.just("1"), st.just("true"))

field_nodes = st.sampled_from(FIELDS).map(lambda n: ast.Field(n))


def atoms() -> st.SearchStrategy[ast.Expr]:
    lit = literal_for_eq.map(ast.Literal)
    return st.one_of(
        st.builds(ast.Comparison, st.sampled_from(["==", "!="]), field_nodes, lit),
        st.builds(ast.Comparison, st.sampled_from(["<", "<=", ">", ">="]), field_nodes,
                  st.one_of(strs, st.integers(-3, 3)).map(ast.Literal)),
        st.builds(
            ast.Comparison,
            st.sampled_from(["==", "!=", "<", ">"]),
            field_nodes.map(lambda f: ast.FunctionCall("length", (f,))),
            st.integers(0, 4).map(ast.Literal),
        ),
        st.builds(ast.InSet, field_nodes, st.lists(st.one_of(strs, st.just("1")).map(ast.Literal), min_size=1, max_size=3).map(tuple),
                  st.booleans(), st.booleans()),
        st.builds(ast.StringMatch, st.sampled_from([":", "like", "like~"]), field_nodes,
                  st.lists(patterns.map(ast.Literal), min_size=1, max_size=3).map(tuple), st.just(True)),
        st.builds(ast.StringMatch, st.sampled_from(["regex", "regex~"]), field_nodes,
                  st.lists(regexes.map(ast.Literal), min_size=1, max_size=2).map(tuple), st.just(True)),
        st.builds(
            ast.FunctionCall,
            st.sampled_from(["startsWith", "endsWith", "stringContains"]),
            st.tuples(field_nodes, strs.filter(lambda s: "*" not in s and "?" not in s).map(ast.Literal)),
            st.booleans(),
        ),
        field_nodes,
    )


conditions = st.recursive(
    atoms(),
    lambda c: st.one_of(st.builds(ast.And, c, c), st.builds(ast.Or, c, c), st.builds(ast.Not, c)),
    max_leaves=6,
)

values_st = st.one_of(strs, strs, scalars, st.none(), st.lists(st.one_of(strs, scalars, st.none()), max_size=3))


@st.composite
def documents(draw: Any) -> dict:
    doc: dict = {}
    for name in FIELDS:
        if draw(st.integers(0, 4)) == 0:
            continue
        v = draw(values_st)
        if "." in name:
            head, tail = name.split(".")
            style = draw(st.sampled_from(["nested", "dotted", "array"]))
            if style == "nested":
                doc[head] = {tail: v}
            elif style == "dotted":
                doc[name] = v
            else:
                doc[head] = [{tail: v}, {tail: draw(values_st)}]
        else:
            doc[name] = v
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(documents(), min_size=1, max_size=6))
def test_compiled_predicate_agrees_with_reference(cond: ast.Expr, docs: list[dict]) -> None:
    plan = compile_query(ast.EventQuery(ast.EventFilter(None, cond)))
    for doc in docs:
        assert plan.filter.predicate(doc) == ref(cond, doc), (to_text(cond), doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(documents(), min_size=1, max_size=4))
def test_pushdown_literals_never_drop_a_match(cond: ast.Expr, docs: list[dict]) -> None:
    """A document the predicate matches always contains one of the filter's literals."""
    import orjson

    from auditeql.eql.plan import line_may_match, literal_needles

    import json

    plan = compile_query(ast.EventQuery(ast.EventFilter("process", cond)))
    needles = literal_needles(plan.filter.literals)
    line_filter = plan.filter.line_filter
    for doc in docs:
        doc = {**doc, "event": {"category": "process"}}
        if plan.filter.predicate(doc):
            for line in (orjson.dumps(doc), json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode()):
                assert line_may_match(line, needles), (to_text(cond), doc, needles)
                assert line_filter is None or line_filter(line), (to_text(cond), doc)


def test_category_term_is_array_aware_and_case_sensitive() -> None:
    plan = compile_query("network where true")
    assert plan.filter.predicate({"event": {"category": ["process", "network"]}})
    assert plan.filter.predicate({"event.category": "network"})
    assert not plan.filter.predicate({"event": {"category": "Network"}})
    assert not plan.filter.predicate({})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(documents(), min_size=2, max_size=8))
def test_self_ordering_conjunctions_keep_their_answers(cond: ast.Expr, docs: list[dict]) -> None:
    """After the probe, conjunctions and line checks run in a learned order: same answers."""
    import orjson

    from auditeql.eql import compiler, prefilter

    saved = compiler.AND_PROBE, prefilter.PROBE
    compiler.AND_PROBE, prefilter.PROBE = 1, 1
    try:
        plan = compile_query(ast.EventQuery(ast.EventFilter("process", cond)))
        for doc in docs + docs:  # the second pass runs entirely in the learned order
            doc = {**doc, "event": {"category": "process"}}
            expected = ref(cond, doc)
            assert plan.filter.predicate(doc) == expected, (to_text(cond), doc)
            if expected and plan.filter.line_filter is not None:
                assert plan.filter.line_filter(orjson.dumps(doc))
    finally:
        compiler.AND_PROBE, prefilter.PROBE = saved
