"""``sequence``: Elasticsearch's per-key state machine, fed events in ordinal order.

Elasticsearch (SequenceMatcher, spec §2.3) keeps, per join key and stage, the in-flight sequences;
a hit of stage s takes the *latest* in-flight sequence of stage s-1 that precedes it and discards
that one and every older one (``trimBefore``), then checks maxspan (inclusive, from the first
event) and ``until``; a rejected sequence is gone. Fed in ordinal order, every in-flight
sequence precedes the new hit, so the group always collapses to "the latest one wins": one
pending sequence per (key, stage) is an exact representation, which is what makes streaming cheap.

Missing events (``![…]``, spec §2.4) are checked against the positive matches:
* middle: any event of the stage strictly between the two neighbouring positives' timestamps
  rejects the sequence — known when the next positive arrives;
* leading: the latest event strictly before the first positive — known when it arrives;
* trailing: the earliest event strictly after the last positive — which may lie in the future,
  so such sequences wait (``awaiting``) until that event arrives or event time passes the point
  after which any trailing event would be accepted (first + maxspan, or leading + maxspan).

This module is shared by the batch runner (sorted input, no eviction) and the streaming engine
(reorder-buffered input, expiry and memory bounds).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from auditeql.engine.keys import ExtractorCache, display_key, key_sort_key
from auditeql.engine.match import Match
from auditeql.eql.plan import SequencePlan

# pending sequence layout (tuples: cheap to build, immutable, no per-field objects)
_EVENTS, _FIRST_TS, _LAST_TS, _LAST_N, _LEADING = range(5)


class _Tracker:
    """The latest two distinct timestamps of a missing-stage gap for one key.

    Input arrives in order, so "the latest event strictly before t" (t = current timestamp) is
    ``last`` if ``last < t`` else ``prev`` — no history needs to be kept.
    """

    __slots__ = ("last", "prev")

    def __init__(self) -> None:
        self.last: int | None = None
        self.prev: int | None = None

    def add(self, ts: int) -> None:
        if self.last is None or ts > self.last:
            self.prev = self.last
            self.last = ts

    def before(self, ts: int) -> int | None:
        if self.last is not None and self.last < ts:
            return self.last
        return self.prev if (self.prev is not None and self.prev < ts) else None


class _Awaiting:
    """A completed positive sequence waiting for its trailing-missing verdict."""

    __slots__ = ("key", "seq", "deadline", "done")

    def __init__(self, key: tuple, seq: tuple, deadline: int) -> None:
        self.key = key
        self.seq = seq
        self.deadline = deadline
        self.done = False


class _KeyState:
    __slots__ = ("groups", "until_n", "trackers", "awaiting", "last_ts")

    def __init__(self, npos: int, ngaps: int) -> None:
        self.groups: list[tuple | None] = [None] * npos
        self.until_n = -1
        self.trackers: list[_Tracker | None] = [None] * ngaps
        self.awaiting: list[_Awaiting] | None = None
        self.last_ts = 0


class SequenceCore:
    """The matcher. ``process`` must be called in ordinal order; results carry their sort key."""

    def __init__(
        self,
        plan: SequencePlan,
        *,
        span_ns: int | None,
        stats: dict,
        max_keys: int | None = None,
        max_pending: int = 1 << 30,
        pack: Callable[[Any], Any] | None = None,
        unpack: Callable[[Any], Any] | None = None,
    ) -> None:
        self.pack = pack
        self.unpack = unpack
        filters = plan.filters
        self.nfilters = len(filters)
        self.positions = [i for i, f in enumerate(filters) if not f.missing]
        npos = self.npos = len(self.positions)
        if npos == 0:
            raise ValueError("a sequence needs at least one positive (non-missing) stage")
        self.maxspan = None if plan.maxspan_ms is None else plan.maxspan_ms * 1_000_000
        self.span = span_ns  # maxspan, or the streaming window when the query has none
        # gap index of each missing filter: 0 = leading, g = between positive g-1 and g, npos = trailing
        self.missing: list[tuple[int, int]] = []  # (filter index, gap)
        for i, f in enumerate(filters):
            if f.missing:
                gap = sum(1 for p in self.positions if p < i)
                self.missing.append((i, gap))
        gaps = {g for _, g in self.missing}
        self.has_leading = 0 in gaps
        self.has_trailing = npos in gaps
        self.middle_gaps = [g in gaps for g in range(npos + 1)]
        self.ngaps = npos + 1
        key_lists = [f.keys for f in filters] + ([plan.until.keys] if plan.until else [])
        cache = ExtractorCache(key_lists)
        self.extractors = cache.extractors
        self.slot_of = cache.slot_of
        # evaluation table: (predicate, extractor slot, kind, arg) in processing order:
        # positives from last to first, then missing stages, then until.
        table: list[tuple] = []
        for j in range(npos - 1, -1, -1):
            i = self.positions[j]
            table.append((filters[i].predicate, cache.slot_of[i], 0, j))
        for i, gap in self.missing:
            table.append((filters[i].predicate, cache.slot_of[i], 1, gap))
        if plan.until is not None:
            table.append((plan.until.predicate, cache.slot_of[self.nfilters], 2, 0))
        self.table = table
        # one evaluation per distinct predicate (``with runs=N`` repeats the same function)
        distinct: dict[int, int] = {}
        for bit_index, entry in enumerate(table):
            distinct[id(entry[0])] = distinct.get(id(entry[0]), 0) | (1 << bit_index)
        by_id = {id(t[0]): t[0] for t in table}
        self.pred_bits = [(by_id[pid], bits) for pid, bits in distinct.items()]
        self.states: OrderedDict[tuple, _KeyState] | dict[tuple, _KeyState] = (
            OrderedDict() if max_keys is not None else {}
        )
        self.lru = max_keys is not None
        self.max_keys = max_keys
        self.max_pending = max_pending
        self.deadlines: list[tuple[int, int, _Awaiting]] = []
        self._dl_count = 0
        self.stats = stats
        for name in ("rejected_maxspan", "rejected_until", "rejected_missing", "evicted_keys_expired",
                     "evicted_keys_capacity", "evicted_pending"):
            stats.setdefault(name, 0)

    # -- evaluation -------------------------------------------------------------------------
    def mask(self, doc: Mapping[str, Any]) -> int:
        """Bit i set when table entry i's predicate matches (each predicate evaluated once)."""
        m = 0
        for p, bits in self.pred_bits:
            if p(doc):
                m |= bits
        return m

    def process(self, doc: Mapping[str, Any], ts: int, n: int, mask: int) -> list[tuple]:
        """Apply one event (``n`` increases with every call). Returns ``(order, Match)`` items."""
        out: list[tuple] = []
        extracted: list = [False] * len(self.extractors)
        bit = 1
        for _pred, slot, kind, arg in self.table:
            if mask & bit:
                ks = extracted[slot]
                if ks is False:
                    ks = extracted[slot] = self.extractors[slot](doc)
                if ks is not None:
                    for k in (ks,) if type(ks) is tuple else ks:
                        if kind == 0:
                            self._positive(arg, k, doc, ts, n, out)
                        elif kind == 1:
                            self._missing_event(arg, k, ts, out)
                        else:
                            st = self.states.get(k)
                            if st is not None:
                                st.until_n = n
            bit <<= 1
        if self.lru and len(self.states) > self.max_keys:
            self._evict_capacity()
        return out

    def _state(self, key: tuple, ts: int) -> _KeyState:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = _KeyState(self.npos, self.ngaps)
        elif self.lru:
            self.states.move_to_end(key)  # type: ignore[union-attr]
        if ts > st.last_ts:
            st.last_ts = ts
        return st

    def _positive(self, j: int, key: tuple, doc: Any, ts: int, n: int, out: list) -> None:
        if j == 0:
            st = self._state(key, ts)
            leading = None
            if self.has_leading:
                tr = st.trackers[0]
                leading = tr.before(ts) if tr is not None else None
            seq = ((doc if self.pack is None else self.pack(doc),), ts, ts, n, leading)
            if self.npos == 1:
                self._complete(st, key, seq, out)
            else:
                st.groups[0] = seq
            return
        st = self.states.get(key)
        if st is None:
            return
        prev = st.groups[j - 1]
        if prev is None:
            return
        st.groups[j - 1] = None  # trimBefore: the latest pending sequence is consumed, older ones are gone
        if self.lru:
            self.states.move_to_end(key)  # type: ignore[union-attr]
        if ts > st.last_ts:
            st.last_ts = ts
        span = self.span
        if span is not None and ts - prev[_FIRST_TS] > span:
            self.stats["rejected_maxspan"] += 1
            return
        if st.until_n >= prev[_LAST_N]:
            self.stats["rejected_until"] += 1
            return
        if self.middle_gaps[j] and j < self.npos:
            tr = st.trackers[j]
            if tr is not None:
                t = tr.before(ts)
                if t is not None and t > prev[_LAST_TS]:
                    self.stats["rejected_missing"] += 1
                    return
        if self.pack is not None:
            doc = self.pack(doc)
        seq = (prev[_EVENTS] + (doc,), prev[_FIRST_TS], ts, n, prev[_LEADING])
        if j == self.npos - 1:
            self._complete(st, key, seq, out)
        else:
            st.groups[j] = seq

    def _missing_event(self, gap: int, key: tuple, ts: int, out: list) -> None:
        if gap == self.npos:  # trailing: settles awaiting sequences of this key
            st = self.states.get(key)
            if st is None or not st.awaiting:
                return
            keep = []
            for aw in st.awaiting:
                if aw.done:
                    continue
                seq = aw.seq
                if ts <= seq[_LAST_TS]:
                    keep.append(aw)
                    continue
                aw.done = True
                ref = seq[_LEADING] if self.has_leading else seq[_FIRST_TS]
                if ts - ref > self._maxspan_or_inf():
                    out.append(self._result(key, seq))
                else:
                    self.stats["rejected_missing"] += 1
            st.awaiting = keep or None
            return
        st = self._state(key, ts) if gap == 0 else self.states.get(key)
        if st is None:
            return
        tr = st.trackers[gap]
        if tr is None:
            tr = st.trackers[gap] = _Tracker()
        tr.add(ts)

    def _maxspan_or_inf(self) -> float:
        return self.maxspan if self.maxspan is not None else float("inf")

    def _complete(self, st: _KeyState, key: tuple, seq: tuple, out: list) -> None:
        leading = seq[_LEADING]
        if self.has_trailing:
            if self.has_leading:
                if leading is None:
                    out.append(self._result(key, seq))
                    return
                ref = leading
            else:
                ref = seq[_FIRST_TS]
            maxspan = self.maxspan
            if maxspan is None:  # ES requires maxspan with missing events; be safe anyway
                maxspan = 1 << 62
            aw = _Awaiting(key, seq, ref + maxspan)
            if st.awaiting is None:
                st.awaiting = [aw]
            else:
                st.awaiting.append(aw)
                if len(st.awaiting) > self.max_pending:
                    st.awaiting.pop(0).done = True
                    self.stats["evicted_pending"] += 1
            self._dl_count += 1
            heapq.heappush(self.deadlines, (aw.deadline, self._dl_count, aw))
            return
        if self.has_leading and leading is not None and seq[_LAST_TS] - leading <= self._maxspan_or_inf():
            self.stats["rejected_missing"] += 1
            return
        out.append(self._result(key, seq))

    def _result(self, key: tuple, seq: tuple) -> tuple:
        events = seq[_EVENTS]
        if self.unpack is not None:
            events = tuple(self.unpack(e) for e in events)
        if self.npos == self.nfilters:
            full = events
        else:
            slots: list[Any] = [None] * self.nfilters
            for p, ev in zip(self.positions, events):
                slots[p] = ev
            full = tuple(slots)
        return ((seq[_LAST_N], key_sort_key(key)), Match(display_key(key), full))

    # -- time -------------------------------------------------------------------------------
    def settle(self, clock: int, *, final: bool = False) -> list[tuple]:
        """Accept awaiting sequences whose deadline is before ``clock`` (all of them if final)."""
        out: list[tuple] = []
        dl = self.deadlines
        while dl and (final or dl[0][0] < clock):
            _, _, aw = heapq.heappop(dl)
            if aw.done:
                continue
            aw.done = True
            out.append(self._result(aw.key, aw.seq))
            st = self.states.get(aw.key)
            if st is not None and st.awaiting:
                st.awaiting = [a for a in st.awaiting if not a.done] or None
        return out

    def expire(self, clock: int) -> None:
        """Forget keys idle for longer than the span: nothing they hold can still complete."""
        if self.span is None or not self.lru:
            return
        horizon = clock - self.span
        states = self.states
        while states:
            key = next(iter(states))
            st = states[key]
            if st.last_ts >= horizon or st.awaiting:
                break
            del states[key]
            self.stats["evicted_keys_expired"] += 1

    def _evict_capacity(self) -> None:
        while len(self.states) > self.max_keys:  # type: ignore[operator]
            _, st = self.states.popitem(last=False)  # type: ignore[call-arg]
            if st.awaiting:
                for aw in st.awaiting:
                    aw.done = True
                self.stats["evicted_pending"] += len(st.awaiting)
            self.stats["evicted_keys_capacity"] += 1

    def sizes(self) -> dict:
        pending = 0
        for st in self.states.values():
            pending += sum(1 for g in st.groups if g is not None) + len(st.awaiting or ())
        return {"keys": len(self.states), "pending": pending}
