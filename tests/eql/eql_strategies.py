"""Hypothesis strategies for EQL ASTs in the parser's normal form (see auditeql.eql.ast)."""

from __future__ import annotations

from hypothesis import strategies as st

from auditeql.eql import ast

SEGMENTS = ["a", "b", "proc", "x1", "_y", "@t", "any", "sequence", "where", "we ird", "back`tick", "Name"]
FUNC_NAMES = ["length", "startsWith", "CIDRMATCH", "concat", "between", "foo", "add"]
CATEGORIES = [None, "process", "network", "any", "file", "with space", 'quo"te', "Ünïcode"]

field_names = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(".".join)
fields = st.builds(ast.Field, field_names, st.booleans())

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
longs = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
literal_values = st.one_of(text, longs, floats, st.booleans(), st.none())
literals = st.builds(ast.Literal, literal_values)


def _not_numeric_literal(e: ast.Expr) -> bool:
    return not (isinstance(e, ast.Literal) and type(e.value) in (int, float))


def _match(values: tuple) -> st.SearchStrategy:
    return st.just(values)


def expressions(max_leaves: int = 12) -> st.SearchStrategy[ast.Expr]:
    leaves = st.one_of(literals, fields)

    def extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
        match_values = st.lists(literals, min_size=1, max_size=3).map(tuple)
        return st.one_of(
            st.builds(ast.Comparison, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), children, children),
            match_values.flatmap(
                lambda vals: st.builds(
                    ast.StringMatch,
                    st.sampled_from([":", "like", "like~", "regex", "regex~"]),
                    children,
                    st.just(vals),
                    st.just(True) if len(vals) > 1 else st.booleans(),
                )
            ),
            st.builds(ast.InSet, children, st.lists(children, min_size=1, max_size=3).map(tuple), st.booleans(), st.booleans()),
            st.builds(ast.And, children, children),
            st.builds(ast.Or, children, children),
            st.builds(ast.Not, children),
            st.builds(ast.Arithmetic, st.sampled_from(["+", "-", "*", "/", "%"]), children, children),
            st.builds(ast.Negate, children.filter(_not_numeric_literal)),
            st.builds(ast.FunctionCall, st.sampled_from(FUNC_NAMES), st.lists(children, max_size=3).map(tuple), st.booleans()),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


event_filters = st.builds(ast.EventFilter, st.sampled_from(CATEGORIES), expressions())
pipes = st.lists(st.builds(ast.Pipe, st.sampled_from(["head", "tail"]), st.integers(0, 2**31 - 1)), max_size=2).map(tuple)
subqueries = st.builds(
    ast.SubQuery,
    event_filters,
    st.lists(fields, max_size=2).map(tuple),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 200)),
)
timespans = st.builds(ast.TimeSpan, st.integers(0, 10**6), st.sampled_from(list(ast.TIME_UNITS)))

queries = st.one_of(
    st.builds(ast.EventQuery, event_filters, pipes),
    st.builds(ast.SampleQuery, st.lists(fields, max_size=2).map(tuple), st.lists(subqueries, min_size=1, max_size=3).map(tuple), pipes),
    st.builds(
        ast.SequenceQuery,
        st.lists(fields, max_size=2).map(tuple),
        st.lists(subqueries, min_size=1, max_size=3).map(tuple),
        st.one_of(st.none(), timespans),
        st.one_of(st.none(), subqueries),
        pipes,
    ),
)
