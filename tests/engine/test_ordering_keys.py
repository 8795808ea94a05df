"""Timestamps, key extraction/equality/order, limits, batch input handling."""

from __future__ import annotations

import datetime as dt

import pytest

from auditeql.engine import run_batch, timestamp_ms
from auditeql.engine.keys import display_key, key_sort_key, make_extractor
from auditeql.engine.limits import apply_limits
from auditeql.engine.ordering import timestamp_ns
from auditeql.eql.plan import CompiledFilter, EventPlan, KeyField, Pipe, QueryOptions, SamplePlan

from .conftest import compile_text, ids


@pytest.mark.parametrize("value,expected", [
    ("2022-05-04T12:00:00.000Z", 1651665600000),
    ("2022-05-04T12:00:00Z", 1651665600000),
    ("2022-05-04T14:00:00+02:00", 1651665600000),
    ("2022-05-04T07:30:00-0430", 1651665600000),
    ("2022-05-04T12:00:00.001Z", 1651665600001),
    ("2022-05-04T12:00:00.0015Z", 1651665600001.5),
    ("2022-05-04 12:00:00", 1651665600000),
    ("2022-05-04", 1651622400000),
    (1651665600000, 1651665600000),
    (1651665600000.5, 1651665600000.5),
    ("1651665600000", 1651665600000),
    ([1651665600000], 1651665600000),
])
def test_timestamp_ms_forms(value, expected):
    assert timestamp_ms(value) == expected


def test_timestamp_ns_keeps_nanoseconds():
    a = timestamp_ns("2022-05-04T12:00:00.123456789Z")
    b = timestamp_ns("2022-05-04T12:00:00.123456790Z")
    assert b - a == 1 and a % 1_000_000_000 == 123456789


@pytest.mark.parametrize("bad", [None, True, "yesterday", "2022-13-01T00:00:00Z", "2022-02-30", {}, [1, 2], float("nan")])
def test_timestamp_invalid_is_none(bad):
    assert timestamp_ms(bad) is None


def test_timestamp_agrees_with_datetime_on_many_values():
    base = dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    for i in range(0, 10**9, 7_777_777):
        d = base + dt.timedelta(seconds=i, microseconds=i % 1_000_000)
        iso = d.isoformat().replace("+00:00", "Z")
        assert timestamp_ns(iso) == int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000


def test_extractor_typed_equality_and_exclusion():
    ex = make_extractor((KeyField("a"),))
    assert ex({"a": "x"}) == ("x",)
    assert ex({"a": "1"}) != ex({"a": 1})
    assert ex({"a": True}) != ex({"a": 1})
    assert ex({"a": 1.0}) == ex({"a": 1})
    assert ex({}) is None and ex({"a": None}) is None and ex({"a": []}) is None
    assert ex({"a": {"b": 1}}) is None  # an object cannot be a key
    assert ex({"a": ["x", "y", "x"]}) == [("x",), ("y",)]
    opt = make_extractor((KeyField("a", optional=True), KeyField("b.c")))
    assert opt({"b": {"c": 2}}) == (None, 2)
    assert opt({"b.c": 2, "a": ["p", "q"]}) == [("p", 2), ("q", 2)]
    assert display_key(ex({"a": False})) == (False,)


def test_key_sort_order_is_null_then_typed_then_bytes():
    keys = [("doom",), (None,), ("GTA",), (5,), ("ärger",), ("zeta",)]
    ex = make_extractor((KeyField("a"),))
    keys.append(ex({"a": True}))
    got = [display_key(k) for k in sorted(keys, key=key_sort_key)]
    assert got == [(None,), (True,), (5,), ("GTA",), ("doom",), ("zeta",), ("ärger",)]


@pytest.mark.parametrize("size,pipes,expected", [
    (10, [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    (2, [("head", 50)], [1, 2]),
    (10, [("tail", 3)], [18, 19, 20]),
    (10, [("tail", 10), ("head", 7)], [11, 12, 13, 14, 15, 16, 17]),
    (3, [("tail", 10)], [18, 19, 20]),
    (30, [("tail", 25)], list(range(1, 21))),
    (3, [("tail", 2)], [19, 20]),
    (10, [("head", 0)], []),
    (0, [], []),
])
def test_limits(size, pipes, expected):
    assert apply_limits(list(range(1, 21)), size, [Pipe(k, n) for k, n in pipes]) == expected


def test_event_query_batch_order_limits_and_missing_timestamp_stats():
    plan = compile_text('any where n == "x" | tail 2')
    docs = [{"_id": i, "@timestamp": 10 - i, "n": "x"} for i in range(5)] + [{"_id": 99, "n": "x"}]
    stats: dict = {}
    got = run_batch(plan, docs, QueryOptions(), stats=stats)
    assert [d["_id"] for d in got] == [1, 0]
    assert stats["no_timestamp"] == 1 and stats["documents"] == 6
    assert isinstance(plan, EventPlan)


def test_sample_batch_uses_documents_without_timestamp():
    plan = SamplePlan(filters=(
        CompiledFilter(predicate=lambda d: d["n"] == "a", keys=(KeyField("k"),)),
        CompiledFilter(predicate=lambda d: d["n"] == "b", keys=(KeyField("k"),)),
    ))
    docs = [{"_id": 1, "n": "a", "k": 1}, {"_id": 2, "n": "b", "k": 1}, {"_id": 0, "n": "a", "k": 1, "@timestamp": 5}]
    assert ids(run_batch(plan, docs, QueryOptions())) == [[0, 2]]  # timed events first, then input order


def test_run_batch_rejects_unknown_plan():
    with pytest.raises(TypeError, match="expected an EventPlan"):
        run_batch("sample by x", [], QueryOptions())  # type: ignore[arg-type]


def test_fast_timestamp_path_agrees_with_the_general_parser():
    import random

    from auditeql.engine.ordering import _ISO, _slow

    rnd = random.Random(3)
    chars = "0123456789:.-TZ²"
    for _ in range(20000):
        s = "2023-0{}-1{}T{}{}:{}{}:{}{}{}Z".format(*(rnd.choice(chars) for _ in range(9)))
        m = _ISO.match(s)
        assert timestamp_ns(s) == (_slow(m) if m else timestamp_ns(s))
        if m is None:
            assert timestamp_ns(s) is None
    for _ in range(2000):
        ms = rnd.randrange(0, 4 * 10**12)
        d = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
        s = d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        assert timestamp_ms(s) == ms
