"""DuckDB results equal the Python engine's: generated documents and queries, and the recording."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.engine import run_batch
from auditeql.eql import EqlError, compile_query
from auditeql.eql.plan import QueryOptions
from auditeql.scale import duckdb as sdb
from auditeql.scale.backend import RunStats
from auditeql.scale.parquet import write_parquet

from scale_helpers import seed_query, write_ndjson
from scale_strategies import documents, event_queries, sample_queries, sequence_queries

pytest.importorskip("duckdb")

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = st.builds(
    QueryOptions,
    size=st.sampled_from([1, 3, 10]),
    max_samples_per_key=st.sampled_from([1, 2]),
)


def _plan(text: str) -> Any:
    try:
        return compile_query(text)
    except EqlError:
        return None


def _check(text: str, docs: list[dict[str, Any]], options: QueryOptions, via: str) -> None:
    plan = _plan(text)
    if plan is None:
        return
    expected = run_batch(plan, docs, options)
    with tempfile.TemporaryDirectory() as tmp:
        if via == "ndjson":
            source: Any = [str(write_ndjson(Path(tmp) / "docs.ndjson", docs))]
        elif via == "parquet":
            out = Path(tmp) / "docs.parquet"
            write_parquet(docs, str(out))
            source = [str(out)]
        else:
            source = docs
        got = sdb.run(plan, source, options)
    assert got == expected, f"query: {text}\nvia {via}"


VIA = st.sampled_from(["docs", "ndjson", "parquet"])


@SETTINGS
@given(st.lists(documents(), max_size=25), event_queries(), OPTIONS, VIA)
def test_event_queries_equal_python(docs: list[dict[str, Any]], text: str, options: QueryOptions, via: str) -> None:
    _check(text, docs, options, via)


@SETTINGS
@given(st.lists(documents(), max_size=25), sample_queries(), OPTIONS, VIA)
def test_samples_equal_python(docs: list[dict[str, Any]], text: str, options: QueryOptions, via: str) -> None:
    _check(text, docs, options, via)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents(), max_size=25), sequence_queries(), OPTIONS, VIA)
def test_sequences_equal_python(docs: list[dict[str, Any]], text: str, options: QueryOptions, via: str) -> None:
    _check(text, docs, options, via)


def test_spec_vector_s10_key_order_and_optional_keys() -> None:
    """eql-semantics.md S10/S11: ascending key order, null first, byte order ("GTA" < "doom")."""
    docs = [
        {"event": {"category": "success"}, "host": "doom", "os": "win10", "@timestamp": 1},
        {"event": {"category": "alert"}, "host": "doom", "os": "win10", "@timestamp": 2},
        {"event": {"category": "success"}, "host": "doom", "@timestamp": 3},
        {"event": {"category": "alert"}, "host": "doom", "@timestamp": 4},
        {"event": {"category": "success"}, "host": "GTA", "@timestamp": 5},
        {"event": {"category": "alert"}, "host": "GTA", "@timestamp": 6},
    ]
    q = "sample by host, ?os [success where true] [alert where true]"
    got = sdb.run(q, docs)
    assert [m.join_keys for m in got] == [("GTA", None), ("doom", None), ("doom", "win10")]
    assert got == run_batch(compile_query(q), docs, QueryOptions())
    assert len(sdb.run(q, docs, QueryOptions(size=2))) == 2


def test_sample_distinct_documents_and_numeric_key_order() -> None:
    """S02/S03 (one document never fills two slots) and numbers ordered as numbers, not text."""
    docs = [{"host": h, "x": 1, "y": 1, "@timestamp": i} for i, h in enumerate([10, 9, 100, 9])]
    docs.append({"host": 10, "y": 1, "@timestamp": 9})
    q = "sample by host [any where x == 1] [any where y == 1]"
    got = sdb.run(q, docs)
    assert [m.join_keys for m in got] == [(9,), (10,)]
    assert got == run_batch(compile_query(q), docs, QueryOptions())


def test_seed_rule_on_recording_all_sources(oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """The seed rule over the recording: docs, NDJSON and Parquet give the Python engine's samples."""
    plan = compile_query(seed_query())
    options = QueryOptions(size=100)
    expected = run_batch(plan, oracle_docs, options)
    assert len(expected) == 9  # the recording's README: nine scenarios alert
    nd = write_ndjson(tmp_path / "oracle.ndjson", oracle_docs)
    pq = tmp_path / "oracle.parquet"
    write_parquet(oracle_docs, str(pq))
    for source in (oracle_docs, [str(nd)], [str(pq)]):
        stats = RunStats()
        assert sdb.run(plan, source, options, stats=stats) == expected
        # only the events with an IPv6 destination are left to Python; everything else is SQL
        assert stats.undecided_rows < 10
        assert not stats.python_finished


def test_seed_rule_on_normalized_recording(normalized_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """auditeql's own normalization of audit.log.gz, through Parquet: same samples as Python."""
    plan = compile_query(seed_query())
    options = QueryOptions(size=100)
    expected = run_batch(plan, normalized_docs, options)
    assert expected, "the seed rule should alert on the recording"
    pq = tmp_path / "n.parquet"
    write_parquet(normalized_docs, str(pq))
    assert sdb.run(plan, [str(pq)], options) == expected
    assert sdb.run(plan, [str(write_ndjson(tmp_path / "n.ndjson", normalized_docs))], options) == expected


def test_multiple_files_keep_input_order(oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """Several files are one input in the order given (ties in time are broken by input order)."""
    q = "process where event.action == \"executed\" | tail 20"
    half = len(oracle_docs) // 2
    a, b = oracle_docs[:half], oracle_docs[half:]
    expected = run_batch(compile_query(q), oracle_docs, QueryOptions(size=50))
    nds = [str(write_ndjson(tmp_path / f"{i}.ndjson", part)) for i, part in enumerate((a, b))]
    assert sdb.run(q, nds, QueryOptions(size=50)) == expected
    pqs = []
    for i, part in enumerate((a, b)):
        write_parquet(part, str(tmp_path / f"{i}.parquet"))
        pqs.append(str(tmp_path / f"{i}.parquet"))
    assert sdb.run(q, pqs, QueryOptions(size=50)) == expected


def test_bad_ndjson_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_text('{"event":{"category":"process"},"@timestamp":1,"n":1}\n\n{broken\n[1,2]\n'
                    '{"event":{"category":"process"},"@timestamp":2,"n":2}\n')
    got = sdb.run("process where true", [str(path)])
    assert [d["n"] for d in got] == [1, 2]
