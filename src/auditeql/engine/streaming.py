"""Streaming execution: events pushed one at a time, results emitted the moment they complete.

Time is *event time* (the documents' timestamps), never the wall clock, except through
``advance(now_ms)``, which a live caller uses to say "no event older than now will come".
Only documents that match at least one filter move event time (the others are never parsed
for their timestamp: it is the hot path); a live caller therefore calls ``advance`` now and
then, so that buffered events and pending verdicts are released even when matches are rare.

* **Sequences** need ordinal order. Events wait in a reorder buffer (a heap on
  (timestamp, tiebreaker, arrival)) until event time has moved ``reorder_ms`` past them; the
  *horizon* is ``newest timestamp seen - reorder_ms`` (or ``now - reorder_ms`` after
  ``advance``). An event older than the horizon is **late**: it is counted and dropped, because
  applying it out of order could produce sequences Elasticsearch would not. Trailing missing-event
  verdicts are taken only for deadlines before the horizon. A query without ``maxspan`` gets the
  window as its span (a sequence longer than the window is never reported).
* **Samples** do not depend on order, so events are applied immediately (no delay). An event
  older than ``newest - reorder_ms`` is counted as late; it is still used if it lies within the
  window of the newest event, dropped otherwise.
* **Event queries** emit ``Match((), (doc,))`` for every matching document immediately.
* ``size``/``head``/``tail`` are batch notions and are not applied while streaming.

Memory is bounded by ``max_keys`` key states (least recently used evicted first) and
``max_pending`` pending items per key, plus ``max_buffer`` events in the reorder buffer (when
full, the oldest event is processed early); every eviction is counted in :meth:`stats`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

import orjson

from auditeql.engine.match import Match
from auditeql.engine.ordering import doc_timestamp_ns, make_tiebreaker
from auditeql.engine.sample import StreamingSampler
from auditeql.engine.sequence import SequenceCore
from auditeql.eql.plan import EventPlan, Plan, QueryOptions, SamplePlan, SequencePlan

_NS = 1_000_000
_EXPIRE_EVERY = 1024  # events between expiry sweeps (the sweep is cheap; this just amortises it)


def _pack(doc: Any) -> Any:
    """A held document as compact JSON bytes (about a quarter of a dict's memory)."""
    try:
        # orjson's result sits in a 4 KiB allocation whatever its length; copying it into an
        # exact-size bytes object is what actually saves the memory
        return bytes(memoryview(orjson.dumps(doc)))
    except (TypeError, orjson.JSONEncodeError):
        return doc  # not JSON-shaped (e.g. a datetime value): keep the object itself


def _unpack(held: Any) -> Any:
    return orjson.loads(held) if type(held) is bytes else held


class StreamingEngine:
    """Run one compiled query over an unbounded event stream.

    ``compact`` (default on) stores the documents held in pending state as JSON bytes and
    decodes them when a result is emitted: emitted events are then equal copies of the pushed
    documents, not the same objects. It is what keeps a 9-minute window of a busy host small.
    """

    def __init__(
        self,
        plan: Plan,
        options: QueryOptions | None = None,
        *,
        window_ms: int,
        reorder_ms: int = 2000,
        max_keys: int = 250_000,
        max_pending: int = 16,
        max_buffer: int = 100_000,
        compact: bool = True,
    ) -> None:
        if window_ms < 0:
            raise ValueError("window_ms must be >= 0 (for rules: the look-back, e.g. 9 minutes = 540000)")
        if reorder_ms < 0:
            raise ValueError("reorder_ms must be >= 0")
        self.plan = plan
        self.options = options or QueryOptions()
        self.window = window_ms * _NS
        self.reorder = reorder_ms * _NS
        self.max_buffer = max_buffer
        self._ts_field = self.options.timestamp_field
        self._tb = make_tiebreaker(self.options.tiebreaker_field)
        self._stats: dict[str, int] = {
            "events": 0,
            "matched_results": 0,
            "no_timestamp": 0,
            "late_events": 0,
            "late_dropped": 0,
            "evicted_keys_expired": 0,
            "evicted_keys_capacity": 0,
            "evicted_candidates": 0,
            "evicted_pending": 0,
            "buffer_forced_releases": 0,
            "max_buffer_seen": 0,
        }
        self._newest = -(1 << 62)
        self._horizon = -(1 << 62)
        self._n = 0
        self._pn = 0
        self._since_expire = 0
        self._buffer: list[tuple] = []
        self._sampler: StreamingSampler | None = None
        self._core: SequenceCore | None = None
        pack, unpack = (_pack, _unpack) if compact else (None, None)
        if isinstance(plan, SamplePlan):
            self._sampler = StreamingSampler(plan, self.options, window_ns=self.window, max_keys=max_keys,
                                             max_pending=max_pending, stats=self._stats,
                                             **({"pack": pack, "unpack": unpack} if compact else {}))
        elif isinstance(plan, SequencePlan):
            span = plan.maxspan_ms * _NS if plan.maxspan_ms is not None else self.window
            self._core = SequenceCore(plan, span_ns=span, stats=self._stats, max_keys=max_keys,
                                      max_pending=max_pending, pack=pack, unpack=unpack)
        elif not isinstance(plan, EventPlan):
            raise TypeError(f"StreamingEngine: unsupported plan {type(plan).__name__}")

    # -- input ------------------------------------------------------------------------------
    def push(self, doc: Mapping[str, Any]) -> list[Match]:
        """Feed one document; return the results it completes (possibly releasing others)."""
        st = self._stats
        st["events"] += 1
        plan = self.plan
        if self._sampler is None and self._core is None:
            if plan.filter.predicate(doc):  # type: ignore[union-attr]
                st["matched_results"] += 1
                return [Match((), (doc,))]
            return []
        if self._sampler is not None:
            return self._push_sample(doc)
        return self._push_sequence(doc)

    def _timestamp(self, doc: Mapping[str, Any]) -> int | None:
        ts = doc_timestamp_ns(doc, self._ts_field)
        if ts is None:
            self._stats["no_timestamp"] += 1
        return ts

    def _push_sample(self, doc: Mapping[str, Any]) -> list[Match]:
        sampler = self._sampler
        assert sampler is not None
        hits = sampler.match(doc)
        if not hits:
            return []
        ts = self._timestamp(doc)
        if ts is None:
            return []
        n = self._n = self._n + 1
        if ts > self._newest:
            self._newest = ts
        elif ts < self._newest - self.reorder:
            self._stats["late_events"] += 1
            if ts < self._newest - self.window:
                self._stats["late_dropped"] += 1
                return []
        out = sampler.apply(hits, doc, ts, n)
        self._since_expire += 1
        if self._since_expire >= _EXPIRE_EVERY:
            self._since_expire = 0
            sampler.expire(self._newest)
        if out:
            self._stats["matched_results"] += len(out)
        return out

    def _push_sequence(self, doc: Mapping[str, Any]) -> list[Match]:
        core = self._core
        assert core is not None
        mask = core.mask(doc)
        if not mask:
            return []
        ts = self._timestamp(doc)
        if ts is None:
            return []
        n = self._n = self._n + 1
        if ts < self._horizon:
            self._stats["late_events"] += 1
            self._stats["late_dropped"] += 1
            return []
        if ts > self._newest:
            self._newest = ts
        out: list[tuple] = []
        if self.reorder == 0 and not self._buffer:
            out.extend(core.process(doc, ts, self._next_pn(), mask))
        else:
            tb = self._tb(doc) if self._tb is not None else ()
            heapq.heappush(self._buffer, (ts, tb, n, mask, doc))
            if len(self._buffer) > self._stats["max_buffer_seen"]:
                self._stats["max_buffer_seen"] = len(self._buffer)
        horizon = self._newest - self.reorder
        if horizon > self._horizon:
            self._horizon = horizon
        out.extend(self._release(self._horizon))
        while len(self._buffer) > self.max_buffer:
            ts0, _tb, n0, m0, d0 = heapq.heappop(self._buffer)
            self._stats["buffer_forced_releases"] += 1
            if ts0 > self._horizon:
                self._horizon = ts0
            out.extend(core.process(d0, ts0, self._next_pn(), m0))
        self._since_expire += 1
        if core.deadlines and core.deadlines[0][0] < self._horizon:
            out.extend(core.settle(self._horizon))
        if self._since_expire >= _EXPIRE_EVERY:
            self._since_expire = 0
            core.expire(self._horizon)
        return self._emit(out)

    def _release(self, upto: int) -> list[tuple]:
        core = self._core
        buf = self._buffer
        out: list[tuple] = []
        while buf and buf[0][0] <= upto:
            ts, _tb, _n, m, doc = heapq.heappop(buf)
            out.extend(core.process(doc, ts, self._next_pn(), m))  # type: ignore[union-attr]
        return out

    def _next_pn(self) -> int:
        """Processing number: the ordinal rank the sequence matcher sees (release order)."""
        self._pn += 1
        return self._pn

    def _emit(self, items: list[tuple]) -> list[Match]:
        if not items:
            return []
        if len(items) > 1:
            items.sort(key=lambda r: r[0])
        self._stats["matched_results"] += len(items)
        return [m for _, m in items]

    # -- time -------------------------------------------------------------------------------
    def advance(self, now_ms: int | float) -> list[Match]:
        """Event time is now ``now_ms``: release buffered events, settle verdicts, evict state."""
        now = int(now_ms * _NS)
        if self._sampler is not None:
            self._sampler.expire(now)
            if now > self._newest:
                self._newest = now
            return []
        core = self._core
        if core is None:
            return []
        horizon = now - self.reorder
        if horizon > self._horizon:
            self._horizon = horizon
        out = self._release(self._horizon)
        out.extend(core.settle(self._horizon))
        core.expire(self._horizon)
        return self._emit(out)

    def flush(self) -> list[Match]:
        """End of input: process everything buffered and settle every pending verdict."""
        core = self._core
        if core is None:
            return []
        out = self._release(1 << 62)
        if self._newest > self._horizon:
            self._horizon = self._newest
        out.extend(core.settle(0, final=True))
        return self._emit(out)

    # -- introspection ----------------------------------------------------------------------
    def held_ms(self) -> tuple[float, float]:
        """(oldest, newest): the event time in ms of the oldest event waiting in the reorder
        buffer (``inf`` when none waits), and an upper bound of the times of every event that
        ever entered it (``-inf`` for queries that never buffer: samples, event queries).

        Why: a live reader saving its read position (``watch``'s checkpoint) may pass an event
        only once it has left this buffer; a position taken when ``newest`` was N is safe as soon
        as ``oldest`` > N. Both are in this engine's own time field (``timestamp_override``)."""
        if self._core is None:
            return float("inf"), float("-inf")
        oldest = self._buffer[0][0] / _NS if self._buffer else float("inf")
        return oldest, self._newest / _NS

    def stats(self) -> dict:
        """Counters and current state sizes (keys, pending items, buffered events)."""
        d = dict(self._stats)
        if self._sampler is not None:
            d.update(self._sampler.sizes())
        elif self._core is not None:
            d.update(self._core.sizes())
        else:
            d.update({"keys": 0, "pending": 0})
        d["buffered"] = len(self._buffer)
        return d
