"""Printing then re-parsing any AST (in the parser's normal form) gives the same AST."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from auditeql.eql import ast, parse_query, to_text

from eql_strategies import queries


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries)
def test_print_then_parse_is_identity(query: ast.Query) -> None:
    text = to_text(query)
    assert parse_query(text) == query, text


def test_seed_rule_roundtrip() -> None:
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "fixtures" / "spec" / "seed-rule.md"
    text = spec.read_text().split("```")[1] if spec.exists() else SEED_QUERY
    q = parse_query(text)
    assert parse_query(to_text(q)) == q


SEED_QUERY = 'sample by host.id [process where process.name : ("bash", "python*")] [network where true]'


SAMPLE_DOCS = [
    {},
    {"a": "x", "b": 1, "proc": {"x1": ["a", None, 2.5]}, "event": {"category": ["process"]}},
    {"a": None, "b": [], "@t": True, "we ird": {"any": "1"}, "Name": -3},
    {"a.b": "dotted", "a": [{"b": "c"}, {"b": 7}], "sequence": {"where": "2"}},
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries)
def test_compile_never_crashes(query: ast.Query) -> None:
    """Any AST either compiles or raises EqlError; compiled predicates never raise."""
    from auditeql.eql import EqlError, compile_query

    try:
        plan = compile_query(query)
    except EqlError:
        return
    filters = [plan.filter] if hasattr(plan, "filter") else list(plan.filters)
    for f in filters:
        for doc in SAMPLE_DOCS:
            assert f.predicate(doc) in (True, False)
            if f.line_filter is not None:
                import orjson

                f.line_filter(orjson.dumps(doc))
