"""The join keys a ``sample`` can still produce, from its rare filters alone (a semi-join).

Why: a sample only has a result for a join key under which EVERY filter has a match
(spec §1.3). When some filters are rare (the seed rule's ``socket`` of ``SOCK_DGRAM`` and its
egress ``connect``: well under 1% of documents each) and another is common (a shell's
``execve``: a fifth of them), the keys of the rare filters' matches bound the whole answer:
a document of the common filter whose keys are none of those can never be part of a result.
A caller reads the rare filters' candidate lines first, collects their keys here
(:class:`KeyCollector`), and then reads the common filters' lines only where the raw text can
hold one of those keys (:mod:`auditeql.sources.keyscan`). Feeding the engine every matching
document of those keys, in input order, gives exactly the single-pass answer.

Keys are extracted with the engine's own extractor (:mod:`auditeql.engine.keys`), so typed
equality (``"1"`` vs ``1``, booleans, ``1.0 == 1``), optional keys and multi-valued keys
(a list of tuples) are the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditeql.engine.keys import ExtractorCache
from auditeql.eql.plan import CompiledFilter

#: A filter whose own line scanner leaves at most this share of a sample's lines is "rare".
RARE_SHARE = 0.05
#: Two passes pay only when the common filters would have this share of lines parsed or more.
MIN_COMMON_SHARE = 0.05


def split_filters(shares: Sequence[float]) -> tuple[list[int], list[int]] | None:
    """``(rare, common)`` filter indexes from per-filter candidate shares; ``None``: one pass is better."""
    rare = [i for i, s in enumerate(shares) if s <= RARE_SHARE]
    common = [i for i, s in enumerate(shares) if s > RARE_SHARE]
    if not rare or not common or sum(shares[i] for i in common) < MIN_COMMON_SHARE:
        return None
    return rare, common


class KeyCollector:
    """Per rare filter, the join keys of its true matches; :meth:`keys` = keys every one has."""

    def __init__(self, filters: Sequence[CompiledFilter], rare: Sequence[int]) -> None:
        cache = ExtractorCache([f.keys for f in filters])
        self._extract = [cache.extractors[cache.slot_of[i]] for i in range(len(filters))]
        self._rare = list(rare)
        self._sets: dict[int, set[tuple]] = {i: set() for i in rare}

    def add(self, doc: Mapping[str, Any], bits: int) -> None:
        """Record ``doc``'s keys under each rare filter whose bit is set in ``bits``."""
        for i in self._rare:
            if bits >> i & 1:
                ks = self._extract[i](doc)
                if ks is None:
                    continue
                if type(ks) is tuple:
                    self._sets[i].add(ks)
                else:
                    self._sets[i].update(ks)

    def sets(self) -> dict[int, set[tuple]]:
        """Per rare filter, the keys of its matches so far (to be merged into another collector)."""
        return self._sets

    def merge(self, sets: Mapping[int, set[tuple]]) -> None:
        """Add another collector's :meth:`sets` (the matches of another part of the input)."""
        for i, s in sets.items():
            self._sets[i] |= s

    def keys(self) -> set[tuple]:
        """The keys that have a match in every rare filter (a superset of the sample's result keys)."""
        sets = sorted(self._sets.values(), key=len)
        out = set(sets[0]) if sets else set()
        for s in sets[1:]:
            out &= s
        return out


def key_components(
    keys: set[tuple], filters: Sequence[CompiledFilter], common: Sequence[int]
) -> list[tuple[list[str], set[Any]]]:
    """For each join-key position: the last path segments the common filters hold it under, and its values.

    Any one position gives a necessary condition on a common-filter document of a wanted key
    (its field holds one of the values); the caller picks the most selective one.
    """
    if not keys:
        return []
    width = len(next(iter(keys)))
    out: list[tuple[list[str], set[Any]]] = []
    for j in range(width):
        segments = sorted({filters[i].keys[j].path.rsplit(".", 1)[-1] for i in common})
        out.append((segments, {k[j] for k in keys}))
    return out


def useful_components(components: list[tuple[list[str], set[Any]]]) -> list[tuple[list[str], set[Any]]]:
    """The key positions worth searching: those with many distinct values (a position with one
    value, such as the host of a single-host file, is on nearly every line and only costs)."""
    if not components:
        return []
    most = max(len(values) for _s, values in components)
    return [(s, v) for s, v in components if len(v) >= 2 and 2 * len(v) >= most]
