"""A brute-force reference for sample and sequence, written plainly from the spec (§1.3, §2.3,
§2.4, §2.5), sharing no code with src/auditeql/engine. Slow on purpose: it enumerates candidate
tuples and replays Elasticsearch's stage-by-stage matcher with explicit lists."""

from __future__ import annotations

import datetime as dt
from itertools import product

from auditeql.fields import values


# ------------------------------------------------------------------------------------------ basics

def ts_ms(v):
    """Timestamp in ms for the values the tests generate (ints, or ISO strings with Z)."""
    if isinstance(v, list):
        v = v[0] if len(v) == 1 else None
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return d.timestamp() * 1000


def typed(v):
    """A key component as (type, value) so that 1, 1.0, True and "1" are told apart properly."""
    if v is None:
        return None
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("num", v)
    if isinstance(v, str):
        return ("str", v)
    return None  # objects cannot be join keys


def untyped(t):
    return None if t is None else t[1]


def order_of_key(key):
    rank = {"bool": 1, "num": 2, "str": 3}
    return tuple((0, 0) if c is None else (rank[c[0]], c[1]) for c in key)


def doc_keys(doc, keyfields):
    """All key tuples of ``doc`` for a list of (path, optional), or [] if it cannot take part."""
    comps = []
    for path, optional in keyfields:
        vals = []
        for v in values(doc, path):
            t = typed(v)
            if t is not None and t not in vals:
                vals.append(t)
        if not vals:
            if not optional:
                return []
            vals = [None]
        comps.append(vals)
    return [tuple(c) for c in product(*comps)]


def tiebreak(doc, field):
    if field is None:
        return ()
    vals = values(doc, field)
    v = vals[0] if vals else None
    if v is None:
        return ((1, 0),)
    return ((0, v),)


# ------------------------------------------------------------------------------------------ sample

def ref_sample(filters, docs, *, size=10, per_key=1, ts_field="@timestamp", tb_field=None):
    """filters: list of (predicate, [(path, optional), ...]). Returns [(join_keys, [doc idx])]."""
    nf = len(filters)
    cap = nf + per_key - 1

    def earliest(i):
        t = ts_ms(values(docs[i], ts_field)[0]) if values(docs[i], ts_field) else None
        return (float("inf") if t is None else t, tiebreak(docs[i], tb_field), i)

    all_keys = set()
    for i, d in enumerate(docs):
        for pred, kf in filters:
            if pred(d):
                all_keys.update(doc_keys(d, kf))
    out = []
    for key in sorted(all_keys, key=order_of_key):
        cands = []
        for pred, kf in filters:
            c = [i for i, d in enumerate(docs) if pred(d) and key in doc_keys(d, kf)]
            cands.append(sorted(c, key=earliest)[:cap])
        if not all(cands):
            continue
        found = [t for t in product(*cands) if len(set(t)) == nf][:per_key]
        for t in found:
            if len(out) < size:
                out.append((tuple(untyped(c) for c in key), list(t)))
    return out


def all_sample_tuples(filters, docs, key, window=None):
    """Every valid sample (distinct docs, right key) for ``key``, uncapped."""
    cands = [[i for i, d in enumerate(docs) if pred(d) and key in doc_keys(d, kf)] for pred, kf in filters]
    out = []
    for t in product(*cands):
        if len(set(t)) != len(t):
            continue
        if window is not None:
            ts = [ts_ms(docs[i]["@timestamp"]) for i in t]
            if max(ts) - min(ts) > window:
                continue
        out.append(t)
    return out


# ---------------------------------------------------------------------------------------- sequence

def ref_sequence(stages, docs, *, until=None, maxspan=None, size=10, pipes=(), ts_field="@timestamp",
                 tb_field=None):
    """stages: list of (predicate, keyfields, missing). until: (predicate, keyfields) or None.

    Returns [(join_keys, [doc idx or -1])] in Elasticsearch's result order.
    """
    evs = []
    for i, d in enumerate(docs):
        vs = values(d, ts_field)
        t = ts_ms(vs[0]) if vs else None
        if t is None:
            continue
        evs.append(((t,) + tiebreak(d, tb_field) + (i,), t, i))
    evs.sort()
    positive = [s for s, (_, _, miss) in enumerate(stages) if not miss]
    hits = {}  # (stage, key) -> [(ordinal, ts, idx)] ascending
    until_hits = {}
    keys = set()
    for o, t, i in evs:
        d = docs[i]
        for s, (pred, kf, _miss) in enumerate(stages):
            if pred(d):
                for k in doc_keys(d, kf):
                    hits.setdefault((s, k), []).append((o, t, i))
                    keys.add(k)
        if until is not None and until[0](d):
            for k in doc_keys(d, until[1]):
                until_hits.setdefault(k, []).append((o, t, i))
    completed = []
    for key in keys:
        # groups[p]: in-flight sequences that matched positive stages 0..p: (events, first_ts, last_ordinal)
        groups = [[] for _ in positive]
        groups[0] = [([(o, t, i)], t, o) for o, t, i in hits.get((positive[0], key), [])]
        for p in range(1, len(positive)):
            for o, t, i in hits.get((positive[p], key), []):
                prev = [q for q in groups[p - 1] if q[2] < o]
                if not prev:
                    continue
                q = max(prev, key=lambda q: q[2])
                groups[p - 1] = [x for x in groups[p - 1] if x[2] > q[2]]  # trimBefore
                if maxspan is not None and t - q[1] > maxspan:
                    continue
                us = [u for u in until_hits.get(key, []) if u[0] < o]
                if us and max(us)[0] >= q[2]:
                    continue
                groups[p].append((q[0] + [(o, t, i)], q[1], o))
        for seq, _first, last_o in groups[-1]:
            if _missing_ok(stages, positive, seq, key, hits, maxspan):
                slots = [-1] * len(stages)
                for p, (_o, _t, i) in zip(positive, seq):
                    slots[p] = i
                completed.append(((last_o, order_of_key(key)), tuple(untyped(c) for c in key), slots))
    completed.sort(key=lambda c: c[0])
    res = [(k, s) for _, k, s in completed]
    return _limits(res, size, pipes)


def _missing_ok(stages, positive, seq, key, hits, maxspan):
    ts = {p: t for p, (_o, t, _i) in zip(positive, seq)}
    first_ts, last_ts = seq[0][1], seq[-1][1]
    leading_hit = None
    trailing_hit = None
    has_leading = has_trailing = False
    for s, (_pred, _kf, miss) in enumerate(stages):
        if not miss:
            continue
        evts = [t for _o, t, _i in hits.get((s, key), [])]
        before = [p for p in positive if p < s]
        after = [p for p in positive if p > s]
        if before and after:  # middle
            lo, hi = ts[before[-1]], ts[after[0]]
            if any(lo < t < hi for t in evts):
                return False
        elif not before:  # leading
            has_leading = True
            c = [t for t in evts if t < first_ts]
            if c and (leading_hit is None or max(c) > leading_hit):
                leading_hit = max(c)
        else:  # trailing
            has_trailing = True
            c = [t for t in evts if t > last_ts]
            if c and (trailing_hit is None or min(c) < trailing_hit):
                trailing_hit = min(c)
    span = float("inf") if maxspan is None else maxspan
    if leading_hit is None and trailing_hit is None:
        return True
    if has_leading and has_trailing:
        return leading_hit is None or trailing_hit is None or trailing_hit - leading_hit > span
    if has_leading:
        return last_ts - leading_hit > span
    return trailing_hit - first_ts > span


def _limits(res, size, pipes):
    limits = list(pipes)
    if limits:
        limits.insert(0, (limits[0][0], size))
    else:
        limits = [("head", size)]
    for kind, n in limits:
        res = res[:n] if kind == "head" else (res[-n:] if n else [])
    return res
