"""The EQL -> SQL compiler: exactness bookkeeping, dialect spelling, the seed rule's SQL."""

from __future__ import annotations

import pytest

from auditeql.eql import compile_query
from auditeql.eql.plan import QueryOptions
from auditeql.scale.dialect import DUCKDB, SPARK, get_dialect
from auditeql.scale.sql import compile_sql, relation_sql, sample_sql

from scale_helpers import seed_query


def test_seed_rule_is_sql_exact_except_ipv6_cidr() -> None:
    for dialect in ("duckdb", "spark"):
        sp = compile_sql(compile_query(seed_query()), dialect)
        exact = [f.bounds.exact for f in sp.filters]
        # filters 1 and 2 entirely SQL; the third leaves IPv6 destinations to Python
        assert exact == [True, True, False]
        f3 = sp.filters[2].bounds
        assert "instr(" in f3.lo and "instr(" not in f3.hi  # `not cidrmatch` swaps the bounds
        assert sp.nkeys == 3


@pytest.mark.parametrize(
    "cond,exact",
    [
        ('process.name : "bash"', True),
        ('process.name like~ "BA*"', True),
        ('process.name in~ ("Bash", "SH")', True),
        ("process.pid > 2.5", True),
        ('process.pid == "x"', True),
        ("process.name != null", True),
        ('startsWith~(process.name, "b")', True),
        ('process.name regex "b.*"', False),
        ("length(process.name) > 2", False),
        ('cidrmatch(destination.ip, "10.0.0.0/8")', False),
        ("not (process.pid + 1 == 3)", False),
    ],
)
def test_exactness_of_atoms(cond: str, exact: bool) -> None:
    sp = compile_sql(compile_query(f"process where {cond}"), "duckdb")
    assert sp.filters[0].bounds.exact is exact


def test_quoting_per_dialect() -> None:
    assert DUCKDB.quote("it's a\\b") == "'it''s a\\b'"
    assert SPARK.quote("it's a\\b") == "'it\\'s a\\\\b'"
    assert DUCKDB.ident("process.name") == '"process.name"'
    assert SPARK.ident("process.name") == "`process.name`"
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        get_dialect("oracle")


def test_relation_reads_pinned_columns_from_parquet_and_json_otherwise() -> None:
    sp = compile_sql(compile_query('process where custom.tag == "a" and process.name == "x"'), "duckdb")
    prep, rel = relation_sql(sp, "aeq_src", parquet=True)
    assert prep is not None and '$."custom"."tag"' in prep and '$."process"' not in prep
    prep_nd, _ = relation_sql(sp, "aeq_src", parquet=False)
    assert '$."process"."name"' in prep_nd
    # only pinned fields and @timestamp: no JSON parsing of Parquet rows at all
    sp2 = compile_sql(compile_query('process where process.name == "x"'), "spark")
    prep2, rel2 = relation_sql(sp2, "aeq_src", parquet=True)
    assert prep2 is None and "_ts_ns AS _ts" in rel2


def test_sample_sql_has_cap_and_size() -> None:
    plan = compile_query("sample by host.id [process where true] [network where true]")
    sp = compile_sql(plan, "duckdb")
    sql = sample_sql(sp, "m", QueryOptions(size=7, max_samples_per_key=3))
    assert "r <= 4" in sql and "LIMIT 7" in sql and "j <= 3" in sql
