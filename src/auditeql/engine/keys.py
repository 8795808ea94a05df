"""Join keys: extraction from documents, typed equality, Elasticsearch key order.

Elasticsearch joins on the *indexed* value of each key field (composite-aggregation buckets and
``term`` filters), so:

* equality is exact and case-sensitive for strings and typed otherwise: ``"1"`` never joins
  ``1`` and ``true`` never joins ``1`` (Python's ``True == 1`` is kept apart by wrapping booleans);
* a missing/null/empty key excludes the document unless the key is optional (``?k``), in which
  case ``None`` is the key value;
* a multi-valued key contributes each distinct value; several multi-valued keys form the
  cartesian product.

An extractor returns a single tuple on the fast path (every key a single scalar, the ECS norm),
a list of tuples for multi-valued keys, or ``None`` when the document cannot take part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import product
from typing import Any

from auditeql.eql.plan import KeyField
from auditeql.fields import values

KeyTuple = tuple
Extracted = tuple | list | None


class BoolKey:
    """A boolean key value, kept apart from the integers 0 and 1 (which Python equates)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is BoolKey and other.value is self.value

    def __hash__(self) -> int:
        return hash(("bool", self.value))

    def __repr__(self) -> str:
        return "true" if self.value else "false"


_TRUE = BoolKey(True)
_FALSE = BoolKey(False)
_SCALARS = (str, int, float)


def _norm(v: Any) -> Any:
    """A hashable key component for ``v``, or ``_SKIP`` if ES could not bucket it (objects)."""
    t = type(v)
    if t is str or t is int or t is float:
        return v
    if t is bool:
        return _TRUE if v else _FALSE
    if isinstance(v, _SCALARS):
        return v
    return _SKIP


_SKIP = object()


def _component_values(doc: Mapping[str, Any], parts: tuple[str, ...], path: str, optional: bool) -> list | None:
    """Distinct key values of one component; ``[None]`` for an absent optional key; None = exclude."""
    vals = values(doc, path)
    out: list = []
    for v in vals:
        n = _norm(v)
        if n is _SKIP or n in out:
            continue
        out.append(n)
    if out:
        return out
    return [None] if optional else None


def make_extractor(keys: Sequence[KeyField]) -> Callable[[Mapping[str, Any]], Extracted]:
    """A function doc -> key tuple | list of key tuples | None (document excluded)."""
    specs = tuple((tuple(k.path.split(".")), k.path, k.optional) for k in keys)
    if not specs:
        empty: tuple = ()
        return lambda doc: empty

    def extract(doc: Mapping[str, Any]) -> Extracted:
        comps: list | None = None
        fast: list = []
        for i, (parts, path, optional) in enumerate(specs):
            node: Any = doc
            for p in parts:
                if type(node) is dict:
                    node = node.get(p, _SKIP)
                    if node is _SKIP:
                        break
                else:
                    node = _SKIP
                    break
            t = type(node)
            if t is str or t is int or t is float:
                if comps is None:
                    fast.append(node)
                else:
                    comps.append([node])
                continue
            vs = _component_values(doc, parts, path, optional)
            if vs is None:
                return None
            if len(vs) == 1 and comps is None:
                fast.append(vs[0])
                continue
            if comps is None:
                comps = [[v] for v in fast]
            comps.append(vs)
        if comps is None:
            return tuple(fast)
        return list(product(*comps))

    return extract


def display_key(key: KeyTuple) -> tuple:
    """The join key as returned to users: booleans unwrapped."""
    return tuple(v.value if type(v) is BoolKey else v for v in key)


def key_sort_key(key: KeyTuple) -> tuple:
    """Ascending composite-aggregation order: null first, then booleans, numbers, strings.

    Python compares ``str`` by code point, which is the same order as UTF-8 bytes (ES keyword
    order), so ``"GTA" < "doom"``.
    """
    out = []
    for v in key:
        if v is None:
            out.append((0, 0))
        elif type(v) is BoolKey:
            out.append((1, int(v.value)))
        elif type(v) is str:
            out.append((3, v))
        elif isinstance(v, (int, float)):
            out.append((2, v))
        else:
            out.append((4, repr(v)))
    return tuple(out)


class ExtractorCache:
    """Shares one extractor between filters with identical key lists (the usual ``sample by``)."""

    def __init__(self, key_lists: Sequence[Sequence[KeyField]]) -> None:
        ids: dict[tuple, int] = {}
        self.slot_of: list[int] = []
        self.extractors: list[Callable[[Mapping[str, Any]], Extracted]] = []
        for keys in key_lists:
            sig = tuple(keys)
            if sig not in ids:
                ids[sig] = len(self.extractors)
                self.extractors.append(make_extractor(keys))
            self.slot_of.append(ids[sig])
