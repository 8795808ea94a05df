"""``sample``: batch (Elasticsearch-identical) and streaming (event by event) matching.

Batch follows Elasticsearch's SampleIterator (spec §1.3): a key takes part when every filter has
a matching document under it; for each key each filter contributes at most
``#filters + max_samples_per_key - 1`` candidates; a depth-first search over the candidates (in
filter order) skips documents already used in the partial sample and stops after
``max_samples_per_key`` samples; keys are visited in ascending key order and the run stops at
``size`` samples. Where Elasticsearch leaves the documents open (its candidates are whatever the
per-key searches return first), we take the earliest events (timestamp, tiebreaker, input order;
documents without a timestamp after those with one) — see docs/deviations.md.

Streaming emits a sample the moment it completes: the new event is placed in each slot it can
fill and the other slots are searched, earliest candidates first, with the rule that all events
of a sample lie within ``window`` of each other.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from auditeql.engine.keys import ExtractorCache, display_key, key_sort_key
from auditeql.engine.match import Match
from auditeql.engine.ordering import make_order_key
from auditeql.eql.plan import QueryOptions, SamplePlan

_NO_TS = float("inf")


def _search(cands: list[list[int]], need: int) -> list[tuple[int, ...]]:
    """Depth-first, filter by filter, distinct documents; the first ``need`` complete tuples."""
    found: list[tuple[int, ...]] = []
    n = len(cands)
    chosen: list[int] = []

    def walk(i: int) -> bool:
        if i == n:
            found.append(tuple(chosen))
            return len(found) >= need
        for c in cands[i]:
            if c in chosen:
                continue
            chosen.append(c)
            if walk(i + 1):
                return True
            chosen.pop()
        return False

    walk(0)
    return found


def run_sample_batch(
    plan: SamplePlan, docs: Iterable[Mapping[str, Any]], options: QueryOptions, stats: dict | None = None
) -> list[Match]:
    """All samples of ``plan`` over ``docs``, exactly as Elasticsearch's response orders them."""
    filters = plan.filters
    nf = len(filters)
    per_key = max(options.max_samples_per_key, 1)
    cap = nf + per_key - 1
    preds = [f.predicate for f in filters]
    cache = ExtractorCache([f.keys for f in filters])
    slot_of = cache.slot_of
    extractors = cache.extractors
    nslots = len(extractors)
    table: dict[tuple, list[list[int]]] = {}
    doc_list = docs if isinstance(docs, list) else list(docs)
    matched_docs = 0
    last_hit = -1
    rng = range(nf)
    items = tuple(enumerate(preds))
    for idx, doc in enumerate(doc_list):
        for i, pred in items:  # the hot loop: nothing but the predicates for most events
            if not pred(doc):
                continue
            if last_hit != idx:
                last_hit = idx
                matched_docs += 1
                extracted: list = [False] * nslots
            s = slot_of[i]
            ks = extracted[s]
            if ks is False:
                ks = extracted[s] = extractors[s](doc)
            if ks is None:
                continue
            if type(ks) is tuple:
                ks = (ks,)
            for k in ks:
                lists = table.get(k)
                if lists is None:
                    lists = table[k] = [[] for _ in rng]
                lst = lists[i]
                if not lst or lst[-1] != idx:
                    lst.append(idx)
    if stats is not None:
        stats["documents"] = len(doc_list)
        stats["matched_documents"] = matched_docs
        stats["keys"] = len(table)

    order_key = make_order_key(options.timestamp_field, options.tiebreaker_field)
    okeys: dict[int, tuple] = {}

    def earliest(idx: int) -> tuple:
        k = okeys.get(idx)
        if k is None:
            k = order_key(doc_list[idx], idx) or (_NO_TS, idx)
            okeys[idx] = k
        return k

    complete = [(key_sort_key(k), k, lists) for k, lists in table.items() if all(lists)]
    complete.sort(key=lambda item: item[0])
    out: list[Match] = []
    size = options.size
    for _sk, key, lists in complete:
        if len(out) >= size:
            break
        capped = []
        for lst in lists:
            if len(lst) > 1:
                lst = sorted(lst, key=earliest)[:cap]
            capped.append(lst)
        jk = display_key(key)
        for combo in _search(capped, per_key):
            out.append(Match(jk, tuple(doc_list[i] for i in combo)))
            if len(out) >= size:
                break
    return out


def _identity(x: Any) -> Any:
    return x


class _KeyState:
    """Streaming state of one key: candidates per filter, emission times."""

    __slots__ = ("cands", "emitted", "last_ts")

    def __init__(self, nf: int) -> None:
        self.cands: list[list[tuple[int, int, Any]]] = [[] for _ in range(nf)]
        self.emitted: list[int] = []  # latest-event timestamp of each emitted sample
        self.last_ts = 0


class StreamingSampler:
    """Event-by-event samples with a time window and hard memory bounds.

    * A sample's events lie within ``window_ns`` of each other (max - min <= window).
    * Per key at most ``max_samples_per_key`` samples are emitted per window: after that the key
      is muted until the latest event of its last sample is more than ``window`` old. By then
      every event of that sample has left the window, so a later sample for the same key
      (a recycled pid, a new exec) is made of new events only and is a new alert, never a
      duplicate.
    * Memory: at most ``max_keys`` keys (least recently used evicted first) and
      ``max_pending`` candidates per key and filter (oldest dropped first), both counted.
    """

    def __init__(
        self,
        plan: SamplePlan,
        options: QueryOptions,
        *,
        window_ns: int,
        max_keys: int,
        max_pending: int,
        stats: dict,
        pack: Callable[[Any], Any] = _identity,
        unpack: Callable[[Any], Any] = _identity,
    ) -> None:
        self.pack = pack
        self.unpack = unpack
        self.filters = plan.filters
        self.nf = len(self.filters)
        self.preds = [f.predicate for f in self.filters]
        self.items = tuple(enumerate(self.preds))
        cache = ExtractorCache([f.keys for f in self.filters])
        self.slot_of = cache.slot_of
        self.extractors = cache.extractors
        self.per_key = max(options.max_samples_per_key, 1)
        self.window = window_ns
        self.max_keys = max_keys
        self.max_pending = max(max_pending, self.nf + self.per_key - 1)
        self.states: OrderedDict[tuple, _KeyState] = OrderedDict()
        self.stats = stats
        self.clock = -(1 << 62)

    # -- hot path ---------------------------------------------------------------------------
    def match(self, doc: Mapping[str, Any]) -> list[tuple[int, Any]] | None:
        """(filter index, extracted keys) for every filter ``doc`` matches; each predicate once."""
        hits: list[tuple[int, Any]] | None = None
        extracted: list | None = None
        for i, pred in self.items:
            if not pred(doc):
                continue
            if extracted is None:
                extracted = [False] * len(self.extractors)
            s = self.slot_of[i]
            ks = extracted[s]
            if ks is False:
                ks = extracted[s] = self.extractors[s](doc)
            if ks is None:
                continue
            if hits is None:
                hits = []
            hits.append((i, ks))
        return hits

    def apply(self, hits: list[tuple[int, Any]], doc: Mapping[str, Any], ts: int, n: int) -> list[Match]:
        """Add a matching event (``n`` = arrival number); return the samples it completes."""
        if ts > self.clock:
            self.clock = ts
        if len(hits) == 1 and type(hits[0][1]) is tuple:
            out = self._on_key(hits[0][1], [hits[0][0]], doc, ts, n)
        else:
            by_key: dict[tuple, list[int]] = {}
            for i, ks in hits:
                for k in (ks,) if type(ks) is tuple else ks:
                    by_key.setdefault(k, []).append(i)
            out = []
            for key, slots in by_key.items():
                out.extend(self._on_key(key, slots, doc, ts, n))
        if len(self.states) > self.max_keys:
            self._evict_capacity()
        return out

    def process(self, doc: Mapping[str, Any], ts: int, n: int) -> list[Match]:
        """``match`` + ``apply``."""
        hits = self.match(doc)
        return self.apply(hits, doc, ts, n) if hits else []

    def _on_key(self, key: tuple, slots: list[int], doc: Any, ts: int, n: int) -> list[Match]:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = _KeyState(self.nf)
        else:
            self.states.move_to_end(key)
        window = self.window
        horizon = self.clock - window
        # drop candidates that left the window
        for lst in st.cands:
            if lst and lst[0][0] < horizon:
                cut = 0
                while cut < len(lst) and lst[cut][0] < horizon:
                    cut += 1
                del lst[:cut]
        if st.emitted and min(st.emitted) < horizon:
            st.emitted = [t for t in st.emitted if t >= horizon]
        out: list[Match] = []
        need = self.per_key - len(st.emitted)
        entry = (ts, n, self.pack(doc))
        if need > 0:
            unpack = self.unpack
            for combo in self._complete(st, slots, entry, need):
                out.append(Match(display_key(key), tuple(unpack(c[2]) for c in combo)))
                st.emitted.append(max(c[0] for c in combo))
                need -= 1
            if need == 0:
                # Muted until the oldest emitted sample leaves the window; by then every
                # candidate at or before it has left too: forget them now (memory, not semantics).
                upto = min(st.emitted)
                for lst in st.cands:
                    if lst and lst[0][0] <= upto:
                        cut = 0
                        while cut < len(lst) and lst[cut][0] <= upto:
                            cut += 1
                        del lst[:cut]
        if need <= 0 and ts <= min(st.emitted):
            if ts > st.last_ts:
                st.last_ts = ts
            return out  # muted, and this event will have left the window when the mute ends
        for i in slots:
            lst = st.cands[i]
            if not lst or lst[-1][0] < ts or (lst[-1][0] == ts and lst[-1][1] < n):
                lst.append(entry)
            else:
                bisect.insort(lst, entry, key=lambda e: (e[0], e[1]))
            if len(lst) > self.max_pending:
                del lst[0]
                self.stats["evicted_candidates"] += 1
        if ts > st.last_ts:
            st.last_ts = ts
        return out

    def _complete(self, st: _KeyState, slots: list[int], new: tuple, need: int) -> list[list[tuple]]:
        """Samples that contain ``new``, lexicographically earliest first (filter order).

        Same order as the batch search (earliest candidate in filter 1, then filter 2, ...),
        restricted to samples using the new event, which is what makes them new.
        """
        nf = self.nf
        cands = st.cands
        for i in range(nf):
            if not cands[i] and i not in slots:
                return []
        window = self.window
        lists: list[list[tuple]] = []
        for i in range(nf):
            if i in slots:
                lst = list(cands[i])
                bisect.insort(lst, new, key=lambda e: (e[0], e[1]))
                lists.append(lst)
            else:
                lists.append(cands[i])
        last_slot = max(slots)
        new_n = new[1]
        found: list[list[tuple]] = []
        chosen: list[tuple] = []

        def walk(i: int, lo: int, hi: int, used_new: bool) -> bool:
            if i == nf:
                if used_new:
                    found.append(list(chosen))
                    return len(found) >= need
                return False
            if not used_new and i > last_slot:
                return False
            for c in lists[i]:
                t = c[0]
                nlo = t if t < lo else lo
                nhi = t if t > hi else hi
                if nhi - nlo > window:
                    continue
                cn = c[1]
                if any(cn == x[1] for x in chosen):
                    continue
                chosen.append(c)
                if walk(i + 1, nlo, nhi, used_new or cn == new_n):
                    return True
                chosen.pop()
            return False

        walk(0, new[0], new[0], False)
        return found

    # -- housekeeping -----------------------------------------------------------------------
    def expire(self, clock: int) -> None:
        """Drop keys whose newest event left the window (they can neither complete nor mute)."""
        if clock > self.clock:
            self.clock = clock
        horizon = self.clock - self.window
        states = self.states
        while states:
            key = next(iter(states))
            if states[key].last_ts >= horizon:
                break
            del states[key]
            self.stats["evicted_keys_expired"] += 1

    def _evict_capacity(self) -> None:
        while len(self.states) > self.max_keys:
            self.states.popitem(last=False)
            self.stats["evicted_keys_capacity"] += 1

    def sizes(self) -> dict:
        return {
            "keys": len(self.states),
            "pending": sum(len(lst) for st in self.states.values() for lst in st.cands),
        }
