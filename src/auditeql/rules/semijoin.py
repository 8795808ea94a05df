"""Join-key semi-join for ``scan``: skip candidate events whose join key can never complete a result.

Why: push-down (:mod:`auditeql.rules.pushdown`) skips the events no filter can match, but the
seed rule's first filter (an execve of a shell or interpreter) is true for about a fifth of all
events of a busy machine, and each kept event costs a full ECS document. A ``sample`` or
``sequence`` only produces a result for a join key that has a match for *every* (positive) stage;
on the recordings only ~3% of events belong to such keys. Knowing that needs the whole input, so
for regular files ``scan`` reads them twice:

1. **census** (:class:`SemiJoin` fed by a census-mode line feeder): every plain SYSCALL line that
   some filter may match gives its filters (the push-down mask from ``syscall``/``comm``) and its
   raw join key — ``host.id`` (the normalizer's host), ``pid=``, ``ppid=`` — with no parsing;
   every other event (not headed by a plain SYSCALL line) is normalized and its document is
   tested exactly (compiled predicates, the engine's key extractor).
2. :meth:`SemiJoin.finish` intersects, per rule, the key sets of its positive stages;
   the candidate events whose key is outside that intersection for every rule they may match
   are listed by header (``sec.ms:serial``) and skipped in the second, real pass like any other
   skipped event (deferred, so process ancestry is unchanged).

Exactness: a candidate set is a superset of the true matches (push-down is exact in that
direction), so the intersection is a superset of the keys that can have a result; an event
whose key is outside it cannot be part of any sample or sequence, and schedule replay only
narrows further. ``until`` and missing (``![…]``) stages are kept for keys inside the
intersection. Rules with a key the raw line does not give (anything but the three fields
below), with optional keys, or event queries are not narrowed at all. A header seen twice with
different keys is never skipped, and the second pass re-checks the raw key before skipping.
``tests/perf/test_pushdown_exact.py`` compares alerts with and without all of this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditeql.engine.keys import make_extractor
from auditeql.eql.plan import CompiledFilter, EventPlan, SamplePlan, SequencePlan

#: Join-key fields a plain SYSCALL line determines, and their position in a raw key.
RAW_KEY_FIELDS: Mapping[str, int] = {"host.id": 0, "process.pid": 1, "process.parent.pid": 2}

RawKey = tuple[Any, int, int]
_CONFLICT = object()


@dataclass(frozen=True)
class _Stage:
    """One filter of a narrowed rule: its global push-down index, role and key projection."""

    index: int
    positive: bool
    projection: tuple[int, ...]
    predicate: Callable[[Mapping[str, Any]], bool]
    extract: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class _RuleJoin:
    stages: tuple[_Stage, ...]


def _stages_of(plan: Any) -> tuple[list[tuple[CompiledFilter, bool]], bool]:
    """(filters with 'positive' flags, narrowable?) in :func:`plan_filters` order."""
    if isinstance(plan, SamplePlan):
        return [(f, True) for f in plan.filters], True
    if isinstance(plan, SequencePlan):
        out = [(f, not f.missing) for f in plan.filters]
        if plan.until is not None:
            out.append((plan.until, False))
        return out, True
    if isinstance(plan, EventPlan):
        return [(plan.filter, True)], False
    return [], False


class SemiJoin:
    """Per-rule key sets from a census pass, then the headers of events no rule needs."""

    def __init__(self, joins: Sequence[_RuleJoin], always: int, n_filters: int) -> None:
        self._joins = tuple(joins)
        #: filters of rules that are not narrowed: a candidate of one of them is always kept
        self.always = always
        self.n_filters = n_filters
        self._keys: dict[int, set[tuple]] = {s.index: set() for j in joins for s in j.stages}
        #: (mask bit, projection or None for the identity, key set) per stage: note_raw's loop
        self._raw_plan = [
            (1 << s.index, None if s.projection == (0, 1, 2) else s.projection, self._keys[s.index])
            for j in joins for s in j.stages
        ]
        self._raw: dict[bytes, Any] = {}
        self._skip: dict[bytes, tuple[int, RawKey]] | None = None
        self.census_candidates = 0
        self.census_documents = 0

    @classmethod
    def from_rules(cls, rules: Sequence[Any]) -> SemiJoin | None:
        """For the loaded rules (the same filter order as :class:`~auditeql.rules.pushdown.PushDown`);
        None when no rule can be narrowed."""
        joins: list[_RuleJoin] = []
        always = 0
        index = 0
        for rule in rules:
            plan = rule.plan
            if plan is None:
                return None
            stages, narrowable = _stages_of(plan)
            projections: list[tuple[int, ...]] = []
            for flt, _positive in stages:
                if any(k.optional or k.path not in RAW_KEY_FIELDS for k in flt.keys) or not flt.keys:
                    narrowable = False
                    break
                projections.append(tuple(RAW_KEY_FIELDS[k.path] for k in flt.keys))
            if narrowable and any(positive for _f, positive in stages):
                joins.append(_RuleJoin(tuple(
                    _Stage(index + i, positive, proj, flt.predicate, make_extractor(flt.keys))
                    for i, ((flt, positive), proj) in enumerate(zip(stages, projections))
                )))
            else:
                for i in range(len(stages)):
                    always |= 1 << (index + i)
            index += len(stages)
        if not joins:
            return None
        return cls(joins, always, index)

    # -- census ----------------------------------------------------------------------------
    def note_raw(self, header: bytes, mask: int, key: RawKey) -> None:
        """A plain SYSCALL-headed event that the filters in ``mask`` may match."""
        self.census_candidates += 1
        seen = self._raw.get(header)
        if seen is None:
            self._raw[header] = (mask, key)
        elif seen is not _CONFLICT and seen != (mask, key):
            self._raw[header] = _CONFLICT
        for bit, projection, keyset in self._raw_plan:
            if mask & bit:
                keyset.add(key if projection is None else tuple(key[p] for p in projection))

    def note_document(self, doc: Mapping[str, Any]) -> None:
        """A document built in the census pass (an event not headed by a plain SYSCALL line)."""
        self.census_documents += 1
        keys = self._keys
        for join in self._joins:
            for stage in join.stages:
                if stage.predicate(doc):
                    got = stage.extract(doc)
                    if got is None:
                        continue
                    if type(got) is tuple:
                        keys[stage.index].add(got)
                    else:
                        keys[stage.index].update(got)

    def finish(self) -> None:
        """Intersect the key sets per rule and list the events no rule needs."""
        wanted: list[tuple[_RuleJoin, set[tuple]]] = []
        for join in self._joins:
            positive = [self._keys[s.index] for s in join.stages if s.positive]
            complete = set.intersection(*positive) if positive else set()
            wanted.append((join, complete))
        skip: dict[bytes, tuple[int, RawKey]] = {}
        always = self.always
        for header, seen in self._raw.items():
            if seen is _CONFLICT:
                continue
            mask, key = seen
            if mask & always or key[0] is None:
                continue
            needed = False
            for join, complete in wanted:
                for stage in join.stages:
                    if mask >> stage.index & 1 and tuple(key[p] for p in stage.projection) in complete:
                        needed = True
                        break
                if needed:
                    break
            if not needed:
                skip[header] = seen
        self._skip = skip
        self._raw = {}
        self._keys = {}
        self._raw_plan = []

    # -- second pass -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._skip is not None

    def skips(self, header: bytes, mask: int, key: RawKey | None) -> bool:
        """Did the census find that no rule needs this candidate event (same header, same filters,
        same raw key as when it was counted)?"""
        return self._skip is not None and key is not None and self._skip.get(header) == (mask, key)

    @property
    def skipped_headers(self) -> int:
        return len(self._skip or ())
