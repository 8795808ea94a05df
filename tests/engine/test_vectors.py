"""The sample (§8.1) and sequence (§8.2) vectors of ../shared/spec/eql-semantics.md, run through
real compiled queries, in batch and (where the semantics coincide) streaming."""

from __future__ import annotations

import pytest

from auditeql.engine import StreamingEngine, run_batch
from auditeql.eql.plan import QueryOptions, SamplePlan, SequencePlan

from .conftest import compile_text, ev, ids

BIG_WINDOW = 10**12


def batch(query: str, events: list[dict], **opts) -> list:
    return run_batch(compile_text(query), events, QueryOptions(**opts))


def stream(query: str, events: list[dict], **opts) -> list:
    plan = compile_text(query)
    eng = StreamingEngine(plan, QueryOptions(**opts), window_ms=BIG_WINDOW, reorder_ms=0)
    out = []
    for e in events:
        out.extend(eng.push(e))
    out.extend(eng.flush())
    return out


# ----------------------------------------------------------------------------------- §8.1 samples

S01_EVENTS = [ev(1, "process", 5000, host="a"), ev(2, "file", 1000, host="a"), ev(3, "process", 2000, host="b")]
S10_EVENTS = [
    ev(1, "success", host="doom", os="win10"), ev(2, "alert", host="doom", os="win10"),
    ev(3, "success", host="doom"), ev(4, "alert", host="doom"),
    ev(5, "success", host="GTA"), ev(6, "alert", host="GTA"),
]
S02_Q = 'sample by host [any where x == 1] [any where y == 1]'
S05_Q = 'sample by os [alert_1 where true] [alert_2 where true]'
S05_EVENTS = [
    ev(1, "alert_1", os="win10"), ev(2, "alert_1", os="win10"), ev(4, "alert_1", os="win10"),
    ev(3, "alert_2", os="win10"), ev(7, "alert_1", os="redhat"), ev(6, "alert_2", os="redhat"),
]

SAMPLE_VECTORS = [
    # id, query, events, options, expected ids, expected join keys (None = not checked)
    ("S01", "sample by host [process where true] [file where true]", S01_EVENTS, {}, [[1, 2]], [("a",)]),
    ("S02", S02_Q, [ev(1, host="a", x=1, y=1)], {}, [], []),
    ("S03", S02_Q, [ev(1, host="a", x=1, y=1), ev(2, host="a", y=1)], {}, [[1, 2]], [("a",)]),
    ("S04", S02_Q, [ev(1, host="a", x=1, y=1), ev(2, host="a", x=1, y=1)], {"max_samples_per_key": 2},
     [[1, 2], [2, 1]], [("a",), ("a",)]),
    ("S04-default", S02_Q, [ev(1, host="a", x=1, y=1), ev(2, host="a", x=1, y=1)], {}, [[1, 2]], [("a",)]),
    ("S05", S05_Q, S05_EVENTS, {}, [[7, 6], [1, 3]], [("redhat",), ("win10",)]),
    ("S05-3", S05_Q, S05_EVENTS, {"max_samples_per_key": 3}, [[7, 6], [1, 3], [2, 3], [4, 3]], None),
    ("S05-10", S05_Q, S05_EVENTS, {"max_samples_per_key": 10}, [[7, 6], [1, 3], [2, 3], [4, 3]], None),
    ("S06", "sample by host [process where true] [file where true]",
     [ev(1, "process", host="a"), ev(2, "file")], {}, [], []),
    ("S06-both-missing", "sample by host [process where true] [file where true]",
     [ev(1, "process"), ev(2, "file")], {}, [], []),
    ("S07", "sample by ?host [process where true] [file where true]",
     [ev(1, "process"), ev(2, "file")], {}, [[1, 2]], [(None,)]),
    ("S08", "sample by host [process where true] [file where true]",
     [ev(1, "process", host="WS01"), ev(2, "file", host="ws01")], {}, [], []),
    ("S09", "sample [process where true] by host [file where true] by hostname",
     [ev(1, "process", host="h1"), ev(2, "file", hostname="h1"), ev(3, "file", host="h1")], {}, [[1, 2]], [("h1",)]),
    ("S10", "sample by host, ?os [success where true] [alert where true]", S10_EVENTS, {},
     [[5, 6], [3, 4], [1, 2]], [("GTA", None), ("doom", None), ("doom", "win10")]),
    ("S11", "sample by host, ?os [success where true] [alert where true]", S10_EVENTS, {"size": 2},
     [[5, 6], [3, 4]], [("GTA", None), ("doom", None)]),
    ("S12", "sample by host [process where true] [file where true]",
     [ev(1, "process", host=["a", "b"]), ev(2, "file", host="b")], {}, [[1, 2]], [("b",)]),
]


@pytest.mark.parametrize("vid,query,events,opts,expected,keys", SAMPLE_VECTORS, ids=[v[0] for v in SAMPLE_VECTORS])
def test_sample_vectors_batch(vid, query, events, opts, expected, keys):
    plan = compile_text(query)
    assert isinstance(plan, SamplePlan)
    got = run_batch(plan, events, QueryOptions(**opts))
    assert ids(got) == expected
    if keys is not None:
        assert [m.join_keys for m in got] == keys


@pytest.mark.parametrize("vid,query,events,opts,expected,keys", SAMPLE_VECTORS, ids=[v[0] for v in SAMPLE_VECTORS])
def test_sample_vectors_streaming(vid, query, events, opts, expected, keys):
    """Streaming emits the same samples (as a set: streaming emits in completion order)."""
    timed = [dict(e, **{"@timestamp": e.get("@timestamp", i)}) for i, e in enumerate(events)]
    got = stream(query, timed, **opts)
    if vid == "S11":  # size is a batch notion; streaming reports all three
        expected = [[5, 6], [3, 4], [1, 2]]
    assert sorted(ids(got)) == sorted(expected)


def test_s05_default_choice_is_one_of_the_allowed():
    got = ids(batch(S05_Q, S05_EVENTS))
    assert got[0] == [7, 6] and got[1][1] == 3 and got[1][0] in {1, 2, 4}


def test_s01_earliest_choice_is_by_timestamp_not_input_order():
    events = [ev(1, "process", 9000, host="a"), ev(2, "process", 1000, host="a"), ev(3, "file", 5000, host="a")]
    assert ids(batch("sample by host [process where true] [file where true]", events)) == [[2, 3]]


# --------------------------------------------------------------------------------- §8.2 sequences

def q01_events():
    rows = [(1, "root", "attrib"), (2, "root", "attrib"), (3, "elkbee", "bash"), (4, "root", "bash"),
            (5, "root", "bash"), (6, "elkbee", "attrib"), (7, "root", "attrib"), (8, "elkbee", "bash"),
            (9, "root", "cat"), (10, "elkbee", "cat"), (11, "root", "cat")]
    return [ev(i, "process", i, user={"name": u}, process={"name": p}) for i, u, p in rows]


def q07_events():
    return [ev(1, ts=1, id=1, n="A"), ev(2, ts=2, id=1, n="B"),
            ev(3, ts=3, id=2, n="A"), ev(4, ts=4, id=2, n="B"), ev(5, ts=5, id=2, n="C"),
            ev(6, ts=6, id=3, n="A"), ev(7, ts=7, id=3, n="C"), ev(8, ts=8, id=3, n="B")]


def tag_events(tags):
    return [ev(i, ts=t, tag=tag) for i, t, tag in tags]


Q13_DATA = tag_events([(1, 1, "normal"), (2, 2, "normal"), (3, 3, "missing"), (4, 4, "normal")])
Q15_DATA = tag_events([
    (1, "2022-05-04T12:00:00.000Z", "missing"), (2, "2022-05-04T12:10:00.001Z", "normal"),
    (3, "2022-05-04T12:20:00.001Z", "missing"), (4, "2022-05-04T12:21:00.001Z", "normal"),
    (5, "2022-05-04T12:29:00.001Z", "normal"), (6, "2022-05-04T12:31:00.001Z", "normal"),
])
Q17_DATA = tag_events([(i, i, t) for i, t in enumerate(
    ["A", "B", "M1", "B", "C", "M2", "D", "M1", "C", "B", "C", "D", "A", "B", "M3", "C", "D", "M4"], start=1)])
Q01_Q = ('sequence by user.name [process where process.name == "attrib"] [process where process.name == "bash"] '
         '[process where process.name == "cat"]')
Q07_Q = 'sequence by id [any where n == "A"] [any where n == "B"] until [any where n == "C"]'
Q13_A = 'sequence with maxspan=1s [any where tag == "normal"] ![any where tag == "nonexisting"] [any where tag == "normal"]'
Q13_B = 'sequence with maxspan=1s [any where tag == "normal"] ![any where tag == "missing"] [any where tag == "normal"]'
Q16 = ('sequence with maxspan={} ![any where tag == "missing"] [any where tag == "normal"] '
       '![any where tag == "missing"]')
Q17 = ('sequence with maxspan=1s [any where tag == "A"] [any where tag == "B"] ![any where tag == "M1"] '
       '[any where tag == "C"] ![any where tag == "M2"] [any where tag == "D"]')
AB = 'sequence [any where n == "a"] [any where n == "b"]'

SEQ_VECTORS = [
    # id, query, events, options, expected ids, join keys (None = unchecked), streaming comparable
    ("Q01", Q01_Q, q01_events(), {}, [[2, 4, 9], [6, 8, 10]], [("root",), ("elkbee",)], True),
    ("Q02", 'sequence [process where n == "a"] [process where n == "b"]',
     [ev(1, "process", 1, n="a"), ev(2, "process", 2, n="a"), ev(3, "process", 3, n="b")], {}, [[2, 3]], [()], True),
    ("Q03", 'sequence [any where tag == "normal"] [any where tag == "normal"]',
     tag_events([(1, 1, "normal"), (2, 2, "normal"), (3, 3, "normal")]), {}, [[1, 2], [2, 3]], None, True),
    ("Q04", "sequence [any where true] [any where true]", [ev(1, ts=1)], {}, [], None, True),
    ("Q05-A", 'sequence with maxspan=10s [any where n == "a"] [any where n == "b"]',
     [ev(1, ts=0, n="a"), ev(2, ts=10000, n="b")], {}, [[1, 2]], None, True),
    ("Q05-B", 'sequence with maxspan=10s [any where n == "a"] [any where n == "b"]',
     [ev(1, ts=0, n="a"), ev(2, ts=10001, n="b")], {}, [], None, True),
    ("Q06", 'sequence with maxspan=10s [any where n == "a"] [any where n == "b"] [any where n == "c"]',
     [ev(1, ts=0, n="a"), ev(2, ts=6000, n="b"), ev(3, ts=11000, n="c")], {}, [], None, True),
    ("Q07", Q07_Q, q07_events(), {}, [[1, 2], [3, 4]], [(1,), (2,)], True),
    ("Q08", Q07_Q, [ev(1, ts=1, id=1, n="A"), ev(2, ts=2, id=2, n="C"), ev(3, ts=3, id=1, n="B")], {},
     [[1, 3]], [(1,)], True),
    ("Q09", 'sequence by user [any where n == "a"] [any where n == "b"]',
     [ev(1, ts=1, n="a"), ev(2, ts=2, n="b")], {}, [], None, True),
    ("Q09-opt", 'sequence by ?user [any where n == "a"] [any where n == "b"]',
     [ev(1, ts=1, n="a"), ev(2, ts=2, n="b")], {}, [[1, 2]], [(None,)], True),
    ("Q10", 'sequence by user [any where n == "a"] [any where n == "b"]',
     [ev(1, ts=1, user="ROOT", n="a"), ev(2, ts=2, user="root", n="b")], {}, [], None, True),
    ("Q11", AB, [ev(1, ts=100, n="a", event__sequence=2), ev(2, ts=100, n="b", event__sequence=1)],
     {"tiebreaker_field": "event.sequence"}, [], None, False),
    ("Q11-swapped", AB, [ev(1, ts=100, n="a", event__sequence=1), ev(2, ts=100, n="b", event__sequence=2)],
     {"tiebreaker_field": "event.sequence"}, [[1, 2]], None, True),
    ("Q12", 'sequence [any where n == "b"] [any where n == "a"]',
     [ev(1, ts=100, n="a"), ev(2, ts=100, n="b", event__sequence=5)],
     {"tiebreaker_field": "event.sequence"}, [[2, 1]], None, False),
    ("Q13-A", Q13_A, Q13_DATA, {}, [[1, -1, 2], [2, -1, 4]], None, True),
    ("Q13-A-head", Q13_A + " | head 1", Q13_DATA, {}, [[1, -1, 2]], None, False),
    ("Q13-A-tail", Q13_A + " | tail 1", Q13_DATA, {}, [[2, -1, 4]], None, False),
    ("Q13-B", Q13_B, Q13_DATA, {}, [[1, -1, 2]], None, True),
    ("Q14", 'sequence with maxspan=1s [any where tag == "normal"] ![any where tag == "missing"]', Q13_DATA, {},
     [[4, -1]], None, True),
    ("Q15", 'sequence with maxspan=3m ![any where tag == "missing"] [any where tag == "normal"]', Q15_DATA, {},
     [[-1, 2], [-1, 5], [-1, 6]], None, True),
    ("Q16-19m", Q16.format("19m"), Q15_DATA, {}, [[-1, 2, -1], [-1, 4, -1], [-1, 5, -1], [-1, 6, -1]], None, True),
    ("Q16-21m", Q16.format("21m"), Q15_DATA, {}, [[-1, 4, -1], [-1, 5, -1], [-1, 6, -1]], None, True),
    ("Q17", Q17, Q17_DATA, {}, [[13, 14, -1, 16, -1, 17]], None, True),
    ("Q18-A", 'sequence [any where n == "a"] with runs=2 [any where n == "b"]',
     [ev(1, ts=1, n="a"), ev(2, ts=2, n="a"), ev(3, ts=3, n="b")], {}, [[1, 2, 3]], None, True),
    ("Q18-B", 'sequence [any where n == "a"] with runs=2 [any where n == "b"]',
     [ev(1, ts=1, n="a"), ev(2, ts=2, n="b")], {}, [], None, True),
    ("Q19", "sequence by tags [any where true] [any where true]",
     [ev(1, ts=1, tags=["foo", "bar"]), ev(2, ts=2, tags=["foo", "bar"])], {}, [[1, 2], [1, 2]],
     [("bar",), ("foo",)], True),
    ("Q20-A", "sequence [file where true] by file.path [process where true] by process.executable",
     [ev(1, "file", 1, file={"path": "C:\\x.exe"}), ev(2, "process", 2, process={"executable": "C:\\x.exe"})], {},
     [[1, 2]], [("C:\\x.exe",)], True),
    ("Q20-B", "sequence [file where true] by file.path [process where true] by process.executable",
     [ev(1, "file", 1, file={"path": "C:\\x.exe"}), ev(2, "process", 2, process={"executable": "c:\\x.exe"})], {},
     [], None, True),
    ("Q21", "sequence [any where true] [any where true] | head 50",
     [ev(i, ts=i) for i in range(1, 6)], {"size": 2}, [[1, 2], [2, 3]], None, False),
]


@pytest.mark.parametrize("vid,query,events,opts,expected,keys,_s", SEQ_VECTORS, ids=[v[0] for v in SEQ_VECTORS])
def test_sequence_vectors_batch(vid, query, events, opts, expected, keys, _s):
    plan = compile_text(query)
    assert isinstance(plan, SequencePlan)
    got = run_batch(plan, events, QueryOptions(**opts))
    assert ids(got) == expected
    if keys is not None:
        assert [m.join_keys for m in got] == keys


# Q12: equal timestamps and a null tiebreaker leave input position as the last criterion
ORDER_FREE = [v for v in SEQ_VECTORS if v[0] != "Q12"]
STREAMABLE = [v for v in SEQ_VECTORS if v[6]]  # limits and tiebreaker ties are batch notions


@pytest.mark.parametrize("vid,query,events,opts,expected,keys,comparable", ORDER_FREE,
                         ids=[v[0] for v in ORDER_FREE])
def test_sequence_vectors_batch_reversed_input(vid, query, events, opts, expected, keys, comparable):
    """Batch sorts by ordinal: input order must not matter."""
    got = run_batch(compile_text(query), list(reversed(events)), QueryOptions(**opts))
    assert ids(got) == expected


@pytest.mark.parametrize("vid,query,events,opts,expected,keys,comparable", STREAMABLE,
                         ids=[v[0] for v in STREAMABLE])
def test_sequence_vectors_streaming(vid, query, events, opts, expected, keys, comparable):
    got = stream(query, events, **opts)
    assert ids(got) == expected


def test_q12_null_tiebreaker_sorts_last_even_when_input_says_otherwise():
    events = [ev(2, ts=100, n="b", event__sequence=5), ev(1, ts=100, n="a")]
    got = batch('sequence [any where n == "b"] [any where n == "a"]', events, tiebreaker_field="event.sequence")
    assert ids(got) == [[2, 1]]
    got = batch('sequence [any where n == "a"] [any where n == "b"]', events, tiebreaker_field="event.sequence")
    assert ids(got) == []


def test_streaming_reorder_buffer_restores_order():
    """Out-of-order input within reorder_ms gives the batch answer."""
    events = q01_events()
    shuffled = [events[i] for i in (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 10)]
    plan = compile_text(Q01_Q)
    eng = StreamingEngine(plan, window_ms=10_000, reorder_ms=5)
    out = []
    for e in shuffled:
        out.extend(eng.push(e))
    out.extend(eng.flush())
    assert ids(out) == [[2, 4, 9], [6, 8, 10]]
    assert eng.stats()["late_events"] == 0
