"""EQL plans -> SQL for DuckDB and Spark: the relation, per-filter matches, and ``sample``.

The SQL back ends run in three steps, all generated here from the plan's AST (``plan.source``):

1. **Relation** ``ev``: one row per document with ``_seq`` (input order), ``_ts`` (the engine's
   timestamp in ns), ``_doc`` (the JSON text), ``_irr`` (the row's structure is one SQL cannot
   read exactly: dotted keys, arrays of objects on a path, a value of an unexpected type) and
   one typed column per field the query reads. Parquet in the pinned schema supplies most
   columns directly; NDJSON columns are extracted with the engine's JSON functions.
2. **Matches**: for every filter, the rows SQL *decides* match (``lo`` bound) with their join
   keys; rows left undecided (``lo`` false, ``hi`` true, or ``_irr``) are fetched and decided by
   the Python engine's own compiled predicate (see :mod:`auditeql.scale.predicates`).
3. **Sample assembly** in SQL (:func:`sample_sql`): keys present in every filter, the first
   ``#filters + max_samples_per_key - 1`` candidates per key and filter in the engine's order
   (timestamp, input order; untimed last), the depth-first distinct-document search expressed as
   a join ordered lexicographically by candidate rank, ascending key order, ``size``.

Join keys are carried as two columns per position, ``kn<i>`` (integers) and ``ks<i>`` (strings),
so equality is typed (``"1"`` never joins ``1``) and the order is the engine's
(null, numbers, strings; strings in code-point order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auditeql.eql import ast
from auditeql.eql.plan import EventPlan, KeyField, Plan, QueryOptions, SamplePlan, SequencePlan

from .dialect import Dialect, get_dialect
from .parquet import PINNED, PinnedField
from .predicates import FALSE, TRUE, Bounds, compile_condition, field_kind, fold_column, sql_and, sql_not, sql_or


@dataclass(frozen=True)
class SqlFilter:
    """One filter (or ``until``) of the plan, compiled: bounds and join keys."""

    bounds: Bounds
    keys: tuple[KeyField, ...]
    missing: bool = False


@dataclass(frozen=True)
class SqlPlan:
    """What :func:`compile_sql` returns; the back ends render SQL from it."""

    plan: Plan
    dialect: Dialect
    filters: tuple[SqlFilter, ...]
    until: SqlFilter | None
    fields: Mapping[str, PinnedField]
    timestamp_field: str
    nkeys: int
    #: scalar fields whose ASCII-folded column (``<path>#lower``) the bounds read
    folds: frozenset[str] = frozenset()

    @property
    def exact(self) -> bool:
        """True when every filter is decided by SQL alone (no Python finishing for regular rows)."""
        return all(f.bounds.exact for f in self.all_filters)

    @property
    def all_filters(self) -> tuple[SqlFilter, ...]:
        return self.filters + ((self.until,) if self.until is not None else ())


def _subqueries(plan: Plan) -> list[tuple[ast.EventFilter, bool]]:
    src = plan.source
    if isinstance(plan, EventPlan):
        flt = src.filter if isinstance(src, ast.EventQuery) else plan.filter.source
        return [(flt, False)]
    out = []
    for f in plan.filters:
        sub = f.source
        flt = sub.filter if isinstance(sub, ast.SubQuery) else sub
        out.append((flt, f.missing))
    return out


def compile_sql(plan: Plan, dialect: str | Dialect, options: QueryOptions | None = None) -> SqlPlan:
    """Compile ``plan`` for ``dialect`` ("duckdb" or "spark")."""
    d = get_dialect(dialect)
    options = options or QueryOptions()
    cat_field = options.event_category_field
    fields: dict[str, PinnedField] = {}
    folds: set[str] = set()
    compiled: list[SqlFilter] = []
    cfs = [plan.filter] if isinstance(plan, EventPlan) else list(plan.filters)
    for cf, (flt, missing) in zip(cfs, _subqueries(plan)):
        if not isinstance(flt, ast.EventFilter):
            raise TypeError("plan without its AST: compile it with auditeql.eql.compile_query")
        bounds, used = compile_condition(d, flt.category, flt.condition, cat_field, folds)
        fields.update(used)
        compiled.append(SqlFilter(bounds, cf.keys, missing))
    until = None
    if isinstance(plan, SequencePlan) and plan.until is not None:
        sub = plan.until.source
        flt = sub.filter if isinstance(sub, ast.SubQuery) else sub
        bounds, used = compile_condition(d, flt.category, flt.condition, cat_field, folds)
        fields.update(used)
        until = SqlFilter(bounds, plan.until.keys)
    nkeys = len(compiled[0].keys) if compiled else 0
    for f in compiled + ([until] if until else []):
        for k in f.keys:
            fields[k.path] = field_kind(k.path)
    return SqlPlan(plan, d, tuple(compiled), until, fields, options.timestamp_field, nkeys, frozenset(folds))


# ------------------------------------------------------------------------------- relation


def _json_path(d: Dialect, parts: Sequence[str]) -> str:
    if d.name == "duckdb":
        return "$" + "".join('."' + p + '"' for p in parts)
    return "$" + "".join('["' + p + '"]' for p in parts)


def dotted_key_check(d: Dialect, paths: Sequence[str]) -> str:
    """SQL: the raw JSON text contains a key with dots that could spell part of one of ``paths``.

    One regular-expression pass over the text (RE2 / java.util.regex) instead of one substring
    search per candidate key. A match inside a string value only costs a Python evaluation.
    """
    keys = _dotted_keys(paths)
    if not keys:
        return FALSE
    alternation = "|".join("".join(_re_char(c) for c in k) for k in keys)
    # a key written with escapes (``"\u0063ustom\u002etag"``) spells its name only once decoded:
    # any key holding an escape is checked by Python (found by the generated NDJSON lines)
    q, bs, ws = r"\x{22}", r"\x{5c}", r"[\x{20}\x{09}\x{0a}\x{0d}]"
    escaped_key = f"{q}[^{q}{bs}]*(?:{bs}.[^{q}{bs}]*)+{q}{ws}*:"
    pattern = '"(?:' + alternation + ')"|' + escaped_key
    if d.name == "duckdb":
        return f"regexp_matches(_doc, {d.quote(pattern)})"
    return f"(_doc RLIKE {d.quote(pattern)})"


def _re_char(c: str) -> str:
    return c if c.isalnum() or c == "_" else "\\x{%02x}" % ord(c) if c.isascii() else c


def _safe_path(path: str) -> bool:
    return all(p and '"' not in p and "\\" not in p and "'" not in p for p in path.split("."))


def _dotted_keys(paths: Sequence[str]) -> list[str]:
    """Keys with dots that could spell part of a path (``"process.name"``, ``"parent.pid"``)."""
    out: set[str] = set()
    for path in paths:
        parts = path.split(".")
        for i in range(len(parts)):
            for j in range(i + 2, len(parts) + 1):
                out.add(".".join(parts[i:j]))
    return sorted(out)


def relation_sql(sp: SqlPlan, source: str, *, parquet: bool, irregular: str | None = None) -> tuple[str | None, str]:
    """``(prep, relation)``: SQL for the JSON extraction step (``None`` when no field needs JSON)
    and for the relation ``ev`` over it (``FROM aeq_prep``) or over ``source`` directly.

    ``irregular``: a boolean column of ``source`` marking rows whose text the SQL reader may have
    read differently from the Python reader; such rows are decided by the Python engine.

    The prep step parses each document once (DuckDB materializes it as a table: its optimizer
    would otherwise re-evaluate the extraction for every reference). ``ev`` has ``_seq``, ``_ts``,
    ``_irr`` and one column per field, but no ``_doc``: documents are fetched by ``_seq`` from
    ``source`` only for the few rows that need them.
    """
    d = sp.dialect
    json_fields = [p for p in sp.fields if not (parquet and p in PINNED)]
    ts_col = None
    if parquet and sp.timestamp_field == "@timestamp":
        ts_col = "_ts_ns"
    elif parquet and sp.timestamp_field == "event.ingested":
        ts_col = "_ingested_ns"
    json_paths = [p for p in json_fields if _safe_path(p)]
    unsafe = any(not _safe_path(p) for p in json_fields)
    ts_json = ts_col is None and _safe_path(sp.timestamp_field)
    if ts_col is None and not ts_json:
        unsafe = True
    extract = json_paths + ([sp.timestamp_field] if ts_json and sp.timestamp_field not in json_paths else [])
    prefixes = sorted({".".join(p.split(".")[:i]) for p in extract for i in range(1, len(p.split(".")))})
    slot = {p: i for i, p in enumerate(extract)}
    carried = [d.ident(p) for p in sp.fields if p not in json_fields]
    if parquet:
        carried += ["_irregular"] + ([ts_col] if ts_col else [])
    if irregular:
        carried.append(irregular)

    items = ["_seq"]
    irr: list[str] = ["_irregular"] if parquet else []
    if irregular:
        irr.append(irregular)
    if unsafe:
        irr.append(TRUE)
    if extract:
        irr.append("_bad")
    for path in sp.fields:
        if path in json_fields:
            if not _safe_path(path):
                items.append(f"CAST(NULL AS {_sql_type(d, sp.fields[path])}) AS {d.ident(path)}")
                continue
            value, bad = _json_field(d, sp.fields[path], _slot_ref(d, slot[path]))
            items.append(f"{value} AS {d.ident(path)}")
            irr.append(bad)
        else:
            items.append(d.ident(path))
    if ts_json:
        ts, bad = _json_timestamp(d, _slot_ref(d, slot[sp.timestamp_field]))
        items.append(f"{ts} AS _ts")
        irr.append(bad)
    elif ts_col:
        items.append(f"{ts_col} AS _ts")
    else:
        items.append("CAST(NULL AS BIGINT) AS _ts")
    irr_sql = FALSE
    for term in irr:
        irr_sql = sql_or(irr_sql, f"coalesce({term}, false)" if term not in (TRUE, FALSE) else term)
    items.append(f"{irr_sql} AS _irr")
    if not extract:
        return None, with_folds(sp, f"SELECT {', '.join(items)} FROM {source}")

    bad = dotted_key_check(d, extract)
    if d.name == "duckdb":
        arr = "[" + ", ".join(d.quote(_json_path(d, p.split("."))) for p in extract) + "]"
        prep_items = ["_seq", f"json_extract(_doc, {arr}) AS _j"]
        if prefixes:
            parr = "[" + ", ".join(d.quote(_json_path(d, p.split("."))) for p in prefixes) + "]"
            bad = sql_or(bad, f"coalesce(list_contains(json_type(_doc, {parr}), 'ARRAY'), false)")
        prep_items.append(f"{bad} AS _bad")
        prep = f"SELECT {', '.join(prep_items + carried)} FROM {source}"
    else:
        prep_items = ["_seq"] + [
            f"variant_get(_v, {d.quote(_json_path(d, p.split('.')))}) AS _j{i}" for i, p in enumerate(extract)
        ]
        for p in prefixes:
            bad = sql_or(
                bad, f"coalesce(schema_of_variant(variant_get(_v, {d.quote(_json_path(d, p.split('.')))})) LIKE 'ARRAY%', false)"
            )
        prep_items.append(f"{bad} AS _bad")
        prep = f"SELECT {', '.join(prep_items + carried)} FROM (SELECT *, try_parse_json(_doc) AS _v FROM {source}) _r0"
    return prep, with_folds(sp, f"SELECT {', '.join(items)} FROM aeq_prep")


def with_folds(sp: SqlPlan, rel: str) -> str:
    """``rel`` plus the ASCII-folded column of every scalar field the bounds compare folded."""
    if not sp.folds:
        return rel
    d = sp.dialect
    cols = [f"{d.ascii_lower(d.ident(p))} AS {d.ident(fold_column(p))}" for p in sorted(sp.folds)]
    return f"SELECT *, {', '.join(cols)} FROM ({rel}) _rf"


def _slot_ref(d: Dialect, i: int) -> str:
    return f"_j[{i + 1}]" if d.name == "duckdb" else f"_j{i}"


def _sql_type(d: Dialect, f: PinnedField) -> str:
    base = d.text_type if f.scalar_kind == "keyword" else "BIGINT"
    if f.is_list:
        return f"{base}[]" if d.name == "duckdb" else f"ARRAY<{base}>"
    return base


def _is_array(d: Dialect, j: str) -> str:
    if d.name == "duckdb":
        return f"(json_type({j}) = 'ARRAY')"
    return f"(schema_of_variant({j}) LIKE 'ARRAY%')"


def _json_field(d: Dialect, f: PinnedField, j: str) -> tuple[str, str]:
    """(typed value, irregular flag) for one JSON value ``j`` of a field with column kind ``f``."""
    if d.name == "duckdb":
        t = f"json_type({j})"
        if f.kind == "keyword":
            return (f"CASE WHEN {t} = 'VARCHAR' THEN json_extract_string({j}, '$') END",
                    f"({t} NOT IN ('VARCHAR', 'NULL'))")
        if f.kind == "long":
            value = f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(json_extract_string({j}, '$') AS BIGINT) END"
            return value, f"({t} <> 'NULL' AND ({value}) IS NULL)"
        return (
            f"CASE WHEN {t} = 'VARCHAR' THEN [json_extract_string({j}, '$')] "
            f"WHEN {t} = 'ARRAY' THEN json_extract_string({j}, '$[*]') END",
            f"(({t} NOT IN ('VARCHAR', 'NULL', 'ARRAY')) OR ({t} = 'ARRAY' AND NOT coalesce("
            f"list_bool_and(list_transform(json_extract({j}, '$[*]'), lambda _e: json_type(_e) = 'VARCHAR')), true)))",
        )
    t = f"schema_of_variant({j})"
    if f.kind == "keyword":
        return (f"CASE WHEN {t} = 'STRING' THEN variant_get({j}, '$', 'string') END",
                f"({t} NOT IN ('STRING', 'VOID'))")
    if f.kind == "long":
        ints = "('BIGINT', 'INT', 'SMALLINT', 'TINYINT')"
        return (f"CASE WHEN {t} IN {ints} THEN variant_get({j}, '$', 'bigint') END",
                f"({t} NOT IN ('BIGINT', 'INT', 'SMALLINT', 'TINYINT', 'VOID'))")
    return (
        f"CASE WHEN {t} = 'STRING' THEN array(variant_get({j}, '$', 'string')) "
        f"WHEN {t} = 'ARRAY<STRING>' THEN variant_get({j}, '$', 'array<string>') END",
        f"(({t} NOT IN ('STRING', 'VOID', 'ARRAY<STRING>')) OR ({t} = 'ARRAY<STRING>' AND "
        f"exists(variant_get({j}, '$', 'array<string>'), _e -> _e IS NULL)))",
    )


_ISO_Z = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z"


def _json_timestamp(d: Dialect, j: str) -> tuple[str, str]:
    """The engine's timestamp (ns) for the common shapes; anything else is left to Python.

    SQL handles ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` strings and integer epoch milliseconds; other
    forms the engine accepts (offsets, spaces, date-only, digit strings) mark the row irregular.
    """
    if d.name == "duckdb":
        s = f"json_extract_string({j}, '$')"
        t = f"json_type({j})"
        secs = f"CAST(epoch(TRY_CAST(substr({s}, 1, 19) AS TIMESTAMP)) AS BIGINT)"
        frac = f"TRY_CAST(rpad(substr({s}, 21, length({s}) - 21), 9, '0') AS BIGINT)"
        iso = f"{d.render(d.regex_match, x=s, pattern=d.quote(d.render(d.regex_anchor, p=_ISO_Z)))}"
        value = (
            f"CASE WHEN {t} = 'VARCHAR' AND {iso} THEN {secs} * 1000000000 + "
            f"(CASE WHEN length({s}) > 20 THEN {frac} ELSE 0 END) "
            f"WHEN {t} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(json_extract_string({j}, '$') AS BIGINT) * 1000000 END"
        )
        return value, f"({t} IS NOT NULL AND {t} <> 'NULL' AND ({value}) IS NULL)"
    s = f"variant_get({j}, '$', 'string')"
    t = f"schema_of_variant({j})"
    secs = f"unix_timestamp(try_to_timestamp(substr({s}, 1, 19), 'yyyy-MM-dd''T''HH:mm:ss'))"
    frac = f"TRY_CAST(rpad(substr({s}, 21, length({s}) - 21), 9, '0') AS BIGINT)"
    iso = d.render(d.regex_match, x=s, pattern=d.quote(d.render(d.regex_anchor, p=_ISO_Z)))
    ints = "('BIGINT', 'INT', 'SMALLINT', 'TINYINT')"
    value = (
        f"CASE WHEN {t} = 'STRING' AND {iso} THEN {secs} * 1000000000 + "
        f"(CASE WHEN length({s}) > 20 THEN {frac} ELSE 0 END) "
        f"WHEN {t} IN {ints} THEN try_multiply(variant_get({j}, '$', 'bigint'), 1000000) END"
    )
    return value, f"({j} IS NOT NULL AND {t} <> 'VOID' AND ({value}) IS NULL)"


# ------------------------------------------------------------------------------- matches


def key_columns(n: int) -> list[str]:
    return [c for i in range(n) for c in (f"kn{i}", f"ks{i}")]


def _key_exprs(sp: SqlPlan, keys: Sequence[KeyField]) -> tuple[list[str], str, list[str]]:
    """(select items kn/ks, condition that every non-optional key has a value, lateral explodes)."""
    d = sp.dialect
    items: list[str] = []
    cond = TRUE
    for i, k in enumerate(keys):
        f = sp.fields[k.path]
        col = d.ident(k.path)
        if f.is_list:
            # multi-valued: one row per distinct value (the cartesian product over positions)
            items_src = f"array_distinct({col})" if d.name == "spark" else f"list_distinct({col})"
            if k.optional:
                items_src = (
                    f"CASE WHEN {d.render(d.list_nonempty, col=col)} THEN {items_src} "
                    f"ELSE {'array(CAST(NULL AS STRING))' if d.name == 'spark' else '[NULL::VARCHAR]'} END"
                )
            else:
                cond = sql_and(cond, d.render(d.list_nonempty, col=col))
            items.append(f"{items_src} AS _arr{i}")
        else:
            if not k.optional:
                cond = sql_and(cond, f"({col} IS NOT NULL)")
            items.append(f"{col} AS _sc{i}")
    return items, cond, []


def matches_sql(sp: SqlPlan, relation: str) -> str:
    """Rows SQL decides match a filter, one per (filter, key tuple): ``f, _seq, _ts, kn*, ks*``.

    Irregular rows are excluded here; :func:`undecided_sql` hands them (and the rows whose
    bounds disagree) to Python.
    """
    d = sp.dialect
    parts = []
    for fi, flt in enumerate(sp.all_filters):
        if flt.bounds.lo == FALSE:
            continue
        sel, cond, _ = _key_exprs(sp, flt.keys)
        where = sql_and(sql_and("NOT _irr", flt.bounds.lo), cond)
        base = f"SELECT _seq, _ts{''.join(', ' + s for s in sel)} FROM {relation} WHERE {where}"
        outs = []
        froms = f"({base}) _b"
        for i, k in enumerate(flt.keys):
            f = sp.fields[k.path]
            if f.is_list:
                if d.name == "duckdb":
                    froms += f", unnest(_b._arr{i}) AS _u{i}(_x{i})"
                else:
                    froms += f" LATERAL VIEW explode(_b._arr{i}) _u{i} AS _x{i}"
                v = f"_x{i}"
            else:
                v = f"_b._sc{i}"
            kind = f.scalar_kind
            if kind == "long":
                outs += [f"CAST({v} AS BIGINT) AS kn{i}", f"CAST(NULL AS {d.text_type}) AS ks{i}"]
            else:
                outs += [f"CAST(NULL AS BIGINT) AS kn{i}", f"CAST({v} AS {d.text_type}) AS ks{i}"]
        cols = ", ".join([f"{fi} AS f", "_b._seq AS _seq", "_b._ts AS _ts"] + outs)
        parts.append(f"SELECT {cols} FROM {froms}")
    if not parts:
        kc = ", ".join(
            [f"CAST(NULL AS BIGINT) AS kn{i}, CAST(NULL AS {d.text_type}) AS ks{i}" for i in range(sp.nkeys)]
        )
        return f"SELECT 0 AS f, CAST(0 AS BIGINT) AS _seq, CAST(0 AS BIGINT) AS _ts{', ' + kc if kc else ''} WHERE 1 = 0"
    return " UNION ALL ".join(parts)


def undecided_condition(sp: SqlPlan) -> str:
    """Rows Python must decide: irregular rows, and rows some filter's bounds leave open."""
    cond = "_irr"
    for flt in sp.all_filters:
        if not flt.bounds.exact:
            cond = sql_or(cond, sql_and(sql_not(flt.bounds.lo), flt.bounds.hi))
    return cond


def candidate_condition(sp: SqlPlan) -> str:
    """Rows that may match some filter (``hi`` of any filter, or irregular): the narrowing."""
    cond = "_irr"
    for flt in sp.all_filters:
        cond = sql_or(cond, flt.bounds.hi)
    return cond


# ------------------------------------------------------------------------------- sample


def sample_sql(sp: SqlPlan, matches: str, options: QueryOptions) -> str:
    """Samples exactly as :func:`auditeql.engine.sample.run_sample_batch` builds them.

    ``matches`` is a relation ``f, _seq, _ts, kn*, ks*`` (distinct rows). Output columns:
    ``kn*, ks*, s0..s{n-1}`` (the ``_seq`` of each filter's event), in result order.
    """
    assert isinstance(sp.plan, SamplePlan)
    d = sp.dialect
    nf = len(sp.filters)
    nk = sp.nkeys
    per_key = max(options.max_samples_per_key, 1)
    cap = nf + per_key - 1
    kcols = key_columns(nk)
    klist = ", ".join(kcols)

    def keq(a: str, b: str) -> str:
        out = TRUE
        for c in kcols:
            out = sql_and(out, d.render(d.null_safe_eq, a=f"{a}.{c}", b=f"{b}.{c}"))
        return out

    group = f"GROUP BY {klist} " if kcols else ""
    keys_ok = f"SELECT {klist + ', ' if kcols else ''}count(DISTINCT f) AS _nf FROM {matches} {group}"
    keys_ok = f"SELECT * FROM ({keys_ok}) _g WHERE _nf = {nf}"
    part = f"PARTITION BY f{', ' + ', '.join('m.' + c for c in kcols) if kcols else ''}"
    ranked = (
        f"SELECT m.*, row_number() OVER ({part} ORDER BY (m._ts IS NULL), m._ts, m._seq) AS r "
        f"FROM {matches} m JOIN ({keys_ok}) k ON {keq('m', 'k')}"
    )
    cand = f"SELECT * FROM ({ranked}) _r WHERE r <= {cap}"
    sel = [f"c0.{c}" for c in kcols] + [f"c{i}._seq AS s{i}" for i in range(nf)]
    joins = f"({cand}) c0"
    where = "c0.f = 0"
    for i in range(1, nf):
        distinct = " AND ".join(f"c{i}._seq <> c{j}._seq" for j in range(i))
        joins += f" JOIN ({cand}) c{i} ON c{i}.f = {i} AND {keq(f'c{i}', 'c0')} AND {distinct}"
    kpart = f"PARTITION BY {', '.join('c0.' + c for c in kcols)} " if kcols else ""
    rank_order = ", ".join(f"c{i}.r" for i in range(nf))
    tuples = (
        f"SELECT {', '.join(sel)}, row_number() OVER ({kpart}ORDER BY {rank_order}) AS j "
        f"FROM {joins} WHERE {where}"
    )
    order = []
    for i in range(nk):
        # null key first, then numbers, then strings (engine.keys.key_sort_key)
        order += [f"(kn{i} IS NULL AND ks{i} IS NULL) DESC", f"(ks{i} IS NOT NULL)", f"kn{i}", f"ks{i}"]
    order.append("j")
    limit = max(options.size, 0)
    return (
        f"SELECT {', '.join(kcols + [f's{i}' for i in range(nf)])} FROM ({tuples}) _t WHERE j <= {per_key} "
        f"ORDER BY {', '.join(order)} LIMIT {limit}"
    )
