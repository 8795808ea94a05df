"""Differential property tests: run_batch and StreamingEngine against the plain reference
(tests/engine/reference.py) on small generated event sets and queries."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.engine import StreamingEngine, run_batch
from auditeql.eql.plan import CompiledFilter, KeyField, Pipe, QueryOptions, SamplePlan, SequencePlan
from auditeql.fields import values

from . import reference as ref

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY_VALUES = st.sampled_from(["x", "y", "X", 1, 1.0, True, "1", None, ["x", "y"], ["x", "x"], [], {"o": 1}])
N_VALUES = st.sampled_from(["a", "b", "c", ["a", "b"], None])


@st.composite
def events(draw, max_size=9, max_ts=12, with_gaps=False):
    n = draw(st.integers(0, max_size))
    out = []
    for i in range(n):
        d = {"_id": i}
        if with_gaps and draw(st.integers(0, 9)) == 0:
            pass  # no timestamp: samples still use it, sequences skip it
        else:
            d["@timestamp"] = draw(st.integers(0, max_ts))
        tb = draw(st.sampled_from([None, 1, 2, 3]))
        if tb is not None:
            d["tb"] = tb
        nv = draw(N_VALUES)
        if nv is not None:
            d["n"] = nv
        kv = draw(KEY_VALUES)
        if kv is not None:
            d["k"] = kv
        k2 = draw(st.sampled_from(["p", "q", None]))
        if k2 is not None:
            d["k2"] = k2
        out.append(d)
    return out


def make_pred(allowed: frozenset):
    def pred(doc):
        return any(v in allowed for v in values(doc, "n"))

    return pred


PRED_SETS = st.sampled_from([frozenset(s) for s in ("a", "b", "c", "ab", "bc", "abc")])


@st.composite
def key_spec(draw, nfilters):
    """Per-filter key lists (positional), as ((path, optional), ...) tuples."""
    mode = draw(st.sampled_from(["none", "k", "?k", "k,?k2", "per-filter"]))
    if mode == "none":
        return [()] * nfilters
    if mode == "k":
        return [(("k", False),)] * nfilters
    if mode == "?k":
        return [(("k", True),)] * nfilters
    if mode == "k,?k2":
        return [(("k", False), ("k2", True))] * nfilters
    return [((draw(st.sampled_from(["k", "k2"])), draw(st.booleans())),) for _ in range(nfilters)]


def compiled(pred, keys, missing=False):
    return CompiledFilter(predicate=pred, keys=tuple(KeyField(p, o) for p, o in keys), missing=missing)


# -------------------------------------------------------------------------------------------- sample

@st.composite
def sample_case(draw):
    nf = draw(st.integers(1, 3))
    sets = [draw(PRED_SETS) for _ in range(nf)]
    keys = draw(key_spec(nf))
    if all(k == () for k in keys):
        keys = [(("k", True),)] * nf  # ES requires at least one join key for samples
    docs = draw(events(with_gaps=draw(st.booleans())))
    per_key = draw(st.integers(1, 3))
    size = draw(st.integers(0, 12))
    tb = draw(st.sampled_from([None, "tb"]))
    return sets, keys, docs, per_key, size, tb


@SETTINGS
@given(sample_case())
def test_sample_batch_matches_reference(case):
    sets, keys, docs, per_key, size, tb = case
    preds = [make_pred(s) for s in sets]
    plan = SamplePlan(filters=tuple(compiled(p, k) for p, k in zip(preds, keys)))
    got = run_batch(plan, docs, QueryOptions(size=size, max_samples_per_key=per_key, tiebreaker_field=tb))
    want = ref.ref_sample(list(zip(preds, keys)), docs, size=size, per_key=per_key, tb_field=tb)
    assert [(m.join_keys, [e["_id"] for e in m.events]) for m in got] == [(k, t) for k, t in want]


@SETTINGS
@given(sample_case(), st.booleans(), st.randoms(use_true_random=False))
def test_sample_streaming_emits_valid_samples_with_reference_counts(case, shuffle, rnd):
    """A window covering everything, in order or in any arrival order (samples ignore order):
    per key, min(max_samples_per_key, #valid samples) distinct valid samples, and exactly the
    keys the reference finds."""
    sets, keys, docs, per_key, _size, _tb = case
    docs = [d for d in docs if "@timestamp" in d]
    preds = [make_pred(s) for s in sets]
    filters = list(zip(preds, keys))
    plan = SamplePlan(filters=tuple(compiled(p, k) for p, k in filters))
    eng = StreamingEngine(plan, QueryOptions(max_samples_per_key=per_key), window_ms=10**9, reorder_ms=0,
                          max_pending=64)
    ordered = sorted(docs, key=lambda d: (d["@timestamp"], d["_id"]))
    if shuffle:
        rnd.shuffle(ordered)
    got = []
    for d in ordered:
        got.extend(eng.push(d))
    got.extend(eng.flush())
    by_key: dict = {}
    for m in got:
        by_key.setdefault(_keyrepr(m.join_keys), []).append(tuple(e["_id"] for e in m.events))
    ref_keys = {}
    for key_typed in {k for i, d in enumerate(docs) for p, kf in filters if p(d) for k in ref.doc_keys(d, kf)}:
        tuples = [tuple(docs[i]["_id"] for i in t) for t in ref.all_sample_tuples(filters, docs, key_typed)]
        if tuples:
            ref_keys[_keyrepr(tuple(ref.untyped(c) for c in key_typed))] = tuples
    assert set(by_key) == set(ref_keys)
    for key, samples in by_key.items():
        valid = set(ref_keys[key])
        assert len(samples) == len(set(samples)) == min(per_key, len(valid))
        assert set(samples) <= valid


def _keyrepr(key):
    return tuple((type(v).__name__ if not isinstance(v, (int, float)) or isinstance(v, bool) else "num", v)
                 for v in key)


@SETTINGS
@given(st.data())
def test_sample_streaming_window_is_respected(data):
    docs = data.draw(events(max_size=10, max_ts=40))
    window = data.draw(st.integers(0, 15))
    preds = [make_pred(frozenset("a")), make_pred(frozenset("b"))]
    filters = [(p, (("k", True),)) for p in preds]
    plan = SamplePlan(filters=tuple(compiled(p, k) for p, k in filters))
    eng = StreamingEngine(plan, window_ms=window, reorder_ms=0, max_pending=64)
    got = []
    for d in sorted(docs, key=lambda d: (d["@timestamp"], d["_id"])):
        got.extend(eng.push(d))
    for m in got:
        ts = [e["@timestamp"] for e in m.events]
        assert max(ts) - min(ts) <= window
    # every key with a sample inside the window gets one
    keys_with = {ref_k for ref_k in {k for d in docs for p, kf in filters if p(d) for k in ref.doc_keys(d, kf)}
                 if ref.all_sample_tuples(filters, docs, ref_k, window=window)}
    assert {_keyrepr(m.join_keys) for m in got} == {_keyrepr(tuple(ref.untyped(c) for c in k)) for k in keys_with}


# ------------------------------------------------------------------------------------------ sequence

@st.composite
def sequence_case(draw):
    npos = draw(st.integers(1, 3))
    layout = ["P"] * npos
    nmiss = draw(st.integers(0, 2))
    for _ in range(nmiss):
        layout.insert(draw(st.integers(0, len(layout))), "M")
    keys = draw(key_spec(len(layout) + 1))
    stages = [(make_pred(draw(PRED_SETS)), keys[i], kind == "M") for i, kind in enumerate(layout)]
    until = None
    if draw(st.booleans()):
        until = (make_pred(draw(PRED_SETS)), keys[-1])
    maxspan = draw(st.one_of(st.none(), st.integers(0, 8)))
    if nmiss and maxspan is None:
        maxspan = draw(st.integers(0, 8))  # ES requires maxspan with missing events
    pipes = tuple(draw(st.lists(st.tuples(st.sampled_from(["head", "tail"]), st.integers(0, 5)), max_size=2)))
    size = draw(st.integers(0, 12))
    docs = draw(events(with_gaps=draw(st.booleans())))
    tb = draw(st.sampled_from([None, "tb"]))
    return stages, until, maxspan, pipes, size, docs, tb


def seq_plan(stages, until, maxspan, pipes):
    return SequencePlan(
        filters=tuple(compiled(p, k, m) for p, k, m in stages),
        maxspan_ms=maxspan,
        until=None if until is None else compiled(until[0], until[1]),
        pipes=tuple(Pipe(kind, n) for kind, n in pipes),
    )


def as_ids(matches):
    return [(m.join_keys, [-1 if e is None else e["_id"] for e in m.events]) for m in matches]


@SETTINGS
@given(sequence_case())
def test_sequence_batch_matches_reference(case):
    stages, until, maxspan, pipes, size, docs, tb = case
    got = run_batch(seq_plan(stages, until, maxspan, pipes), docs, QueryOptions(size=size, tiebreaker_field=tb))
    want = ref.ref_sequence(stages, docs, until=until, maxspan=maxspan, size=size, pipes=pipes, tb_field=tb)
    assert _norm(as_ids(got)) == _norm(want)


def _norm(items):
    return [(_keyrepr(k), list(s)) for k, s in items]


@SETTINGS
@given(sequence_case(), st.integers(0, 3), st.randoms(use_true_random=False))
def test_sequence_streaming_matches_batch(case, disorder, rnd: random.Random):
    """Streaming with a reorder buffer covering the disorder of the input gives every sequence
    batch gives (no limits), whatever the arrival order."""
    stages, until, maxspan, _pipes, _size, docs, _tb = case
    docs = [d for d in docs if "@timestamp" in d]
    plan = seq_plan(stages, until, maxspan, ())
    ordered = sorted(docs, key=lambda d: (d["@timestamp"], d["_id"]))
    # bounded disorder: each event moves back by at most `disorder` ms of event time
    arrival = sorted(ordered, key=lambda d: (d["@timestamp"] + rnd.randint(0, disorder), d["_id"]))
    want = run_batch(plan, arrival, QueryOptions(size=10**6))
    eng = StreamingEngine(plan, window_ms=10**9, reorder_ms=disorder)
    got = []
    for d in arrival:
        got.extend(eng.push(d))
    got.extend(eng.flush())
    assert eng.stats()["late_events"] == 0
    assert sorted(_norm(as_ids(got))) == sorted(_norm(as_ids(want)))
