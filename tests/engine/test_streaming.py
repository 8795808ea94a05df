"""StreamingEngine behaviour that batch does not have: immediacy, windows, muting, reordering,
lateness, eviction and memory bounds."""

from __future__ import annotations

import pytest

from auditeql.engine import Match, StreamingEngine
from auditeql.eql.plan import CompiledFilter, EventPlan, KeyField, QueryOptions, SamplePlan, SequencePlan

from .conftest import compile_text, ids

MIN = 60_000
SAMPLE_Q = 'sample by host, pid [process where n == "exec"] [process where n == "socket"] [network where n == "connect"]'


def e(id_, ts, n, pid=1, host="h", cat=None):
    cat = cat or ("network" if n == "connect" else "process")
    return {"_id": id_, "@timestamp": ts, "event": {"category": cat}, "n": n, "host": host, "pid": pid}


def push_all(eng, docs):
    out = []
    for d in docs:
        out.extend(eng.push(d))
    return out


# ------------------------------------------------------------------------------------------ samples

def test_sample_emitted_by_the_completing_event_in_any_order():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=9 * MIN, reorder_ms=0)
    assert eng.push(e(1, 1000, "connect")) == []
    assert eng.push(e(2, 1001, "socket")) == []
    got = eng.push(e(3, 1002, "exec"))
    assert ids(got) == [[3, 2, 1]] and got[0].join_keys == ("h", 1)


def test_sample_emitted_once_per_window_then_again_for_a_new_attack():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=9 * MIN, reorder_ms=0)
    first = push_all(eng, [e(1, 0, "exec"), e(2, 1, "socket"), e(3, 2, "connect")])
    assert ids(first) == [[1, 2, 3]]
    # the same process reconnects within the window: no duplicate alert
    assert push_all(eng, [e(4, 5 * MIN, "socket"), e(5, 5 * MIN + 1, "connect")]) == []
    # after the window (even with more socket/connect) nothing, until a new exec (a recycled pid)
    assert push_all(eng, [e(6, 10 * MIN, "socket"), e(7, 10 * MIN + 1, "connect")]) == []
    again = push_all(eng, [e(8, 12 * MIN, "exec")])
    assert ids(again) == [[8, 4, 5]]  # earliest events still inside the window of the new exec


def test_sample_max_samples_per_key_in_stream():
    eng = StreamingEngine(compile_text(SAMPLE_Q), QueryOptions(max_samples_per_key=2), window_ms=MIN, reorder_ms=0)
    got = push_all(eng, [e(1, 0, "exec"), e(2, 1, "socket"), e(3, 2, "connect"), e(4, 3, "connect"),
                         e(5, 4, "connect")])
    assert ids(got) == [[1, 2, 3], [1, 2, 4]]


def test_sample_events_must_fit_in_the_window():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=MIN, reorder_ms=0)
    assert push_all(eng, [e(1, 0, "exec"), e(2, 30_000, "socket"), e(3, 60_001, "connect")]) == []
    assert ids(eng.push(e(4, 61_000, "exec"))) == [[4, 2, 3]]


def test_sample_late_event_within_window_still_used_and_counted():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=9 * MIN, reorder_ms=1000)
    push_all(eng, [e(1, 100_000, "exec"), e(2, 100_001, "socket")])
    got = eng.push(e(3, 50_000, "connect"))  # 50 s late: beyond reorder_ms, inside the window
    assert ids(got) == [[1, 2, 3]]
    assert eng.stats()["late_events"] == 1 and eng.stats()["late_dropped"] == 0
    assert eng.push(e(4, 100_000 - 10 * MIN, "exec", pid=2)) == []  # older than the window: dropped
    assert eng.stats()["late_dropped"] == 1


def test_sample_memory_bound_under_churn():
    """20k fresh pids through a 500-key bound: state never exceeds the bound, evictions counted."""
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=9 * MIN, reorder_ms=0, max_keys=500)
    peak = 0
    for i in range(20_000):
        eng.push(e(i, i, "exec", pid=i))
        if i % 1000 == 0:
            peak = max(peak, eng.stats()["keys"])
    s = eng.stats()
    assert peak <= 500 and s["keys"] <= 500
    assert s["evicted_keys_capacity"] == 20_000 - s["keys"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sample", "sequence"])
def test_one_million_fresh_pids_stay_bounded(kind):
    """Soak: 1M fresh pids (each exec'ing a shell that opens a UDP socket) through a 9-minute
    window at 1M processes/hour, bounded to 20k keys: keys, pending and RSS stay flat."""
    f = [CompiledFilter(predicate=lambda d, v=v: d["n"] == v, keys=(KeyField("host"), KeyField("pid")))
         for v in ("exec", "socket", "connect")]
    plan = SamplePlan(filters=tuple(f)) if kind == "sample" else SequencePlan(filters=tuple(f), maxspan_ms=9 * MIN)
    eng = StreamingEngine(plan, window_ms=9 * MIN, reorder_ms=2000, max_keys=20_000)
    rss0 = None
    for i in range(1_000_000):
        ts = i * 3.6  # 1M processes per hour of event time
        eng.push({"@timestamp": ts, "n": "exec", "host": "h", "pid": i})
        eng.push({"@timestamp": ts + 1, "n": "socket", "host": "h", "pid": i})
        if i == 100_000:
            rss0 = _rss_mb()
    eng.flush()
    s = eng.stats()
    assert s["keys"] <= 20_000 and s["pending"] <= 2 * 20_000
    assert s["evicted_keys_capacity"] + s["evicted_keys_expired"] + s["keys"] == 1_000_000
    assert _rss_mb() - rss0 < 50, "state grew under churn"


def test_sample_time_eviction_keeps_state_to_the_window():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=1000, reorder_ms=0)
    for i in range(20_000):
        eng.push(e(i, i * 10, "exec", pid=i))  # 100 new pids per second of event time
    s = eng.stats()
    assert s["keys"] <= 100 + 1024 + 1  # window contents plus one expiry sweep period
    assert s["evicted_keys_expired"] >= 18_000 and s["evicted_keys_capacity"] == 0
    eng.advance(20_000 * 10 + 5000)
    assert eng.stats()["keys"] == 0


def test_sample_pending_bound_per_key():
    eng = StreamingEngine(compile_text(SAMPLE_Q), window_ms=9 * MIN, reorder_ms=0, max_pending=8)
    push_all(eng, [e(i, i, "socket") for i in range(100)])
    s = eng.stats()
    assert s["pending"] == 8 and s["evicted_candidates"] == 92


# ---------------------------------------------------------------------------------------- sequences

SEQ_Q = 'sequence by pid with maxspan=1m [process where n == "exec"] [network where n == "connect"]'


def test_sequence_emits_when_complete_after_reorder_delay():
    eng = StreamingEngine(compile_text(SEQ_Q), window_ms=9 * MIN, reorder_ms=1000)
    assert eng.push(e(1, 0, "exec")) == []
    assert eng.push(e(2, 500, "connect")) == []  # still inside the reorder delay
    got = eng.push(e(3, 1500, "exec", pid=9))  # event time moves past 500 + 1000
    assert ids(got) == [[1, 2]]


def test_sequence_advance_releases_buffer_and_evicts():
    eng = StreamingEngine(compile_text(SEQ_Q), window_ms=9 * MIN, reorder_ms=1000)
    push_all(eng, [e(1, 0, "exec"), e(2, 500, "connect")])
    assert ids(eng.advance(1500)) == [[1, 2]]
    push_all(eng, [e(3, 2000, "exec", pid=5)])
    assert eng.stats()["keys"] >= 1
    eng.advance(2000 + 1000 + MIN + 1)
    assert eng.stats()["keys"] == 0 and eng.stats()["buffered"] == 0


def test_sequence_late_event_dropped_and_counted():
    eng = StreamingEngine(compile_text(SEQ_Q), window_ms=9 * MIN, reorder_ms=100)
    push_all(eng, [e(1, 1000, "exec"), e(9, 5000, "exec", pid=3)])
    assert eng.push(e(2, 900, "connect")) == []  # older than 5000 - 100: late
    s = eng.stats()
    assert s["late_events"] == 1 and s["late_dropped"] == 1
    assert eng.flush() == []


def test_sequence_trailing_missing_settled_by_event_time():
    q = 'sequence by pid with maxspan=10s [process where n == "exec"] ![network where n == "connect"]'
    eng = StreamingEngine(compile_text(q), window_ms=9 * MIN, reorder_ms=0)
    assert eng.push(e(1, 0, "exec")) == []  # waits: a connect within 10 s would cancel it
    assert eng.push(e(2, 5000, "exec", pid=2)) == []
    got = eng.advance(10_001)
    assert ids(got) == [[1, -1]]
    assert eng.push(e(3, 11_000, "connect", pid=2)) == []  # within 10 s of exec 2: cancelled
    assert eng.flush() == []


def test_sequence_memory_bound_under_churn():
    eng = StreamingEngine(compile_text(SEQ_Q), window_ms=9 * MIN, reorder_ms=0, max_keys=500)
    for i in range(20_000):
        eng.push(e(i, i, "exec", pid=i))
    s = eng.stats()
    assert s["keys"] <= 500 and s["evicted_keys_capacity"] == 20_000 - s["keys"]


def test_sequence_without_maxspan_uses_window_as_span():
    q = 'sequence by pid [process where n == "exec"] [network where n == "connect"]'
    eng = StreamingEngine(compile_text(q), window_ms=MIN, reorder_ms=0)
    assert push_all(eng, [e(1, 0, "exec"), e(2, MIN + 1, "connect")]) == []
    assert ids(push_all(eng, [e(3, 2 * MIN, "exec"), e(4, 3 * MIN, "connect")])) == [[3, 4]]


# ------------------------------------------------------------------------------------ misc / inputs

def test_event_plan_streams_matches_immediately():
    plan = EventPlan(filter=CompiledFilter(predicate=lambda d: d.get("n") == "x"))
    eng = StreamingEngine(plan, window_ms=1000)
    assert eng.push({"n": "x"}) == [Match((), ({"n": "x"},))]
    assert eng.push({"n": "y"}) == []


@pytest.mark.parametrize("bad", [{}, {"@timestamp": "yesterday"}, {"@timestamp": None}, {"@timestamp": True}])
def test_documents_without_timestamp_are_counted_not_fatal(bad):
    eng = StreamingEngine(compile_text(SEQ_Q), window_ms=1000)
    assert eng.push(dict(bad, n="exec", pid=1, event={"category": "process"})) == []
    assert eng.stats()["no_timestamp"] == 1


def test_negative_window_is_a_clear_error():
    with pytest.raises(ValueError, match="window_ms"):
        StreamingEngine(compile_text(SEQ_Q), window_ms=-1)


def test_hand_made_plan_with_multi_valued_keys_streams_cartesian_product():
    f = [CompiledFilter(predicate=lambda d, v=v: d["n"] == v, keys=(KeyField("a"), KeyField("b"))) for v in "xy"]
    eng = StreamingEngine(SequencePlan(filters=tuple(f)), window_ms=1000, reorder_ms=0)
    push_all(eng, [{"_id": 1, "@timestamp": 1, "n": "x", "a": ["1", "2"], "b": ["p", "q"]}])
    got = eng.push({"_id": 2, "@timestamp": 2, "n": "y", "a": ["1", "2"], "b": ["q", "p"]})
    assert sorted(m.join_keys for m in got) == [("1", "p"), ("1", "q"), ("2", "p"), ("2", "q")]
    assert eng.stats()["keys"] == 4 and eng.stats()["matched_results"] == 4


def test_reorder_buffer_orders_equal_timestamps_by_tiebreaker():
    q = 'sequence [any where n == "a"] [any where n == "b"]'
    opts = QueryOptions(tiebreaker_field="event.sequence")
    eng = StreamingEngine(compile_text(q), opts, window_ms=MIN, reorder_ms=10)
    push_all(eng, [{"_id": 2, "@timestamp": 100, "n": "b", "event": {"sequence": 2}},
                   {"_id": 1, "@timestamp": 100, "n": "a", "event": {"sequence": 1}}])
    assert ids(eng.flush()) == [[1, 2]]
    eng = StreamingEngine(compile_text(q), opts, window_ms=MIN, reorder_ms=10)
    push_all(eng, [{"_id": 1, "@timestamp": 100, "n": "a"},  # null tiebreaker sorts last
                   {"_id": 2, "@timestamp": 100, "n": "b", "event": {"sequence": 2}}])
    assert ids(eng.flush()) == []
