"""What the SQL back ends read: Parquet in the pinned schema, ECS NDJSON, or raw audit logs.

Why sort inputs by kind: DuckDB and Spark read Parquet and NDJSON natively (fast, no Python per
event), while raw audit logs must go through the Python normalizer first (audit → ECS); those
documents are then handed to the engine as Arrow record batches in the pinned schema.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Inputs:
    """Input paths grouped by kind, each list in the order given."""

    parquet: tuple[str, ...] = ()
    ndjson: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # raw audit logs, stdin: normalized in Python

    @property
    def kinds(self) -> int:
        return sum(1 for x in (self.parquet, self.ndjson, self.other) if x)


def is_uri(path: str) -> bool:
    """``scheme://…`` paths (cluster storage), as opposed to local files."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isalnum() and len(head) > 1


def _expand(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if is_uri(p):
            out.append(p)
        elif p != "-" and not os.path.exists(p) and glob.has_magic(p):
            matches = sorted(glob.glob(p))
            if not matches:
                raise ValueError(f"{p}: no file matches this pattern")
            out.extend(matches)
        else:
            out.append(p)
    return out


def expand_paths(paths: Sequence[str]) -> list[str]:
    """``paths`` with globs expanded (sorted), in the order given."""
    return _expand(paths)


def sniff(path: str) -> str:
    """``"parquet"``, ``"ndjson"`` or ``"other"`` (raw audit log, stdin, empty file): Parquet by
    its magic bytes, the rest by the rule every reader shares (:mod:`auditeql.sources.sniff`)."""
    if path == "-":
        return "other"
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory; give the files (a glob such as '{path}/*.parquet' works)")
    from auditeql.sources import sniff as _sniff

    with open(path, "rb") as fh:
        head = fh.read(4)
        if head == b"PAR1":
            return "parquet"
        fh.seek(0)
        kind = _sniff.kind_of_reads(lambda: fh.read(1 << 16))
    return "ndjson" if kind == "ndjson" else "other"


def classify(paths: Sequence[str]) -> Inputs:
    """Group inputs by kind; raises ``ValueError`` (with advice) for unreadable paths."""
    groups: dict[str, list[str]] = {"parquet": [], "ndjson": [], "other": []}
    for p in _expand(paths):
        if is_uri(p):
            # remote storage (s3a://, hdfs://, abfss://…) is read by Spark itself: kind by suffix
            groups["parquet" if p.rstrip("/").endswith(".parquet") else "ndjson"].append(p)
            continue
        if p != "-" and not os.path.exists(p):
            raise ValueError(f"{p}: no such file")
        groups[sniff(p)].append(p)
    return Inputs(tuple(groups["parquet"]), tuple(groups["ndjson"]), tuple(groups["other"]))


def documents(
    paths: Iterable[str], *, flavor: str = "auditbeat", host_id: str | None = None, host_name: str | None = None
) -> Iterator[Mapping[str, Any]]:
    """ECS documents from raw audit logs or ECS NDJSON (the audit layer's reader does both)."""
    from auditeql.sources.files import read_documents

    kwargs: dict[str, Any] = {"flavor": flavor}
    if host_id is not None or host_name is not None:
        from auditeql.audit.host import HostInfo

        kwargs["host"] = HostInfo.detect(host_id=host_id, host_name=host_name)
    yield from read_documents(list(paths), **kwargs)


def is_parquet(path: str) -> bool:
    """True for an existing file that starts with Parquet's magic bytes."""
    if path == "-" or not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def parquet_documents(paths: Sequence[str], batch_rows: int = 8192) -> Iterator[dict[str, Any]]:
    """The original documents kept in auditeql Parquet files (the ``_doc`` column), in order."""
    import orjson
    import pyarrow.parquet as pq

    from .parquet import check_schema

    for path in paths:
        try:
            check_schema(path)
        except ValueError as exc:
            from auditeql.sources.files import InputError

            raise InputError(str(exc)) from None
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=["_doc"]):
            for text in batch.column(0).to_pylist():
                yield orjson.loads(text)


def read_any(paths: Sequence[str], **kwargs: Any) -> Iterator[Mapping[str, Any]]:
    """Like ``sources.files.read_documents``, plus auditeql Parquet files, in the order given."""
    from auditeql.sources.files import read_documents

    expanded = _expand(paths)
    group: list[str] = []
    for p in expanded:
        if is_parquet(p):
            if group:
                yield from read_documents(group, **kwargs)
                group = []
            yield from parquet_documents([p])
        else:
            group.append(p)
    if group:
        yield from read_documents(group, **kwargs)


# ----------------------------------------------------------------------------- raw-line filter
#: A raw line holding one of these may spell a term differently (``\u0062``, ``\/``): always kept.
_ESCAPE_GUARDS = ("\\u", "\\/")


def _regex_char(ch: str, ci: bool) -> str:
    """One character as a regular-expression atom that RE2 (DuckDB) and Java (Spark) read alike.

    Letters and digits stand for themselves; everything else is a ``\\x{…}`` code-point escape.
    A ``ci`` term folds ASCII letters only (``[aA]``), exactly as ``bytes.lower()`` does: SQL
    ``lower`` would fold non-ASCII letters too and could miss a line the Python engine keeps.
    """
    if ci and ch.isascii() and ch.isalpha():
        return f"[{ch.lower()}{ch.upper()}]"
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\x{{{ord(ch):x}}}"


def _contains(dialect: Any, column: str, text: str) -> str:
    """``column`` holds ``text``; a leading ``"`` is not searched for (a weaker, still necessary
    test): substring search anchors on the first byte, and ``"`` is the commonest byte of JSON."""
    if text.startswith('"') and len(text) > 2:
        text = text[1:]
    lit = dialect.quote(text)
    return f"contains({column}, {lit})" if dialect.name == "duckdb" else f"(instr({column}, {lit}) > 0)"


def _regex_search(dialect: Any, column: str, pattern: str) -> str:
    lit = dialect.quote(pattern)
    return f"regexp_matches({column}, {lit})" if dialect.name == "duckdb" else f"({column} RLIKE {lit})"


def _group_condition(dialect: Any, column: str, group: Sequence[tuple[str, bool]]) -> str:
    """A raw line holds one term of ``group``.

    One or two exact terms are ``contains`` tests; anything else is one regular expression (an
    alternation is a single pass over the line, where each ``contains`` is a pass of its own),
    folded terms with ``[aA]`` classes.
    """
    terms = sorted(set(group))
    if len(terms) <= 2 and not any(ci for _t, ci in terms):
        parts = [_contains(dialect, column, t) for t, _ci in terms]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    alternation = "|".join("".join(_regex_char(ch, ci) for ch in t) for t, ci in terms)
    return _regex_search(dialect, column, alternation)


def line_condition(plan: Any, dialect: Any, column: str) -> str | None:
    """SQL over a raw NDJSON line (text column ``column``) that is false only when no filter of
    ``plan`` can match the document on that line; ``None`` when every line must be kept.

    Why: parsing JSON is what reading NDJSON costs; the Python engine (``auditeql query``) skips
    lines by the same test before parsing. The test is the filters' term groups
    (``CompiledFilter.line_groups``): a line a filter can match holds a term of each of that
    filter's groups, exact terms case-sensitively, folded terms ASCII-case-insensitively. A line
    holding a ``\\u`` or ``\\/`` escape may spell a term differently and is always kept, as is
    every line when a filter has no group (``any where true``, numbers, negations). Groups every
    filter shares are tested once, outside the per-filter alternatives.
    """
    from auditeql.eql.plan import plan_filters

    per_filter: list[list[tuple[tuple[str, bool], ...]]] = []
    for flt in plan_filters(plan):
        if not flt.line_groups:
            return None
        per_filter.append(list(dict.fromkeys(tuple(sorted(set(g))) for g in flt.line_groups)))
    common = [g for g in per_filter[0] if all(g in groups for groups in per_filter[1:])]
    arms: list[str] = []
    for groups in per_filter:
        rest = [_group_condition(dialect, column, g) for g in groups if g not in common]
        if not rest:
            arms = []  # a filter needs nothing beyond the common groups
            break
        arms.append(rest[0] if len(rest) == 1 else "(" + " AND ".join(rest) + ")")
    conds = [_group_condition(dialect, column, g) for g in common]
    arms = list(dict.fromkeys(arms))
    if arms:
        conds.append(arms[0] if len(arms) == 1 else "(" + " OR ".join(arms) + ")")
    guards = " OR ".join(_contains(dialect, column, g) for g in _ESCAPE_GUARDS)
    return f"(({' AND '.join(conds)}) OR {guards})"
