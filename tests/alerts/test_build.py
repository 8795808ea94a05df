"""Kibana-shaped alert documents: groups, ids, intersection, reason, original_event."""

from __future__ import annotations

import copy
import hashlib

from auditeql.alerts.build import build_alerts, source_id, source_index
from auditeql.engine import Match
from auditeql.rules import builtin_rules

SEED_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"
RULE = next(r for r in builtin_rules(compile=False) if r.rule_id == SEED_ID)
RUN = 1_795_961_400_000  # a replayed run time


def ev(serial: int, ts: str, **extra) -> dict:
    doc = {
        "@timestamp": ts,
        "host": {"id": "h-1", "name": "web-01", "os": {"type": "linux"}},
        "process": {"pid": 4242, "parent": {"pid": 4241}, "name": "bash", "args": ["bash", "-i"]},
        "user": {"id": "0", "name": "root"},
        "auditd": {"sequence": serial, "data": {"syscall": "execve"}},
        "event": {"category": ["process"], "type": ["start"], "action": "executed", "kind": "event", "module": "auditd"},
        "tags": ["rs_exec", "common"],
    }
    doc.update(extra)
    return doc


def three():
    e1 = ev(10, "2026-11-30T10:00:00.100Z")
    e2 = ev(11, "2026-11-30T10:00:00.100Z", auditd={"sequence": 11, "data": {"syscall": "socket", "a1": "2"}},
            event={"category": ["process"], "type": ["info"], "kind": "event", "module": "auditd"}, tags=["rs_sock", "common"])
    e3 = ev(12, "2026-11-30T10:00:00.101Z", auditd={"sequence": 12, "data": {"syscall": "connect"}},
            event={"category": ["network"], "type": ["connection", "start"], "action": "connected-to", "kind": "event", "module": "auditd"},
            destination={"ip": "203.0.113.2", "port": 53001}, network={"direction": "egress"}, tags=["rs_conn", "common"])
    return [e1, e2, e3]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_group_shape_and_ids_follow_kibana():
    events = three()
    before = copy.deepcopy(events)
    alerts = build_alerts(RULE, Match(("h-1", 4242, 4241), tuple(events)), run_time_ms=RUN)
    assert events == before  # source documents untouched
    shell, *bbs = alerts
    assert len(bbs) == 3
    refs = [(source_id(e), source_index(e)) for e in events]
    base = "".join(i + x for i, x in refs) + SEED_ID
    assert [b["kibana.alert.uuid"] for b in bbs] == [sha(base + str(i)) for i in range(3)]
    ancestors = []
    for (i, x), b in zip(refs, bbs):
        ancestors += [{"id": i, "index": x, "type": "event", "depth": 0},
                      {"id": b["kibana.alert.uuid"], "index": "", "type": "signal", "depth": 1, "rule": SEED_ID}]
    assert shell["kibana.alert.ancestors"] == ancestors
    assert shell["kibana.alert.uuid"] == shell["kibana.alert.group.id"] == sha("".join(a["id"] + a["index"] for a in ancestors) + SEED_ID)
    assert shell["kibana.alert.depth"] == 2 and "kibana.alert.building_block_type" not in shell
    for i, (b, e) in enumerate(zip(bbs, events)):
        assert b["kibana.alert.depth"] == 1
        assert b["kibana.alert.building_block_type"] == "default"
        assert b["kibana.alert.group.id"] == shell["kibana.alert.uuid"]
        assert b["kibana.alert.group.index"] == i
        assert b["kibana.alert.ancestors"] == [{"id": refs[i][0], "index": refs[i][1], "type": "event", "depth": 0}]
        assert b["kibana.alert.original_time"] == e["@timestamp"]
        assert b["event"]["kind"] == "signal"
        assert b["kibana.alert.original_event.kind"] == "event"
        assert b["kibana.alert.original_event.category"] == e["event"]["category"]
        assert b["auditd"] == e["auditd"]  # source fields merged in
    for a in alerts:
        assert a["@timestamp"] == "2026-11-29T14:10:00.000Z"
        assert a["kibana.alert.rule.name"] == "Potential Reverse Shell via UDP"
        assert a["kibana.alert.rule.rule_id"] == SEED_ID
        assert a["kibana.alert.rule.risk_score"] == 47 and a["kibana.alert.risk_score"] == 47
        assert a["kibana.alert.rule.severity"] == "medium" and a["kibana.alert.severity"] == "medium"
        assert a["kibana.alert.rule.threat"][0]["tactic"]["id"] == "TA0002"
        assert a["kibana.alert.rule.threat"][0]["technique"][0]["subtechnique"][0]["id"] == "T1059.004"
        assert a["kibana.alert.rule.interval"] == "5m" and a["kibana.alert.rule.from"] == "now-9m"
        assert a["kibana.alert.rule.version"] == 7 and a["kibana.alert.rule.tags"][2] == "OS: Linux"
        assert a["kibana.alert.status"] == "active" and a["kibana.alert.workflow_status"] == "open"
        assert a["event"]["kind"] == "signal"


def test_shell_is_the_intersection_of_the_events():
    shell, *_ = build_alerts(RULE, Match((), tuple(three())), run_time_ms=RUN)
    assert shell["host"] == {"id": "h-1", "name": "web-01", "os": {"type": "linux"}}
    assert shell["process"]["pid"] == 4242 and shell["process"]["args"] == ["bash", "-i"]
    assert shell["tags"] == ["common"]  # arrays intersected
    assert "destination" not in shell  # only one event had it
    assert "syscall" not in shell.get("auditd", {}).get("data", {})  # differs between events
    assert shell["event"] == {"kind": "signal", "module": "auditd"}
    assert shell["kibana.alert.original_event.module"] == "auditd"
    assert "kibana.alert.original_event.action" not in shell


def test_ids_are_deterministic_and_depend_on_events_and_rule():
    a1 = build_alerts(RULE, Match((), tuple(three())), run_time_ms=RUN)
    a2 = build_alerts(RULE, Match((), tuple(three())), run_time_ms=RUN + 300_000)  # another run finds it again
    assert [a["kibana.alert.uuid"] for a in a1] == [a["kibana.alert.uuid"] for a in a2]
    other_events = three()
    other_events[2]["auditd"]["sequence"] = 99
    a3 = build_alerts(RULE, Match((), tuple(other_events)), run_time_ms=RUN)
    assert not {a["kibana.alert.uuid"] for a in a3} & {a["kibana.alert.uuid"] for a in a1}
    from dataclasses import replace

    a4 = build_alerts(replace(RULE, rule_id="another-rule"), Match((), tuple(three())), run_time_ms=RUN)
    assert not {a["kibana.alert.uuid"] for a in a4} & {a["kibana.alert.uuid"] for a in a1}


def test_source_id_rules():
    e = ev(77, "2026-11-30T10:00:00.100Z")
    assert source_id(dict(e, _id="es-id-1")) == "es-id-1"
    # same audit event in Auditd Manager shape (serial in event.sequence, other fields differ): same id
    am = {"@timestamp": "2026-11-30T10:00:00.1Z", "host": {"id": "h-1"}, "event": {"sequence": 77}}
    assert source_id(am) == source_id(e)
    assert source_id(ev(78, "2026-11-30T10:00:00.100Z")) != source_id(e)
    # no serial: canonical JSON, independent of key order
    a = {"@timestamp": "2026-11-30T10:00:00Z", "x": {"b": 1, "a": 2}}
    b = {"x": {"a": 2, "b": 1}, "@timestamp": "2026-11-30T10:00:00Z"}
    assert source_id(a) == source_id(b) != source_id(dict(a, y=1))
    assert source_index(e) == "auditeql"
    assert source_index(dict(e, data_stream={"type": "logs", "dataset": "auditd_manager.auditd", "namespace": "prod"})) == "logs-auditd_manager.auditd-prod"
    assert source_index(dict(e, _index="auditbeat-8.17.0")) == "auditbeat-8.17.0"


def test_single_event_alert():
    from dataclasses import replace

    rule = replace(RULE, query='process where true')
    e = ev(5, "2026-11-30T10:00:00.100Z")
    [a] = build_alerts(rule, e, run_time_ms=RUN)
    assert a["kibana.alert.uuid"] == sha(f"auditeql{source_id(e)}undefineddefault:{SEED_ID}")
    assert a["kibana.alert.depth"] == 1 and "kibana.alert.group.id" not in a
    assert a["kibana.alert.ancestors"] == [{"id": source_id(e), "index": "auditeql", "type": "event", "depth": 0}]
    assert a["kibana.alert.reason"] == "process event with process bash, by root on web-01 created medium alert Potential Reverse Shell via UDP."


def test_reason_mentions_destination():
    alerts = build_alerts(RULE, Match((), tuple(three())), run_time_ms=RUN)
    assert alerts[3]["kibana.alert.reason"] == (
        "network event with process bash, destination 203.0.113.2:53001, by root on web-01 "
        "created medium alert Potential Reverse Shell via UDP."
    )
    assert alerts[0]["kibana.alert.reason"].startswith("event with process bash, by root on web-01")


def test_missing_event_slots_are_skipped():
    e = three()
    alerts = build_alerts(RULE, Match((), (e[0], None, e[2])), run_time_ms=RUN)
    assert len(alerts) == 3 and [a.get("kibana.alert.group.index") for a in alerts[1:]] == [0, 1]


def test_source_id_survives_an_unparseable_timestamp():
    e = ev(5, "not a date")
    assert source_id(e) == source_id(ev(5, "not a date")) != source_id(ev(6, "not a date"))
