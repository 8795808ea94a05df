"""auditeql's own rules are meant to be deployable on Elasticsearch unchanged: check them with an
independent EQL implementation (the `eql` package, Elasticsearch syntax mode; tests only, AGPL)."""

import pytest

from auditeql.rules.loader import builtin_rules

eql = pytest.importorskip("eql")


@pytest.mark.parametrize("rule", [r for r in builtin_rules() if r.author == ("auditeql",)], ids=lambda r: r.name)
def test_rule_parses_as_elasticsearch_eql(rule) -> None:
    # the eql package spells the function cidrMatch; Elasticsearch accepts any case
    query = rule.query.replace("cidrmatch(", "cidrMatch(")
    with eql.parser.elasticsearch_syntax:
        eql.parse_query(query)
    assert rule.rule_id not in ("a5eb21b7-13cc-4b94-9fe2-29bb2914e037",)  # never Elastic's id
