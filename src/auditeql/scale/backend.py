"""What DuckDB and Spark share: turning a plan into SQL work plus a little Python finishing.

A back end only has to run SQL, register a small table of rows, and expose the source as the
relation ``aeq_src``; everything about EQL semantics lives here and in :mod:`.sql`.

* Event queries: SQL finds the decided matches; undecided rows go through the engine's
  predicate; the engine's ordering and ``size``/``head``/``tail`` are applied to the union.
* Samples: decided matches + Python-decided matches form a match table; the whole sample
  assembly then runs as SQL (:func:`auditeql.scale.sql.sample_sql`).
* Sequences: SQL narrows the input to the rows that may match a stage (and ``until``); the
  Python sequence engine finishes (:meth:`Backend.run_sequence`, overridden by Spark to run it
  per join-key partition).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditeql.engine.keys import make_extractor
from auditeql.engine.limits import apply_limits
from auditeql.engine.match import Match
from auditeql.engine.ordering import doc_timestamp_ns, make_order_key
from auditeql.eql.plan import EventPlan, Plan, QueryOptions, SamplePlan, SequencePlan

from .dialect import Dialect
from .predicates import Bounds, fold_column
from .sql import (
    SqlFilter,
    SqlPlan,
    candidate_condition,
    compile_sql,
    key_columns,
    matches_sql,
    relation_sql,
    sample_sql,
    undecided_condition,
)
from .predicates import sql_and, sql_not

Doc = Mapping[str, Any]
DocTransform = Callable[[dict[str, Any]], Mapping[str, Any]]

#: beyond this many candidate tuples per key the distinct-document search is left to Python
_MAX_SQL_TUPLES = 200_000


@dataclass
class RunStats:
    """What a run did, for ``--verbose`` output, tests and the benchmark."""

    sql_exact: bool = False
    undecided_rows: int = 0
    python_finished: bool = False
    candidate_rows: int = 0
    notes: list[str] = field(default_factory=list)


class _NeedsPython(Exception):
    """A value SQL cannot carry (a float or boolean join key): Python finishes the sample."""


class Backend:
    """Base class; subclasses provide ``dialect`` and the four primitives below."""

    dialect: Dialect
    #: True when ``aeq_src`` has the pinned Parquet columns (set by the source registration)
    parquet: bool = False
    #: the relation documents are fetched from by ``_seq`` (cheaper than ``aeq_src`` when that
    #: one re-validates every line)
    doc_source: str = "aeq_src"
    #: a boolean column of ``aeq_src`` marking rows its reader may have read unlike the Python
    #: reader (Spark's JSON parser on NDJSON): they are decided by Python, which may refuse them
    irregular_column: str | None = None
    #: applied to every document before a Python predicate sees it or it is returned
    transform: DocTransform | None = None
    #: column defaults equivalent to ``transform`` (field path -> value), applied in SQL
    defaults: Mapping[str, Any] = {}

    # ---------------------------------------------------------------- primitives
    def rows(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def create_view(self, name: str, sql: str) -> None:
        raise NotImplementedError

    def materialize(self, name: str, sql: str) -> None:
        """Compute ``sql`` once for the run (DuckDB: a temp table); default: a view."""
        self.create_view(name, sql)

    def register_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- driver
    def run(self, plan: Plan, options: QueryOptions | None = None, stats: RunStats | None = None) -> list:
        """Run ``plan`` over ``aeq_src``: the same result as ``engine.run_batch`` on the documents."""
        options = options or QueryOptions()
        stats = stats if stats is not None else RunStats()
        sp = compile_sql(plan, self.dialect, options)
        stats.sql_exact = sp.exact
        prep, rel = relation_sql(sp, "aeq_src", parquet=self.parquet, irregular=self.irregular_column)
        if prep is not None:
            self.prepare("aeq_prep", prep)
        self.create_view("aeq_ev", self._with_defaults(sp, rel))
        sp = self._flag(sp)
        if isinstance(plan, SamplePlan):
            return self._run_sample(sp, options, stats)
        if isinstance(plan, EventPlan):
            return self._run_events(sp, options, stats)
        if isinstance(plan, SequencePlan):
            return self.run_sequence(sp, options, stats)
        raise TypeError(f"not a compiled plan: {type(plan).__name__}")

    def prepare(self, name: str, sql: str) -> None:
        """The JSON extraction step: materialized where the engine would repeat it (DuckDB)."""
        self.materialize(name, sql)

    def _flag(self, sp: SqlPlan) -> SqlPlan:
        """Evaluate every filter's bounds once, keeping only rows that may match (``aeq_cand``).

        Later queries (undecided rows, matches, samples) then test boolean columns instead of
        re-planning and re-evaluating the filter expressions.
        """
        d = self.dialect
        cols = ["_seq", "_ts", "_irr"]
        for f in sp.all_filters:
            for k in f.keys:
                cols.append(d.ident(k.path))
        out: list[SqlFilter] = []
        for i, f in enumerate(sp.all_filters):
            lo, hi = f.bounds.lo, f.bounds.hi
            cols.append(f"{lo} AS _lo{i}")
            if not f.bounds.exact:
                cols.append(f"{hi} AS _hi{i}")
            flo = lo if lo in ("TRUE", "FALSE") else f"_lo{i}"
            fhi = flo if f.bounds.exact else (hi if hi in ("TRUE", "FALSE") else f"_hi{i}")
            out.append(dataclasses.replace(f, bounds=Bounds(flo, fhi)))
        self.materialize(
            "aeq_cand", f"SELECT {', '.join(dict.fromkeys(cols))} FROM aeq_ev WHERE {candidate_condition(sp)}"
        )
        self.candidates_ready()
        n = len(sp.filters)
        return dataclasses.replace(sp, filters=tuple(out[:n]), until=out[n] if sp.until is not None else None)

    def candidates_ready(self) -> None:
        """Called once ``aeq_cand`` exists: a back end may drop rows its reader should not have
        accepted (DuckDB: JSON that the Python engine's reader refuses). Default: nothing."""

    def _with_defaults(self, sp: SqlPlan, rel: str) -> str:
        """Apply :attr:`defaults` (fill-in values, as ``scan --host-id`` does) to the columns."""
        if not self.defaults:
            return rel
        d = self.dialect
        cols = []
        exprs = {}
        for path in sp.fields:
            e = d.ident(path)
            if path in self.defaults:
                e = f"coalesce({e}, {d.quote(str(self.defaults[path]))})"
            exprs[path] = e
            cols.append(f"{e} AS {d.ident(path)}")
        for path in sorted(sp.folds):
            cols.append(f"{d.ascii_lower(exprs[path])} AS {d.ident(fold_column(path))}")
        return f"SELECT _seq, _ts, _irr{''.join(', ' + c for c in cols)} FROM ({rel}) _rd"

    # ---------------------------------------------------------------- helpers
    def _parse(self, text: str) -> Mapping[str, Any]:
        doc = orjson.loads(text)
        return self.transform(doc) if self.transform is not None else doc

    def _documents(self, rows: Iterable[tuple[int, str]]) -> list[tuple[int, Mapping[str, Any]]]:
        """``(_seq, document)`` of the rows whose text the Python reader accepts as an object.

        Rows that reach Python are undecided or irregular; among them may be lines the SQL
        reader took and the Python reader refuses (see :attr:`irregular_column`): the Python
        engine never sees those, so neither does the result."""
        out = []
        for seq, text in rows:
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                out.append((seq, self.transform(doc) if self.transform is not None else doc))
        return out

    def docs_by_seq(self, seqs: Iterable[int]) -> dict[int, Mapping[str, Any]]:
        wanted = sorted(set(seqs))
        out: dict[int, Mapping[str, Any]] = {}
        for i in range(0, len(wanted), 5000):
            chunk = wanted[i : i + 5000]
            sql = f"SELECT _seq, _doc FROM {self.doc_source} WHERE _seq IN ({', '.join(str(s) for s in chunk)})"
            for seq, text in self.rows(sql):
                out[seq] = self._parse(text)
        return out

    def _docs_where(self, cond: str) -> list[tuple[int, str]]:
        """``(_seq, _doc)`` of the rows of ``aeq_ev`` satisfying ``cond``, in input order."""
        if cond == "FALSE":
            return []
        # a semi-join: the engines broadcast/hash the few candidate _seq, never the documents
        return self.rows(
            f"SELECT _seq, _doc FROM {self.doc_source} WHERE _seq IN (SELECT _seq FROM aeq_cand WHERE {cond}) "
            f"ORDER BY _seq"
        )

    def _undecided(self, sp: SqlPlan, stats: RunStats) -> list[tuple[int, Mapping[str, Any]]]:
        rows = self._docs_where(undecided_condition(sp))
        stats.undecided_rows = len(rows)
        return self._documents(rows)

    # ---------------------------------------------------------------- event queries
    def _run_events(self, sp: SqlPlan, options: QueryOptions, stats: RunStats) -> list:
        plan = sp.plan
        assert isinstance(plan, EventPlan)
        lo = sp.filters[0].bounds.lo
        und = undecided_condition(sp)
        sql = f"SELECT _ts, _seq FROM aeq_cand WHERE {sql_and(sql_not(und), lo)} AND _ts IS NOT NULL"
        hits: list[tuple[int, int]] = [(ts, seq) for ts, seq in self.rows(sql)] if lo != "FALSE" else []
        pred = plan.filter.predicate
        extra: dict[int, Mapping[str, Any]] = {}
        for seq, doc in self._undecided(sp, stats):
            if pred(doc):
                ts = doc_timestamp_ns(doc, options.timestamp_field)
                if ts is not None:
                    hits.append((ts, seq))
                    extra[seq] = doc
        if options.tiebreaker_field:
            docs = self.docs_by_seq(s for _, s in hits)
            docs.update(extra)
            order_key = make_order_key(options.timestamp_field, options.tiebreaker_field)
            ordered = sorted(hits, key=lambda h: order_key(docs[h[1]], h[1]) or (h[0], h[1]))
            return apply_limits([docs[s] for _, s in ordered], options.size, plan.pipes)
        hits.sort()
        chosen = apply_limits([s for _, s in hits], options.size, plan.pipes)
        docs = self.docs_by_seq(s for s in chosen if s not in extra)
        docs.update(extra)
        return [docs[s] for s in chosen]

    # ---------------------------------------------------------------- samples
    def _python_matches(self, sp: SqlPlan, undecided: list[tuple[int, Mapping[str, Any]]], options: QueryOptions) -> list[tuple]:
        plan = sp.plan
        filters = plan.filters if not isinstance(plan, EventPlan) else (plan.filter,)
        out: list[tuple] = []
        extractors = [make_extractor(f.keys) for f in filters]
        for seq, doc in undecided:
            ts = None
            for fi, f in enumerate(filters):
                if not f.predicate(doc):
                    continue
                ks = extractors[fi](doc)
                if ks is None:
                    continue
                if ts is None:
                    ts = doc_timestamp_ns(doc, options.timestamp_field)
                    if ts is not None and not -(2**63) <= ts < 2**63:
                        raise _NeedsPython()
                for key in (ks,) if type(ks) is tuple else ks:
                    out.append((fi, seq, ts, *_key_cells(key)))
        return out

    def _run_sample(self, sp: SqlPlan, options: QueryOptions, stats: RunStats) -> list[Match]:
        plan = sp.plan
        assert isinstance(plan, SamplePlan)
        if options.tiebreaker_field or (len(sp.filters) + options.max_samples_per_key - 1) ** len(sp.filters) > _MAX_SQL_TUPLES:
            stats.notes.append("tiebreaker or large max_samples_per_key: Python assembles the samples")
            return self._python_sample(sp, options, stats)
        undecided = self._undecided(sp, stats)
        try:
            py_rows = self._python_matches(sp, undecided, options)
        except _NeedsPython:
            stats.notes.append("a float or boolean join key: Python assembles the samples")
            return self._python_sample(sp, options, stats)
        kcols = key_columns(sp.nkeys)
        cols = [("f", "BIGINT"), ("_seq", "BIGINT"), ("_ts", "BIGINT")] + [
            (c, "BIGINT" if c.startswith("kn") else "TEXT") for c in kcols
        ]
        self.register_rows("aeq_py", cols, py_rows)
        und = undecided_condition(sp)
        decided = matches_sql(sp, f"(SELECT * FROM aeq_cand WHERE NOT ({und}))")
        names = ", ".join(c for c, _ in cols)
        self.materialize("aeq_m", f"SELECT {names} FROM ({decided}) _d UNION ALL SELECT {names} FROM aeq_py")
        result = self.rows(sample_sql(sp, "aeq_m", options))
        nk, nf = sp.nkeys, len(sp.filters)
        docs = self.docs_by_seq(s for row in result for s in row[2 * nk : 2 * nk + nf])
        for seq, doc in undecided:
            docs[seq] = doc
        out = []
        for row in result:
            key = tuple(row[2 * i] if row[2 * i] is not None else row[2 * i + 1] for i in range(nk))
            out.append(Match(key, tuple(docs[s] for s in row[2 * nk : 2 * nk + nf])))
        return out

    def _candidates(self, sp: SqlPlan, stats: RunStats) -> list[Mapping[str, Any]]:
        rows = self._docs_where(candidate_condition(sp))
        stats.candidate_rows = len(rows)
        return [doc for _seq, doc in self._documents(rows)]

    def _python_sample(self, sp: SqlPlan, options: QueryOptions, stats: RunStats) -> list[Match]:
        from auditeql.engine import run_batch

        stats.python_finished = True
        return list(run_batch(sp.plan, self._candidates(sp, stats), options))

    # ---------------------------------------------------------------- sequences
    def run_sequence(self, sp: SqlPlan, options: QueryOptions, stats: RunStats) -> list[Match]:
        """SQL narrows to the rows that may match a stage; the Python engine finishes."""
        from auditeql.engine import run_batch

        stats.python_finished = True
        return list(run_batch(sp.plan, self._candidates(sp, stats), options))


def _key_cells(key: tuple) -> list[Any]:
    cells: list[Any] = []
    for v in key:
        if v is None:
            cells += [None, None]
        elif type(v) is int and -(2**63) <= v < 2**63:
            cells += [v, None]
        elif type(v) is str:
            cells += [None, v]
        else:  # a boolean, a float or an out-of-range integer: no SQL key column carries it
            raise _NeedsPython()
    return cells


def plan_for(query: str | Plan, options: QueryOptions | None = None) -> Plan:
    """A compiled plan from query text (or the plan itself)."""
    if isinstance(query, str):
        from auditeql.eql import compile_query

        opts = options or QueryOptions()
        return compile_query(query, event_category_field=opts.event_category_field)
    return query

