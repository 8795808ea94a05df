"""Shared helpers for the engine tests: compile queries, build events, read results as ids."""

from __future__ import annotations

from typing import Any

import pytest


def compile_text(text: str):
    """Compile with the language layer's public entry point (fallback: parser + compiler)."""
    try:
        from auditeql.eql import compile_query  # type: ignore[attr-defined]
    except ImportError:  # the language helper has not exported it yet
        from auditeql.eql.compiler import build_plan
        from auditeql.eql.parser import parse_query

        return build_plan(parse_query(text))
    return compile_query(text)


def ev(id_: Any, cat: Any = None, ts: Any = None, **fields: Any) -> dict:
    """An event in the spec's notation: id, cat -> event.category, ts -> @timestamp."""
    d: dict[str, Any] = {"_id": id_}
    if cat is not None:
        d["event"] = {"category": cat}
    if ts is not None:
        d["@timestamp"] = ts
    for k, v in fields.items():
        node = d
        parts = k.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return d


def ids(matches) -> list[list]:
    """Matches as lists of event ids, -1 for a missing-event placeholder."""
    return [[-1 if e is None else e["_id"] for e in m.events] for m in matches]


@pytest.fixture
def compile_q():
    return compile_text
