"""DuckDB back end: embedded hunting over Parquet or NDJSON at SQL speed.

``run(query_or_plan, paths_or_docs, options)`` returns exactly what
``auditeql.engine.run_batch`` returns for the same documents (tests/scale prove it). Parquet in
the pinned schema is read column-wise; NDJSON is read by DuckDB's own JSON reader (no Python per
line), and lines no filter can match are dropped by a raw-text test before their JSON is parsed
(``_use_ndjson``); raw audit logs (and in-memory documents) are normalized in Python and handed over as
Arrow batches in the pinned schema.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from auditeql.eql.plan import Plan, QueryOptions

from .backend import Backend, DocTransform, RunStats, plan_for
from .dialect import DUCKDB
from .inputs import classify, documents, expand_paths, line_condition
from .parquet import arrow_schema, check_schema, record_batches

_SEQ_FILE_SHIFT = 1 << 40

#: SQL true for a valid-to-DuckDB line that orjson may refuse (see
#: ``DuckDBBackend.candidates_ready``): NaN or Infinity (any case) where a value starts, a
#: trailing comma, a number token with 20+ integer digits or a 3+ digit exponent (it may overflow
#: a double), or enough brackets to nest past orjson's 1024 levels. (Form feed and vertical tab
#: around a line, which DuckDB strips unseen, are caught per file by ``_edge_whitespace_file``.)
#: A superset is harmless (those lines are only parsed once more); a miss is not.
_WS = "[ \\t\\r\\n\\x0b\\x0c]*"
_LENIENT_SUSPECT = (
    f"(regexp_matches(_doc, '[:,\\[]{_WS}(?:[-+]?[nNiI][aAnN][nNfF]|-?[0-9]{{20}}|-?[0-9]+(?:\\.[0-9]*)?[eE][-+]?[0-9]{{3}})"
    f"|,{_WS}[\\]}}]')"
    " OR (strlen(_doc) > 2000 AND strlen(_doc) - strlen(replace(replace(_doc, '[', ''), '{', '')) > 1000))"
)


class ReadInPython(Exception):
    """DuckDB's NDJSON reader would not read this input as the Python reader does: ``run`` reads
    it through the Python reader instead (the message says why; it goes to ``RunStats.notes``)."""


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
        #: True when ``aeq_src`` comes from DuckDB's JSON reader (see :meth:`candidates_ready`)
        self.lenient_json = False

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
                  host_name: str | None = None, plan: Plan | None = None) -> None:
        """Register input files: Parquet, NDJSON, or anything else through the Python normalizer.

        With ``plan``, NDJSON lines no filter of it can match are dropped before their JSON is
        parsed (:meth:`_use_ndjson`).
        """
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
            self._use_ndjson(inputs.ndjson, plan)
        else:
            # in the order given (NDJSON and audit logs mixed): input order breaks ties in time
            self.use_documents(documents(expand_paths(paths), flavor=flavor, host_id=host_id, host_name=host_name))

    def _use_ndjson(self, paths: Sequence[str], plan: Plan | None) -> None:
        """NDJSON as the table ``aeq_lines(_doc, _seq)``: raw lines that may matter, in input order.

        Why: the JSON functions are what NDJSON costs, so lines are first tested as raw text by
        the filters' terms (:func:`.inputs.line_condition`, the Python engine's pre-filter in
        SQL) and only the survivors are kept and later parsed. ``_seq`` numbers every line the
        reader hands out *before* the test (file group, then line), so the engine's last
        tie-breaker, input order, is that of the original files. Without a plan, or when a
        transform/defaults may change documents after reading (a raw line would not show the
        filled-in value), every line is kept as a view over the files.
        """
        odd = _edge_whitespace_file(paths)
        if odd is not None:
            raise ReadInPython(
                f"{odd} holds form-feed or vertical-tab bytes, which DuckDB's JSON reader strips around a "
                "line and the Python reader refuses"
            )
        cond = None
        if plan is not None and self.transform is None and not self.defaults:
            cond = line_condition(plan, self.dialect, "_doc")
        arms = []
        for g, (compression, group) in enumerate(_compression_groups(paths)):
            arms.append(
                f"SELECT CAST(json AS VARCHAR) AS _doc, {g} * {_SEQ_FILE_SHIFT} + row_number() OVER () AS _seq "
                f"FROM read_ndjson_objects({_sql_list(self, group)}, ignore_errors = true, "
                f"compression = {self.dialect.quote(compression)})"
            )
        # the numbering is computed below the test: DuckDB never pushes a filter under a window
        lines = f"SELECT _doc, _seq FROM ({' UNION ALL '.join(arms)}) _l WHERE _doc IS NOT NULL"
        if cond is not None:
            lines += f" AND {cond}"
        # valid JSON (the reader checked) that starts with "{" is an object; only others are parsed
        lines += " AND (starts_with(_doc, '{') OR json_type(_doc) = 'OBJECT')"
        self.parquet = False
        self.lenient_json = True  # before reading: a damaged file (IOException) is read in Python
        if cond is None:
            self.create_view("aeq_lines", lines)
        else:
            self.materialize("aeq_lines", lines)
        self.create_view("aeq_src", "SELECT _doc, _seq FROM aeq_lines")

    def candidates_ready(self) -> None:
        """Drop candidates whose line DuckDB's JSON reader accepts but the Python engine's refuses.

        DuckDB reads ``NaN``/``Infinity``, trailing commas, numbers beyond a double and nesting
        deeper than 1024 levels; orjson (the Python path) rejects all of them and skips the line.
        Only candidate rows can change a result: those whose text may hold such JSON
        (``_LENIENT_SUSPECT``, normally none) are parsed here with orjson, and the ones it
        refuses are removed from ``aeq_cand``, as the Python engine never sees them.
        """
        if not self.lenient_json:
            return
        # the candidates' documents first (MATERIALIZED: the regex must not run on every line)
        rows = self.rows(
            f"WITH d AS MATERIALIZED (SELECT _seq, _doc FROM {self.doc_source} WHERE _seq IN (SELECT _seq FROM aeq_cand)) "
            f"SELECT _seq, _doc FROM d WHERE {_LENIENT_SUSPECT}"
        )
        bad = []
        for seq, text in rows:
            try:
                ok = isinstance(orjson.loads(text), dict)
            except orjson.JSONDecodeError:
                ok = False
            if not ok:
                bad.append(seq)
        for i in range(0, len(bad), 5000):
            self.con.execute(f"DELETE FROM aeq_cand WHERE _seq IN ({', '.join(str(s) for s in bad[i : i + 5000])})")

    def use_documents(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Register in-memory documents (converted to the pinned schema)."""
        import pyarrow as pa

        self.lenient_json = False
        table = pa.Table.from_batches(list(record_batches(docs)), schema=arrow_schema())
        self._keep.append(table)
        self.con.register("aeq_docs", table)
        self.create_view("aeq_src", "SELECT * FROM aeq_docs")
        self.parquet = True


def _sql_list(b: DuckDBBackend, paths: Sequence[str]) -> str:
    return "[" + ", ".join(b.dialect.quote(p) for p in paths) + "]"


def _compression_groups(paths: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Consecutive files grouped by compression, sniffed from the magic bytes as the Python
    reader does (DuckDB would go by the name and read a ``.gz``-less gzip file as garbage)."""
    groups: list[tuple[str, list[str]]] = []
    for p in paths:
        kind = _compression(p)
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(p)
        else:
            groups.append((kind, [p]))
    return groups


def _compression(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return "gzip" if fh.read(2) == b"\x1f\x8b" else "none"
    except OSError:
        return "auto"


def _edge_whitespace_file(paths: Sequence[str]) -> str | None:
    """The first file holding a form-feed or vertical-tab byte, else ``None``.

    DuckDB's JSON reader takes them as whitespace around a line and hands out the object without
    them, so no SQL test on the line can tell; orjson refuses such a line. They never occur in
    JSON writers' output, so one memchr pass per byte (mmap: no copy) keeps the fast path exact.
    """
    import mmap

    for p in paths:
        try:
            with open(p, "rb") as fh:
                if fh.read(2) == b"\x1f\x8b":
                    fh.seek(0)
                    with gzip.open(fh) as gz:
                        while chunk := gz.read(16 << 20):
                            if b"\x0b" in chunk or b"\x0c" in chunk:
                                return p
                    continue
                if os.fstat(fh.fileno()).st_size == 0:
                    continue
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    if m.find(b"\x0b") >= 0 or m.find(b"\x0c") >= 0:
                        return p
        except (OSError, EOFError, gzip.BadGzipFile):
            continue  # unreadable or damaged: the reader decides (a damaged .gz is read in Python)
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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
    import duckdb

    plan = plan_for(query, options)
    stats = stats if stats is not None else RunStats()

    def backend_for() -> DuckDBBackend:
        backend = DuckDBBackend(threads=threads)
        backend.transform = transform
        backend.defaults = dict(defaults or {})
        return backend

    backend = backend_for()
    if not _is_paths(source):
        backend.use_documents(source)  # type: ignore[arg-type]
        return backend.run(plan, options, stats)
    paths = list(source)  # type: ignore[arg-type]
    try:
        backend.use_paths(paths, plan=plan)
        return backend.run(plan, options, stats)
    except (duckdb.IOException, ReadInPython) as exc:
        if not backend.lenient_json and not isinstance(exc, ReadInPython):
            raise
        # e.g. DuckDB stops at a damaged file (a truncated .gz), where the Python reader reports
        # the damage and keeps every line before it: read the NDJSON that way instead
        stats.notes.append(f"DuckDB does not read this NDJSON as the Python reader does ({_first_line(exc)}): "
                           "read in Python")
        backend = backend_for()
        backend.use_documents(documents(paths))
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
