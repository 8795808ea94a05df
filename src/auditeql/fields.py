"""Field access on ECS documents, the way Elasticsearch sees ``_source``.

Elasticsearch flattens ``_source`` before indexing: ``{"process": {"name": "x"}}`` and
``{"process.name": "x"}`` are the same field, an array of objects contributes the values of
each object (``{"a": [{"b": 1}, {"b": 2}]}`` gives ``a.b = [1, 2]``), nested arrays are
flattened, and JSON ``null`` / ``[]`` mean "no value". Every layer that reads a field (the
EQL compiler, the engines' join keys and timestamps, alerts, push-down) goes through
:func:`values`, so the rule is implemented once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING: list[Any] = []


def values(doc: Mapping[str, Any], path: str) -> list[Any]:
    """All values of the dotted field ``path`` in ``doc`` (``[]`` when absent or null).

    Fast path: a nested lookup of a scalar, which is what ECS documents almost always hold.
    """
    parts = path.split(".")
    node: Any = doc
    for i, part in enumerate(parts):
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                continue
            # dotted keys: {"process.name": ...} or {"process": {"parent.pid": ...}}
            return _dotted(node, parts[i:])
        if isinstance(node, list):
            return _collect(node, parts[i:])
        return _MISSING
    return _flatten(node)


def first(doc: Mapping[str, Any], path: str) -> Any:
    """The first value of ``path`` or ``None``."""
    vals = values(doc, path)
    return vals[0] if vals else None


def _dotted(node: Mapping[str, Any], parts: list[str]) -> list[Any]:
    out: list[Any] = []
    for j in range(len(parts), 0, -1):
        key = ".".join(parts[:j])
        if key in node:
            rest = parts[j:]
            child = node[key]
            if not rest:
                out.extend(_flatten(child))
            elif isinstance(child, Mapping):
                out.extend(values(child, ".".join(rest)))
            elif isinstance(child, list):
                out.extend(_collect(child, rest))
    return out


def _collect(items: list[Any], parts: list[str]) -> list[Any]:
    out: list[Any] = []
    rest = ".".join(parts)
    for item in items:
        if isinstance(item, Mapping):
            out.extend(values(item, rest))
        elif isinstance(item, list):
            out.extend(_collect(item, parts))
    return out


def _flatten(node: Any) -> list[Any]:
    if node is None:
        return _MISSING
    if isinstance(node, list):
        out: list[Any] = []
        for item in node:
            if isinstance(item, list):
                out.extend(_flatten(item))
            elif item is not None:
                out.append(item)
        return out
    return [node]
