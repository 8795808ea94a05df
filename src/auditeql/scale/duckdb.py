"""DuckDB back end: embedded hunting over Parquet or NDJSON at SQL speed.

``run(query_or_plan, paths_or_docs, options)`` returns exactly what
``auditeql.engine.run_batch`` returns for the same documents (tests/scale prove it). Parquet in
the pinned schema is read column-wise; NDJSON is read by DuckDB's own JSON reader (no Python per
line); raw audit logs (and in-memory documents) are normalized in Python and handed over as
Arrow batches in the pinned schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from auditeql.eql.plan import Plan, QueryOptions

from .backend import Backend, DocTransform, RunStats, plan_for
from .dialect import DUCKDB
from .inputs import classify, documents
from .parquet import arrow_schema, check_schema, record_batches

_SEQ_FILE_SHIFT = 1 << 40


class DuckDBBackend(Backend):
    """One DuckDB connection with the input registered as ``aeq_src``."""

    dialect = DUCKDB

    def __init__(self, connection: Any = None, *, threads: int | None = None) -> None:
        import duckdb

        self.con = connection if connection is not None else duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        self._keep: list[Any] = []

    # ---------------------------------------------------------------- primitives
    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def create_view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def materialize(self, name: str, sql: str) -> None:
        self.con.execute(f"DROP VIEW IF EXISTS {name}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def register_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> None:
        if len(rows) <= 2000:
            # a handful of rows: literal VALUES (no Arrow round trip)
            types = {"BIGINT": "BIGINT", "TEXT": "VARCHAR"}
            cols = ", ".join(f"CAST(NULL AS {types[t]}) AS {c}" for c, t in columns)
            parts = [f"SELECT {cols} WHERE false"]
            for r in rows:
                vals = ", ".join(
                    f"CAST({'NULL' if v is None else (self.dialect.quote(v) if isinstance(v, str) else int(v))} "
                    f"AS {types[t]}) AS {c}"
                    for v, (c, t) in zip(r, columns)
                )
                parts.append(f"SELECT {vals}")
            self.con.execute(f"DROP VIEW IF EXISTS {name}")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {' UNION ALL '.join(parts)}")
            return
        import pyarrow as pa

        types = {"BIGINT": pa.int64(), "TEXT": pa.string()}
        arrays = [pa.array([r[i] for r in rows], type=types[t]) for i, (_, t) in enumerate(columns)]
        table = pa.Table.from_arrays(arrays, names=[c for c, _ in columns])
        self._keep.append(table)
        self.con.register(name, table)

    # ---------------------------------------------------------------- sources
    def use_paths(self, paths: Sequence[str], *, flavor: str = "auditbeat", host_id: str | None = None,
                  host_name: str | None = None) -> None:
        """Register input files: Parquet, NDJSON, or anything else through the Python normalizer."""
        inputs = classify(paths)
        if inputs.kinds > 1 and inputs.parquet:
            raise ValueError("mixing Parquet with other inputs in one run is not supported; convert them first")
        if inputs.parquet:
            for p in inputs.parquet:
                check_schema(p)
            files = _sql_list(self, inputs.parquet)
            index = _file_index_case(self, inputs.parquet, "filename")
            self.create_view(
                "aeq_src",
                f"SELECT * EXCLUDE (_seq, filename), {index} * {_SEQ_FILE_SHIFT} + _seq AS _seq "
                f"FROM read_parquet({files}, filename = true)",
            )
            self.parquet = True
        elif inputs.ndjson and not inputs.other:
            files = _sql_list(self, inputs.ndjson)
            self.create_view(
                "aeq_raw",
                f"SELECT json, row_number() OVER () AS _n FROM read_ndjson_objects({files}, ignore_errors = true)",
            )
            self.create_view("aeq_src", "SELECT CAST(json AS VARCHAR) AS _doc, _n AS _seq FROM aeq_raw "
                                        "WHERE json_type(json) = 'OBJECT'")
            self.parquet = False
        else:
            self.use_documents(documents(list(inputs.ndjson) + list(inputs.other), flavor=flavor,
                                         host_id=host_id, host_name=host_name))

    def use_documents(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Register in-memory documents (converted to the pinned schema)."""
        import pyarrow as pa

        table = pa.Table.from_batches(list(record_batches(docs)), schema=arrow_schema())
        self._keep.append(table)
        self.con.register("aeq_docs", table)
        self.create_view("aeq_src", "SELECT * FROM aeq_docs")
        self.parquet = True


def _sql_list(b: DuckDBBackend, paths: Sequence[str]) -> str:
    return "[" + ", ".join(b.dialect.quote(p) for p in paths) + "]"


def _file_index_case(b: DuckDBBackend, paths: Sequence[str], column: str) -> str:
    if len(paths) == 1:
        return "0"
    import os

    arms = " ".join(
        f"WHEN {column} = {b.dialect.quote(p)} OR {column} = {b.dialect.quote(os.path.abspath(p))} THEN {i}"
        for i, p in enumerate(paths)
    )
    return f"(CASE {arms} END)"


def run(
    query: str | Plan,
    source: Sequence[str] | Iterable[Mapping[str, Any]],
    options: QueryOptions | None = None,
    *,
    stats: RunStats | None = None,
    threads: int | None = None,
    transform: DocTransform | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list:
    """Run an EQL query (text or compiled plan) with DuckDB over paths or documents.

    ``source`` is a list of paths (Parquet in the pinned schema, ECS NDJSON, raw audit logs) or an
    iterable of documents. Returns what :func:`auditeql.engine.run_batch` returns.
    """
    plan = plan_for(query, options)
    backend = DuckDBBackend(threads=threads)
    backend.transform = transform
    backend.defaults = dict(defaults or {})
    if _is_paths(source):
        backend.use_paths(list(source))  # type: ignore[arg-type]
    else:
        backend.use_documents(source)  # type: ignore[arg-type]
    return backend.run(plan, options, stats)


def _is_paths(source: Any) -> bool:
    return isinstance(source, (list, tuple)) and all(isinstance(p, str) for p in source) and bool(source)


def _register() -> None:
    try:
        from .engines import register
    except ImportError:  # pragma: no cover - the rules layer is absent
        return
    register()


_register()
