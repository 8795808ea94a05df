"""The result record of sample and sequence queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Match:
    """One sample or sequence: its join key values and one document per filter.

    ``events`` is in filter order; ``None`` marks a missing-event (``![…]``) slot, which
    Elasticsearch returns as a placeholder with ``"missing": true``. Event queries run through
    the streaming engine yield ``Match((), (doc,))``.
    """

    join_keys: tuple
    events: tuple[Any, ...]
