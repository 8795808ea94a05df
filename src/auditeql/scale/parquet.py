"""The pinned columnar schema shared by Parquet files, DuckDB and Spark.

Why a pinned schema: a data lake holds months of events written by many converter runs; if each
run inferred its own schema (as ``read_json_auto`` would), a field that is a number in one file
and a string in another would break queries months later. So every file ``auditeql convert``
writes has exactly these columns:

* ``_seq``  – int64, the event's position in the input (arrival order, the engine's tie-breaker);
* ``_ts_ns`` – int64 epoch nanoseconds of ``@timestamp`` as the engine parses it (null when
  absent or unparseable);
* ``_ingested_ns`` – the same for ``event.ingested`` (Kibana's timestamp override);
* ``_irregular`` – true when some pinned field's values do not fit the column (a number where
  a string is pinned, several values in a scalar column, …). The SQL back ends hand such rows to
  the Python engine's predicates instead of trusting the columns, so nothing is lost or misread;
* ``_doc``  – the full original document as JSON text, so alerts are rebuilt exactly;
* one column per pinned ECS field below, named by its dotted path: ``keyword`` → string,
  ``long`` → int64, ``keyword[]`` → list<string> (ECS arrays such as ``event.category``).

Join keys are stored as text in the sense that every keyword column keeps the exact string the
document had (no normalisation), and numeric keys are cast to text by the SQL back ends when
they group (see :mod:`auditeql.scale.sql`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from auditeql.fields import values

#: Schema version written into the Parquet key/value metadata; bump on any column change.
SCHEMA_VERSION = "auditeql-ecs-1"


@dataclass(frozen=True)
class PinnedField:
    """One ECS field with its column type: ``keyword``, ``long`` or ``keyword[]``."""

    path: str
    kind: str

    @property
    def is_list(self) -> bool:
        return self.kind.endswith("[]")

    @property
    def scalar_kind(self) -> str:
        return self.kind[:-2] if self.is_list else self.kind


def _fields(kind: str, paths: str) -> tuple[PinnedField, ...]:
    return tuple(PinnedField(p, kind) for p in paths.split())


#: The ECS fields that the built-in rules, their Elastic peers and typical hunting queries read
#: (audit-to-ecs.md, rule-and-peers.md). Anything else stays reachable through ``_doc``.
PINNED_FIELDS: tuple[PinnedField, ...] = (
    _fields(
        "keyword",
        """@timestamp event.ingested event.action event.kind event.module event.dataset event.outcome
        host.id host.name host.hostname host.os.type host.os.family host.os.name host.os.kernel
        agent.type data_stream.dataset
        process.name process.executable process.title process.working_directory process.entity_id
        process.command_line process.parent.name process.parent.executable process.parent.entity_id
        user.id user.name user.effective.id user.group.id auditd.message_type auditd.result auditd.session
        auditd.data.syscall auditd.data.a0 auditd.data.a1 auditd.data.a2 auditd.data.a3
        auditd.data.exit auditd.data.arch auditd.data.tty auditd.data.socket.family
        auditd.data.socket.addr auditd.data.socket.port
        auditd.summary.how auditd.summary.actor.primary auditd.summary.actor.secondary
        auditd.summary.object.primary auditd.summary.object.secondary auditd.summary.object.type
        network.direction network.transport network.protocol network.type
        destination.ip destination.address source.ip source.address file.path""",
    )
    + _fields("long", "process.pid process.parent.pid auditd.sequence")
    + _fields("keyword[]", "event.category event.type process.args tags related.ip related.user")
)

PINNED: dict[str, PinnedField] = {f.path: f for f in PINNED_FIELDS}

#: Columns that are not ECS fields.
META_COLUMNS = ("_seq", "_ts_ns", "_ingested_ns", "_irregular", "_doc")

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def arrow_schema() -> Any:
    """The pinned schema as a ``pyarrow.Schema`` (imported lazily: pyarrow is an extra)."""
    import pyarrow as pa

    kinds = {"keyword": pa.string(), "long": pa.int64(), "keyword[]": pa.list_(pa.string())}
    cols = [
        pa.field("_seq", pa.int64(), nullable=False),
        pa.field("_ts_ns", pa.int64()),
        pa.field("_ingested_ns", pa.int64()),
        pa.field("_irregular", pa.bool_(), nullable=False),
        pa.field("_doc", pa.string(), nullable=False),
    ]
    cols += [pa.field(f.path, kinds[f.kind]) for f in PINNED_FIELDS]
    return pa.schema(cols, metadata={b"auditeql.schema": SCHEMA_VERSION.encode()})


def _timestamp_ns(doc: Mapping[str, Any], field: str) -> int | None:
    from auditeql.engine.ordering import doc_timestamp_ns

    try:
        ts = doc_timestamp_ns(doc, field)
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is None or not _LONG_MIN <= ts <= _LONG_MAX:
        return None
    return ts


def _fits(kind: str, value: Any) -> bool:
    if kind == "keyword":
        return isinstance(value, str)
    # bool is an int subclass in Python but a different JSON type
    return isinstance(value, int) and not isinstance(value, bool) and _LONG_MIN <= value <= _LONG_MAX


def to_row(doc: Mapping[str, Any], seq: int, text: str | None = None) -> dict[str, Any]:
    """One document -> one row of the pinned schema (``text``: the original JSON, if at hand)."""
    irregular = False
    row: dict[str, Any] = {}
    for f in PINNED_FIELDS:
        vals = values(doc, f.path)
        kind = f.scalar_kind
        if not all(_fits(kind, v) for v in vals):
            irregular = True
            row[f.path] = None
            continue
        if f.is_list:
            row[f.path] = vals if vals else None
        elif len(vals) > 1:
            irregular = True
            row[f.path] = None
        else:
            row[f.path] = vals[0] if vals else None
    row["_seq"] = seq
    row["_ts_ns"] = _timestamp_ns(doc, "@timestamp")
    row["_ingested_ns"] = _timestamp_ns(doc, "event.ingested")
    row["_irregular"] = irregular
    row["_doc"] = text if text is not None else orjson.dumps(doc).decode()
    return row


def record_batches(docs: Iterable[Mapping[str, Any]], batch_rows: int = 65536, start_seq: int = 0) -> Iterator[Any]:
    """Documents -> ``pyarrow.RecordBatch`` objects of the pinned schema, ``batch_rows`` at a time."""
    import pyarrow as pa

    schema = arrow_schema()
    names = schema.names
    buf: list[dict[str, Any]] = []
    seq = start_seq
    for doc in docs:
        buf.append(to_row(doc, seq))
        seq += 1
        if len(buf) >= batch_rows:
            yield pa.RecordBatch.from_pylist(buf, schema=schema)
            buf = []
    if buf or seq == start_seq:
        yield pa.RecordBatch.from_pylist(buf, schema=schema).select(names)


def write_parquet(docs: Iterable[Mapping[str, Any]], out_path: str, *, batch_rows: int = 65536) -> int:
    """Write documents to ``out_path`` in the pinned schema; returns the number of rows written."""
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(out_path, arrow_schema(), compression="zstd") as writer:
        for batch in record_batches(docs, batch_rows):
            writer.write_batch(batch)
            n += batch.num_rows
    return n


def check_schema(path: str) -> None:
    """Raise ``ValueError`` with advice when a Parquet file is not in the pinned schema."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    version = meta.get(b"auditeql.schema", b"").decode()
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: not an auditeql Parquet file (schema {version or 'unknown'!r}, expected "
            f"{SCHEMA_VERSION!r}); convert it with `auditeql convert --to parquet`"
        )


def convert_ndjson_with_duckdb(paths: list[str], out_path: str, *, threads: int | None = None) -> int:
    """ECS NDJSON -> pinned-schema Parquet inside DuckDB (no Python per document).

    The columns come from the same JSON extraction the DuckDB back end uses; every document whose
    shape that extraction cannot read exactly (dotted keys, arrays of objects on a pinned path, a
    value of another type, a timestamp in a rarer format) is written with ``_irregular = true`` —
    the back ends then evaluate it with the Python engine — so the file answers queries exactly as
    one written by :func:`write_parquet`. Lines that are not JSON objects are skipped, as the
    NDJSON reader does. Returns the number of rows written.
    """
    import duckdb

    from .dialect import DUCKDB as d
    from .sql import _json_field, _json_path, _json_timestamp, dotted_key_check

    paths_sql = "[" + ", ".join(d.quote(p) for p in paths) + "]"
    extract = [f.path for f in PINNED_FIELDS]
    slot = {p: i for i, p in enumerate(extract)}
    prefixes = sorted({".".join(p.split(".")[:i]) for p in extract for i in range(1, len(p.split(".")))})
    arr = "[" + ", ".join(d.quote(_json_path(d, p.split("."))) for p in extract) + "]"
    parr = "[" + ", ".join(d.quote(_json_path(d, p.split("."))) for p in prefixes) + "]"
    cols = []
    bad = [f"coalesce(list_contains(json_type(_doc, {parr}), 'ARRAY'), false)"]
    bad.append(dotted_key_check(d, extract))
    for f in PINNED_FIELDS:
        value, irr = _json_field(d, f, f"_j[{slot[f.path] + 1}]")
        if f.is_list:
            value = f"CASE WHEN len({value}) > 0 THEN {value} END"
        cols.append(f"{value} AS {d.ident(f.path)}")
        bad.append(f"coalesce({irr}, false)")
    ts, ts_bad = _json_timestamp(d, f"_j[{slot['@timestamp'] + 1}]")
    ing, ing_bad = _json_timestamp(d, f"_j[{slot['event.ingested'] + 1}]")
    bad += [f"coalesce({ts_bad}, false)", f"coalesce({ing_bad}, false)"]
    select = (
        f"SELECT CAST(_seq AS BIGINT) AS _seq, {ts} AS _ts_ns, {ing} AS _ingested_ns, "
        f"({' OR '.join(bad)}) AS _irregular, _doc, {', '.join(cols)} "
        f"FROM (SELECT _seq, _doc, json_extract(_doc, {arr}) AS _j FROM ("
        f"SELECT CAST(json AS VARCHAR) AS _doc, row_number() OVER () - 1 AS _seq, json_type(json) AS _t "
        f"FROM read_ndjson_objects({paths_sql}, ignore_errors = true)) _a WHERE _t = 'OBJECT')"
    )
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    import pyarrow.parquet as pq

    schema = arrow_schema()
    n = 0
    reader = con.sql(f"{select} ORDER BY _seq").to_arrow_reader(65536)
    with pq.ParquetWriter(out_path, schema, compression="zstd") as writer:
        for batch in reader:
            # same column types, names and nullability as write_parquet, whatever DuckDB inferred
            writer.write_batch(batch.select(schema.names).cast(schema))
            n += batch.num_rows
    return n
