"""``size``, ``| head N`` and ``| tail N``, combined the way Elasticsearch combines them.

Elasticsearch inserts the request ``size`` as an implicit limit *before the first pipe, in that
pipe's direction* (no pipe: an implicit ``head size``), then applies the pipes in order; its
optimizer merges consecutive limits, which gives the same result as applying them one after the
other (``size=2 | head 50`` -> 2; ``tail 10 | head 7`` -> the first 7 of the last 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditeql.eql.plan import Pipe


def apply_limits(results: list[Any], size: int, pipes: Sequence[Pipe]) -> list[Any]:
    """``results`` (ascending order) cut down by ``size`` and the head/tail pipes."""
    limits = [(p.kind, p.count) for p in pipes if p.kind in ("head", "tail")]
    if not limits:
        limits = [("head", size)]
    else:
        limits.insert(0, (limits[0][0], size))
    out = results
    for kind, n in limits:
        n = max(n, 0)
        if kind == "head":
            out = out[:n]
        else:
            out = out[max(len(out) - n, 0) :]
    return out
