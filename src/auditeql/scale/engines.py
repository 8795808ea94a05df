"""``scan --engine duckdb|spark``: window runners for :mod:`auditeql.rules.replay`.

The replayer reads the input once, keeps each rule's candidate documents and evaluates every
scheduled Kibana run over the documents of its window. With these runners that evaluation is
done by DuckDB or Spark (the same SQL as :func:`auditeql.scale.duckdb.run`), so a scan proves,
window by window, that the SQL back ends raise the same alerts as the Python engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditeql.eql.plan import QueryOptions


def duckdb_runner() -> Any:
    from . import duckdb as sdb

    def run(rule: Any, docs: Sequence[Mapping[str, Any]], options: QueryOptions) -> list[Any]:
        return sdb.run(rule.plan, list(docs), options)

    return run


def spark_runner() -> Any:
    from . import spark as ssp

    spark = ssp.session()

    def run(rule: Any, docs: Sequence[Mapping[str, Any]], options: QueryOptions) -> list[Any]:
        return ssp.run(rule.plan, list(docs), options, spark=spark)

    return run


def register() -> None:
    """Add ``duckdb`` and ``spark`` to the replayer's engine table (idempotent)."""
    from auditeql.rules.replay import ENGINES

    ENGINES.setdefault("duckdb", duckdb_runner)
    ENGINES.setdefault("spark", spark_runner)
