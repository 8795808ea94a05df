"""eql-semantics.md §8.5: Kibana detection-engine vectors K01–K04 and K06 (K05, exceptions, is a documented deviation)."""

from __future__ import annotations

from dataclasses import replace

from auditeql.alerts.build import iso_ms
from auditeql.engine import timestamp_ms
from auditeql.rules import parse_rule
from auditeql.rules.replay import MAX_SIGNALS_WARNING, Replayer, run_times, window_time

TEN = timestamp_ms("2026-11-30T10:00:00Z")
MIN = 60_000

RULE = """
[rule]
rule_id = "k-rule"
name = "K"
description = "vector"
type = "eql"
language = "eql"
risk_score = 21
severity = "low"
interval = "5m"
from = "now-9m"
timestamp_override = "event.ingested"
query = '''QUERY'''
"""


def rule(query: str, **kw):
    return replace(parse_rule(RULE.replace("QUERY", query), "k.toml"), **kw)


def scan(r, docs):
    rp = Replayer([r])
    for d in docs:
        rp.feed(d)
    return rp.finish()


def test_k01_overlapping_windows_deduplicate_single_event_alerts():
    r = rule("process where true")
    e = {"_index": "logs-1", "_id": "abc", "event": {"ingested": "2026-11-30T09:58:00Z", "category": ["process"]},
         "@timestamp": "2026-11-30T09:58:00Z"}
    assert [t for t in run_times(r, TEN - 2 * MIN, TEN - 2 * MIN)] == [TEN, TEN + 5 * MIN]  # exactly the 10:00 and 10:05 runs
    windows = [(t - 9 * MIN, t) for t in (TEN, TEN + 5 * MIN)]  # the vector's 10:00 and 10:05 runs both see E
    assert all(a <= TEN - 2 * MIN <= b for a, b in windows)
    res = scan(r, [e])
    [alert] = res.alerts
    import hashlib

    assert alert["kibana.alert.uuid"] == hashlib.sha256(b"logs-1abcundefineddefault:k-rule").hexdigest()
    assert alert["kibana.alert.ancestors"] == [{"id": "abc", "index": "logs-1", "type": "event", "depth": 0}]


def test_k02_timestamp_fallback():
    r = rule("process where true")
    f = {"event": {"ingested": "2026-11-30T09:40:00Z", "category": ["process"]}, "@timestamp": "2026-11-30T09:58:00Z"}
    g = {"event": {"category": ["process"]}, "@timestamp": "2026-11-30T09:58:00Z"}
    assert window_time(f, r, timestamp_ms) == TEN - 20 * MIN  # override present: its value, out of the 10:00 window
    assert window_time(g, r, timestamp_ms) == TEN - 2 * MIN  # no override: @timestamp
    assert window_time(g, replace(r, timestamp_override_fallback_disabled=True), timestamp_ms) is None


def test_k03_sequence_alert_group():
    r = rule("sequence by host.name [anomaly where true] [any where true]")
    e1 = {"_id": "e1", "_index": "i", "@timestamp": "2026-11-30T09:58:00Z", "host": {"name": "h"}, "event": {"category": ["anomaly"], "action": "a"}}
    e2 = {"_id": "e2", "_index": "i", "@timestamp": "2026-11-30T09:58:01Z", "host": {"name": "h"}, "event": {"category": ["process"], "action": "b"}}
    res = scan(r, [e1, e2])
    shell, bb0, bb1 = res.alerts
    s = shell["kibana.alert.uuid"]
    assert shell["kibana.alert.group.id"] == s and shell["kibana.alert.depth"] == 2
    assert "kibana.alert.building_block_type" not in shell
    assert [a["id"] for a in shell["kibana.alert.ancestors"]] == ["e1", bb0["kibana.alert.uuid"], "e2", bb1["kibana.alert.uuid"]]
    assert [(a["type"], a["depth"], a["index"]) for a in shell["kibana.alert.ancestors"]] == [("event", 0, "i"), ("signal", 1, ""), ("event", 0, "i"), ("signal", 1, "")]
    for i, (bb, e) in enumerate(((bb0, e1), (bb1, e2))):
        assert bb["kibana.alert.group.index"] == i and bb["kibana.alert.group.id"] == s
        assert bb["kibana.alert.depth"] == 1 and bb["kibana.alert.building_block_type"] == "default"
        assert bb["kibana.alert.ancestors"] == [{"id": e["_id"], "index": "i", "type": "event", "depth": 0}]
        assert bb["kibana.alert.original_event.action"] == e["event"]["action"]
        assert bb["event"]["kind"] == "signal"
    assert shell["host"] == {"name": "h"} and "action" not in shell["event"]


def test_k04_max_signals_counts_sequences():
    r = rule("sequence by host.name [anomaly where true] [any where true]", max_signals=20)
    docs = []
    for i in range(30):
        docs.append({"@timestamp": iso_ms(TEN - 3 * MIN + i), "host": {"name": f"h{i:02d}"}, "event": {"category": ["anomaly"]}})
        docs.append({"@timestamp": iso_ms(TEN - 2 * MIN + i), "host": {"name": f"h{i:02d}"}, "event": {"category": ["process"]}})
    res = scan(r, docs)
    shells = [a for a in res.alerts if a["kibana.alert.depth"] == 2]
    assert len(shells) == 20 and len(res.alerts) == 60  # 20 shells + 40 building blocks
    assert any(MAX_SIGNALS_WARNING in w for w in res.warnings)


def test_k06_sample_rule_same_shape_one_per_key():
    r = rule('sample by host.id [file where file.name == "a"] [file where file.name == "b"]')
    docs = [{"@timestamp": iso_ms(TEN - 2 * MIN + i), "host": {"id": h}, "event": {"category": ["file"]}, "file": {"name": n}}
            for i, (h, n) in enumerate([("x", "a"), ("x", "b"), ("x", "a"), ("x", "b"), ("y", "b"), ("y", "a")])]
    res = scan(r, docs)
    shells = [a for a in res.alerts if a["kibana.alert.depth"] == 2]
    assert sorted(s["host"]["id"] for s in shells) == ["x", "y"]  # one sample per host.id
    for s in shells:
        bbs = [a for a in res.alerts if a.get("kibana.alert.group.id") == s["kibana.alert.uuid"] and a is not s]
        assert [b["file"]["name"] for b in sorted(bbs, key=lambda b: b["kibana.alert.group.index"])] == ["a", "b"]  # filter order
