"""Batch execution: a finite input in, Elasticsearch's response out (used by ``auditeql query``).

* Event queries: matching documents in ordinal order, then ``size``/``head``/``tail``.
* Samples: see :mod:`auditeql.engine.sample`.
* Sequences: documents matching any stage are sorted by ordinal and fed to the shared state
  machine; completed sequences are ordered by their last event, then ``size``/``head``/``tail``.

Documents without a usable timestamp cannot be placed in time: event and sequence queries skip
them (counted in ``stats["no_timestamp"]``); samples, which ignore time, use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditeql.engine.limits import apply_limits
from auditeql.engine.match import Match
from auditeql.engine.ordering import make_order_key
from auditeql.engine.sample import run_sample_batch
from auditeql.engine.sequence import SequenceCore
from auditeql.eql.plan import EventPlan, Plan, QueryOptions, SamplePlan, SequencePlan


def run_batch(
    plan: Plan,
    docs: Iterable[Mapping[str, Any]],
    options: QueryOptions | None = None,
    *,
    stats: dict | None = None,
) -> list:
    """Run ``plan`` over ``docs``: matching docs (event query) or ``list[Match]``.

    ``stats``, when given, is filled with counters (documents read, documents skipped for lack
    of a timestamp, rejections) so callers can tell the user what was not used and why.
    """
    options = options or QueryOptions()
    if stats is None:
        stats = {}
    if isinstance(plan, SamplePlan):
        return run_sample_batch(plan, docs, options, stats)
    if isinstance(plan, SequencePlan):
        return _run_sequence(plan, docs, options, stats)
    if isinstance(plan, EventPlan):
        return _run_events(plan, docs, options, stats)
    raise TypeError(f"run_batch: expected an EventPlan, SamplePlan or SequencePlan, got {type(plan).__name__}")


def _run_events(plan: EventPlan, docs: Iterable[Mapping[str, Any]], options: QueryOptions, stats: dict) -> list:
    pred = plan.filter.predicate
    order_key = make_order_key(options.timestamp_field, options.tiebreaker_field)
    hits: list[tuple] = []
    no_ts = 0
    total = 0
    for idx, doc in enumerate(docs):
        total += 1
        if pred(doc):
            k = order_key(doc, idx)
            if k is None:
                no_ts += 1
                continue
            hits.append((k, doc))
    hits.sort(key=lambda h: h[0])
    stats["documents"] = total
    stats["no_timestamp"] = no_ts
    return apply_limits([d for _, d in hits], options.size, plan.pipes)


def _run_sequence(
    plan: SequencePlan, docs: Iterable[Mapping[str, Any]], options: QueryOptions, stats: dict
) -> list[Match]:
    core = SequenceCore(plan, span_ns=None if plan.maxspan_ms is None else plan.maxspan_ms * 1_000_000,
                        stats=stats)
    order_key = make_order_key(options.timestamp_field, options.tiebreaker_field)
    pred_bits = core.pred_bits
    rows: list[tuple] = []
    no_ts = 0
    total = 0
    for idx, doc in enumerate(docs):
        total += 1
        m = 0
        for p, bits in pred_bits:  # each distinct predicate once
            if p(doc):
                m |= bits
        if m:
            k = order_key(doc, idx)
            if k is None:
                no_ts += 1
                continue
            rows.append((k, m, doc))
    rows.sort(key=lambda r: r[0])
    stats["documents"] = total
    stats["no_timestamp"] = no_ts
    results: list[tuple] = []
    process = core.process
    for n, (k, m, doc) in enumerate(rows):
        results.extend(process(doc, k[0], n, m))
    results.extend(core.settle(0, final=True))
    results.sort(key=lambda r: r[0])
    return apply_limits([r[1] for r in results], options.size, plan.pipes)
