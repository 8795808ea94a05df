"""Spark (local mode) results equal the Python engine's: generated cases and the recording.

One SparkSession serves every test (conftest ``spark``). Each generated case is a handful of Spark
jobs (about a second each once the JVM is warm), so CI runs a modest number of examples; set
``AUDITEQL_SPARK_EXAMPLES`` for a longer hunt (e.g. 300 before changing the SQL compiler).
Generated documents reach Spark both ways a user gives them: in memory (written to the pinned
Parquet schema) and as NDJSON files (parsed by Spark itself).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.engine import run_batch
from auditeql.eql import EqlError, compile_query
from auditeql.eql.plan import QueryOptions
from auditeql.scale import spark as ssp
from auditeql.scale.backend import RunStats
from auditeql.scale.parquet import write_parquet

from scale_helpers import seed_query, write_ndjson
from scale_strategies import documents, event_queries, sample_queries, sequence_queries

pytestmark = pytest.mark.spark

EXAMPLES = int(os.environ.get("AUDITEQL_SPARK_EXAMPLES", "12"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
OPTIONS = st.builds(QueryOptions, size=st.sampled_from([1, 3, 10]), max_samples_per_key=st.sampled_from([1, 2]))
VIA = st.sampled_from(["docs", "ndjson"])


def _check(spark: Any, text: str, docs: list[dict[str, Any]], options: QueryOptions, via: str) -> None:
    try:
        plan = compile_query(text)
    except EqlError:
        return
    expected = run_batch(plan, docs, options)
    with tempfile.TemporaryDirectory() as tmp:
        source: Any = [str(write_ndjson(Path(tmp) / "docs.ndjson", docs))] if via == "ndjson" else docs
        got = ssp.run(plan, source, options, spark=spark)
    assert got == expected, f"query: {text}\nvia {via}"


@SETTINGS
@given(st.lists(documents(), max_size=20), st.one_of(event_queries(), sample_queries()), OPTIONS, VIA)
def test_generated_event_and_sample_queries(spark: Any, docs: list[dict[str, Any]], text: str,
                                            options: QueryOptions, via: str) -> None:
    _check(spark, text, docs, options, via)


@settings(SETTINGS, max_examples=max(1, EXAMPLES * 2 // 3))
@given(st.lists(documents(), max_size=20), sequence_queries(), OPTIONS, VIA)
def test_generated_sequences(spark: Any, docs: list[dict[str, Any]], text: str, options: QueryOptions,
                             via: str) -> None:
    _check(spark, text, docs, options, via)


def test_seed_rule_on_recording_ndjson_and_parquet(spark: Any, oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    plan = compile_query(seed_query())
    options = QueryOptions(size=100)
    # the documents any filter matches plus every 20th other one (parsing the recording's large
    # documents is the slow part in local mode); the expectation is computed on the same documents
    preds = [f.predicate for f in plan.filters]
    part = [d for i, d in enumerate(oracle_docs) if i % 20 == 0 or any(p(d) for p in preds)]
    expected = run_batch(plan, part, options)
    assert len(expected) == 9
    pq = tmp_path / "o.parquet"
    write_parquet(part, str(pq))
    for source in ([str(write_ndjson(tmp_path / "o.ndjson", part))], [str(pq)]):
        stats = RunStats()
        assert ssp.run(plan, source, options, spark=spark, stats=stats) == expected
        assert stats.undecided_rows < 10 and not stats.python_finished


def test_sequence_rule_per_key_partitions(spark: Any, oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """A sequence over the recording runs per join-key partition and equals the engine's result."""
    q = ('sequence by host.id, process.pid with maxspan=5s [process where event.action == "executed"] '
         '[network where event.action == "connected-to"] | tail 7')
    plan = compile_query(q)
    expected = run_batch(plan, oracle_docs, QueryOptions(size=20))
    assert expected
    pq = tmp_path / "s.parquet"
    write_parquet(oracle_docs, str(pq))
    assert ssp.run(plan, [str(pq)], QueryOptions(size=20), spark=spark) == expected


def test_sequence_where_no_candidate_has_the_join_key(spark: Any) -> None:
    """Found by the generated cases: every candidate row lacks ``host.id``, so the per-key step gets
    an empty batch, which Spark could not convert to Arrow (the run failed instead of returning [])."""
    docs = [{"process": [{"pid": 1, "name": "bash"}]}, {"process": {"pid": 2, "name": "bash"}}]
    text = 'sequence by host.id [process where process.name == "bash"] [any where process.name == "bash"]'
    for via in ("docs", "ndjson"):
        _check(spark, text, docs, QueryOptions(size=1), via)


def test_scan_engine_spark_gives_the_python_alerts(spark: Any, tmp_path: Path) -> None:
    """`auditeql scan --engine spark` over the raw recording: byte-identical alerts to the default
    engine (each scheduled Kibana run is evaluated by Spark; the shared session is reused)."""
    from click.testing import CliRunner

    from auditeql.cli import main
    from scale_helpers import CORPUS

    log = CORPUS / "audit.log.gz"
    if not log.exists():
        pytest.skip(f"the recording is not at {CORPUS}")
    outs = {}
    for engine in ("python", "spark"):
        out = tmp_path / f"{engine}.ndjson"
        res = CliRunner().invoke(main, ["scan", "--engine", engine, "--no-store", "--format", "ndjson", "-q",
                                        "--host-id", "h1", "--host-name", "rec", "-o", str(out), str(log)])
        assert res.exit_code == 1, res.output  # 1: alerts found
        outs[engine] = out.read_bytes()
    assert outs["python"].count(b"\n") >= 9
    assert outs["spark"] == outs["python"]


def test_ndjson_input_order_survives_small_splits(spark: Any, tmp_path: Path) -> None:
    """Input order (the last tie-breaker) is file, split start, row; splits smaller than the 1 MiB
    the order key counts in would have put rows of neighbouring splits in one bucket."""
    docs = [{"@timestamp": "2026-11-30T00:00:00Z", "event": {"category": "process"}, "host": {"id": "h"},
             "process": {"pid": i, "name": "bash", "args": ["x" * 200]}} for i in range(12_000)]
    path = write_ndjson(tmp_path / "same-time.ndjson", docs)  # ~3 MB, every document at the same time
    assert path.stat().st_size > 2_500_000
    plan = compile_query('process where process.name == "bash" | tail 40')
    options = QueryOptions(size=10_000)
    expected = [d["process"]["pid"] for d in run_batch(plan, docs, options)]
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    saved = {k: spark.conf.get(k) for k in keys}
    try:
        spark.conf.set("spark.sql.files.maxPartitionBytes", "65536")
        spark.conf.set("spark.sql.files.openCostInBytes", "0")
        got = [d["process"]["pid"] for d in ssp.run(plan, [str(path)], options, spark=spark)]
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)
    assert got == expected == list(range(11_960, 12_000))


def test_lines_spark_and_python_parse_differently(spark: Any, tmp_path: Path) -> None:
    """Spark's JSON parser refuses duplicate keys (the Python reader keeps the last value) and reads
    only the first object of a line (the Python reader refuses the line). Such lines are decided
    by Python: a duplicate-key document is not lost, a damaged line is not half-read."""
    from auditeql.sources.ndjson import read_ndjson

    def doc(pid: int, name: str = "bash", extra: str = "") -> str:
        return ('{"@timestamp":"2026-11-30T00:00:%02dZ","event":{"category":"process"},"host":{"id":"h"},'
                '"process":{"pid":%d,"name":"%s"%s}}' % (pid, pid, name, extra))

    lines = [
        doc(1),
        doc(2, "nc", ',"name":"bash"'),                     # duplicate key: Python reads "bash"
        doc(3) + doc(4),                                      # two objects glued: Python refuses
        doc(5) + " x",                                        # trailing text: Python refuses
        doc(6, extra=',"n":1e400'),                           # beyond a double: Python refuses
        doc(7) + "\x00",                                      # a NUL after the object
        doc(8, extra=',"command_line":"echo ${HOME}x } y"'),  # braces inside a string: a document
        '{"process":',                                        # truncated
        doc(9, extra=',"args":["a","a"],"args":["b"]'),       # duplicate key on another field
        doc(10, "nc"),
    ]
    path = tmp_path / "lax.ndjson"
    path.write_text("\n".join(lines) + "\n")
    docs = list(read_ndjson([str(path)], report=lambda _m: None))
    assert sorted(d["process"]["pid"] for d in docs) == [1, 2, 8, 9, 10]
    for text in ('process where process.name == "bash"', "process where true",
                 'sample by host.id [process where process.name == "bash"] [process where process.name == "nc"]',
                 'sequence by host.id [process where process.name == "bash"] [process where process.name == "nc"]'):
        plan = compile_query(text)
        assert ssp.run(plan, [str(path)], QueryOptions(size=20), spark=spark) == run_batch(plan, docs, QueryOptions(size=20)), text
