"""``auditeql convert --to parquet``: the pinned schema, the original documents kept exactly."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from auditeql.cli import main
from auditeql.scale.parquet import PINNED_FIELDS, SCHEMA_VERSION, arrow_schema, to_row

from scale_helpers import CORPUS, write_ndjson

pq = pytest.importorskip("pyarrow.parquet")


def test_convert_ndjson_keeps_documents_and_pins_schema(oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "in.ndjson", oracle_docs[:500])
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(main, ["convert", "--to", "parquet", "-o", str(out), str(src)])
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.schema.equals(arrow_schema(), check_metadata=False)
    assert table.schema.metadata[b"auditeql.schema"] == SCHEMA_VERSION.encode()
    assert [orjson.loads(t) for t in table.column("_doc").to_pylist()] == oracle_docs[:500]
    assert table.column("_seq").to_pylist() == list(range(500))
    pids = table.column("process.pid").to_pylist()
    assert pids[0] == oracle_docs[0]["process"]["pid"]
    assert table.column("event.category").to_pylist()[0] == oracle_docs[0]["event"]["category"]
    assert all(t is not None for t in table.column("_ts_ns").to_pylist())


def test_duckdb_and_python_writers_agree(oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """`--via duckdb` and `--via python` write the same rows (irregular ones may only be flagged more)."""
    docs = oracle_docs[:300] + [{"process.name": "dotted", "@timestamp": "2026-11-29 14:07:54"},
                                {"process": {"pid": "7"}, "event": {"category": ["process", 3]}}]
    src = write_ndjson(tmp_path / "in.ndjson", docs)
    tables = {}
    for via in ("duckdb", "python"):
        out = tmp_path / f"{via}.parquet"
        res = CliRunner().invoke(main, ["convert", "--via", via, "-o", str(out), str(src)])
        assert res.exit_code == 0, res.output
        tables[via] = pq.read_table(out)
    a, b = tables["duckdb"], tables["python"]
    assert a.num_rows == b.num_rows == len(docs)
    irr_a, irr_b = a.column("_irregular").to_pylist(), b.column("_irregular").to_pylist()
    assert irr_a[-2:] == [True, True] and irr_b[-1] is True
    for name in b.column_names:
        if name == "_irregular":
            continue
        col_a, col_b = a.column(name).to_pylist(), b.column(name).to_pylist()
        if name == "_doc":
            col_a, col_b = [orjson.loads(x) for x in col_a], [orjson.loads(x) for x in col_b]
        for i, (x, y) in enumerate(zip(col_a, col_b)):
            assert x == y or irr_a[i], (name, i, x, y)


def test_convert_raw_audit_log(tmp_path: Path) -> None:
    """Raw audit logs go through the normalizer; host.id comes from --host-id."""
    log = CORPUS / "audit.log.gz"
    if not log.exists():
        pytest.skip(f"the recording is not at {CORPUS}")
    out = tmp_path / "raw.parquet"
    res = CliRunner().invoke(main, ["convert", "-o", str(out), "--host-id", "hx", str(log)])
    assert res.exit_code == 0, res.output
    table = pq.read_table(out, columns=["host.id", "_doc", "event.category"])
    assert table.num_rows > 1000
    assert set(table.column("host.id").to_pylist()) == {"hx"}
    assert any(c and "network" in c for c in table.column("event.category").to_pylist())


def test_irregular_values_are_flagged_not_lost() -> None:
    doc = {"process": {"pid": "12", "name": ["a", "b"]}, "event": {"category": "process"}, "@timestamp": 5}
    row = to_row(doc, 3)
    assert row["_irregular"] is True  # a string pid, two names in a scalar column
    assert row["process.pid"] is None and row["process.name"] is None
    assert row["event.category"] == ["process"]
    assert row["_ts_ns"] == 5_000_000
    assert orjson.loads(row["_doc"]) == doc
    assert {f.path for f in PINNED_FIELDS} >= {"host.id", "process.pid", "process.parent.pid", "destination.ip"}


def test_convert_errors_are_messages(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["convert", "-o", str(tmp_path / "x.parquet"), str(tmp_path / "missing.ndjson")])
    assert res.exit_code != 0
    assert "missing.ndjson" in res.output and "Traceback" not in res.output
    src = write_ndjson(tmp_path / "same.ndjson", [{"a": 1}])
    res = CliRunner().invoke(main, ["convert", "-o", str(src), str(src)])
    assert res.exit_code != 0 and "overwrite" in res.output


def test_scan_reads_parquet_and_duckdb_engine_gives_same_alerts(tmp_path: Path) -> None:
    """`scan --engine duckdb` over the converted recording: the same alerts as the Python engine."""
    log = CORPUS / "audit.log.gz"
    if not log.exists():
        pytest.skip(f"the recording is not at {CORPUS}")
    pqf = tmp_path / "rec.parquet"
    assert CliRunner().invoke(main, ["convert", "-o", str(pqf), "--flavor", "auditd-manager", "--host-id", "h1",
                                     "--host-name", "rec", str(log)]).exit_code == 0
    outs = {}
    for engine, path in (("python", log), ("python", pqf), ("duckdb", pqf)):
        out = tmp_path / f"{engine}-{path.suffix}.ndjson"
        res = CliRunner().invoke(main, ["scan", "--engine", engine, "--no-store", "--format", "ndjson", "-q",
                                        "--flavor", "auditd-manager", "--host-id", "h1", "--host-name", "rec",
                                        "-o", str(out), str(path)])
        assert res.exit_code in (0, 1), res.output
        outs[(engine, path.suffix)] = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    reference = outs[("python", ".gz")]
    assert reference, "the seed rule alerts on the recording"
    ids = sorted(a["kibana.alert.uuid"] for a in reference)
    for key, alerts in outs.items():
        assert sorted(a["kibana.alert.uuid"] for a in alerts) == ids, key
    assert outs[("duckdb", ".parquet")] == outs[("python", ".parquet")]
