"""Kibana schedule replay: windows, overlaps, max_signals, determinism, and equality with naive evaluation."""

from __future__ import annotations

import gzip
import random
from dataclasses import replace

import orjson
import pytest

from auditeql.alerts.build import build_alerts
from auditeql.engine import run_batch
from auditeql.rules import builtin_rules, parse_rule
from auditeql.rules.replay import MAX_SIGNALS_WARNING, Replayer, query_options, run_times, window_time

from scan.scan_docs import SEED_ID, connect_ev, exec_ev, noise_ev, socket_ev

SEED = next(r for r in builtin_rules() if r.rule_id == SEED_ID)
MIN = 60_000
T = 1_795_960_800_000  # 2026-11-29T14:00:00Z, a multiple of 5 minutes


def replay(docs, rules=(SEED,), context=None):
    rp = Replayer(rules, context=context)
    for d in docs:
        rp.feed(d)
    return rp.finish()


def shells(result):
    return [a for a in result.alerts if a.get("kibana.alert.group.id") == a["kibana.alert.uuid"]]


def triple(ms, serial, pid, ppid=1, **kw):
    return [socket_ev(ms, serial, pid, ppid, **kw), connect_ev(ms, serial + 1, pid, ppid, **kw), exec_ev(ms + 1, serial + 2, pid, ppid, **kw)]


def test_runs_are_epoch_aligned_and_cover_the_data():
    times = run_times(SEED, T + 1, T + 11 * MIN)
    # first: the earliest run whose window reaches the data; last: the latest that still sees it
    assert times[0] == T + 5 * MIN and times[-1] == T + 20 * MIN
    assert all(t % (5 * MIN) == 0 for t in times)
    assert run_times(SEED, T, T) == [T, T + 5 * MIN]  # a window is inclusive at both ends


def test_one_sample_raises_one_group():
    res = replay(triple(T + 2 * MIN, 10, 500))
    [shell] = shells(res)
    assert len(res.alerts) == 4
    assert shell["kibana.alert.rule.rule_id"] == SEED_ID


def test_exec_and_connect_twenty_minutes_apart_never_alert():
    docs = [socket_ev(T + MIN, 1, 500, 1), exec_ev(T + MIN, 2, 500, 1), connect_ev(T + 21 * MIN, 3, 500, 1)]
    res = replay(docs)
    assert res.alerts == []
    assert res.scheduled_runs >= 5  # the data was really replayed over its span
    # control: the same three events 1 minute apart do alert (the 9-minute look-back holds them)
    docs[2] = connect_ev(T + 2 * MIN, 3, 500, 1)
    assert len(shells(replay(docs))) == 1
    # and the whole-data batch (no windows) would have alerted on the 20-minute pair: the windows matter
    far = [socket_ev(T + MIN, 1, 500, 1), exec_ev(T + MIN, 2, 500, 1), connect_ev(T + 21 * MIN, 3, 500, 1)]
    assert len(run_batch(SEED.plan, far, query_options(SEED))) == 1


def test_overlap_region_never_alerts_twice():
    # 14:03 lies in the windows of the 14:05 run [13:56, 14:05] and the 14:10 run [14:01, 14:10]
    res = replay(triple(T + 3 * MIN, 10, 500))
    assert run_times(SEED, T + 3 * MIN, T + 3 * MIN + 1) == [T + 5 * MIN, T + 10 * MIN]  # both runs see it
    assert res.scheduled_runs == 2 and res.runs[0].results == 1
    assert len(res.alerts) == 4
    assert len(naive([SEED], triple(T + 3 * MIN, 10, 500))) == 4  # evaluating both windows in full agrees
    from auditeql.alerts.build import iso_ms

    assert {a["@timestamp"] for a in res.alerts} == {iso_ms(T + 5 * MIN)}  # the first run that found it


def test_events_in_overlap_and_outside_join_in_the_later_run_only():
    # socket+connect at 13:57 (only in the 14:05 run), exec at 14:04 (in the 14:05 and 14:10 runs):
    # the 14:05 run sees all three -> one alert; the 14:10 run sees only the exec -> nothing new
    docs = [socket_ev(T - 3 * MIN, 1, 500, 1), connect_ev(T - 3 * MIN, 2, 500, 1), exec_ev(T + 4 * MIN, 3, 500, 1)]
    res = replay(docs)
    assert len(shells(res)) == 1
    # moved 1 ms apart more than 9 minutes: no run holds all three
    docs[2] = exec_ev(T - 3 * MIN + 9 * MIN + 1, 3, 500, 1)
    assert shells(replay(docs)) == []
    docs[2] = exec_ev(T - 3 * MIN + 9 * MIN, 3, 500, 1)  # exactly 9 minutes: inclusive bounds, but runs are on the grid
    res = replay(docs)
    assert len(shells(res)) == (1 if any(t - 9 * MIN <= T - 3 * MIN and T + 6 * MIN <= t for t in run_times(SEED, T - 3 * MIN, T + 6 * MIN)) else 0)


def test_max_signals_cap_and_warning():
    capped = replace(SEED, max_signals=2)
    docs = [d for i in range(5) for d in triple(T + 2 * MIN, 100 + 10 * i, 1000 + i)]
    res = replay(docs, rules=(capped,))
    assert len(shells(res)) == 2  # both runs see all five samples, each returns only 2: the same 2
    assert sorted(s["process"]["pid"] for s in shells(res)) == [1000, 1001]  # ascending key order
    warnings = [w for w in res.warnings if MAX_SIGNALS_WARNING in w]
    assert len(warnings) == 1 and "max_signals = 2" in warnings[0]  # the second run is identical, not re-run
    # with the default 100 there is no warning and all 5 alert
    res = replay(docs)
    assert len(shells(res)) == 5 and not any(MAX_SIGNALS_WARNING in w for w in res.warnings)


def test_cap_applies_per_run():
    capped = replace(SEED, max_signals=1)
    docs = triple(T + 2 * MIN, 10, 500) + triple(T + 30 * MIN, 20, 600)
    res = replay(docs, rules=(capped,))
    assert sorted(s["process"]["pid"] for s in shells(res)) == [500, 600]


def test_ids_are_identical_across_scans():
    docs = [d for i in range(4) for d in triple(T + i * 7 * MIN, 100 + 10 * i, 1000 + i)]
    a = replay(docs).alerts
    random.Random(1).shuffle(docs)  # input order of a different scan does not matter
    b = replay(docs).alerts
    assert sorted(orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in a) == sorted(orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in b)


EVENT_RULE = """
[rule]
rule_id = "ev-rule"
name = "Connect from a shell"
description = "test"
type = "eql"
language = "eql"
risk_score = 10
severity = "low"
interval = "5m"
from = "now-9m"
timestamp_override = "event.ingested"
query = 'network where event.action == "connected-to"'
"""


def test_timestamp_override_with_fallback():
    rule = parse_rule(EVENT_RULE, "ev.toml")
    f = connect_ev(T + 2 * MIN, 1, 500, 1)
    f["event"]["ingested"] = "2026-11-29T13:40:00.000Z"  # override present: this time counts
    g = connect_ev(T + 2 * MIN, 2, 501, 1)  # no override: @timestamp counts
    assert window_time(f, rule, lambda v: __import__("auditeql.engine", fromlist=["x"]).timestamp_ms(v)) == T - 20 * MIN
    res = replay([f, g], rules=(rule,))
    assert len(res.alerts) == 2
    from auditeql.alerts.build import iso_ms

    by_pid = {a["process"]["pid"]: a["@timestamp"] for a in res.alerts}
    assert by_pid[500] == iso_ms(T - 20 * MIN)  # found by the 13:40 run
    assert by_pid[501] == iso_ms(T + 5 * MIN)
    disabled = replace(rule, timestamp_override_fallback_disabled=True)
    res = replay([f, g], rules=(disabled,))
    assert [a["process"]["pid"] for a in res.alerts] == [500]
    assert any("no usable event.ingested" in w for w in res.warnings)


def test_event_rule_max_signals_takes_earliest():
    rule = replace(parse_rule(EVENT_RULE, "ev.toml"), max_signals=3, timestamp_override=None)
    docs = [connect_ev(T + 2 * MIN + i, i, 500 + i, 1) for i in range(6)]
    res = replay(docs, rules=(rule,))
    assert sorted(a["process"]["pid"] for a in res.alerts) == [500, 501, 502]
    assert any(MAX_SIGNALS_WARNING in w for w in res.warnings)


def naive(rules, docs):
    """Reference: every scheduled run evaluated over ALL documents in its window, no shortcuts."""
    from auditeql.engine import timestamp_ms

    out, seen = [], set()
    for rule in rules:
        stamped = [(window_time(d, rule, timestamp_ms), i, d) for i, d in enumerate(docs)]
        stamped = [s for s in stamped if s[0] is not None]
        if not stamped:
            continue
        stamped.sort(key=lambda s: (s[0], s[1]))
        lo, hi = stamped[0][0], stamped[-1][0]
        for t in run_times(rule, int(lo), int(hi)):
            window = [d for ts, _, d in stamped if t - rule.from_offset_ms <= ts <= t - rule.to_offset_ms]
            for result in run_batch(rule.plan, window, query_options(rule)):
                for alert in build_alerts(rule, result, run_time_ms=t):
                    if alert["kibana.alert.uuid"] not in seen:
                        seen.add(alert["kibana.alert.uuid"])
                        out.append(alert)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_replay_equals_naive_per_window_evaluation(seed):
    rng = random.Random(seed)
    docs, serial = [], 0
    for _ in range(rng.randint(20, 80)):
        serial += 1
        ms = T + rng.randint(0, 60 * MIN)
        pid, ppid = rng.choice([(500, 1), (501, 1), (502, 7), (503, 7)])
        kind = rng.choice([exec_ev, socket_ev, connect_ev, noise_ev, socket_ev])
        if kind is socket_ev:
            d = socket_ev(ms, serial, pid, ppid, a1=rng.choice(["2", "2", "80002"]))
        elif kind is noise_ev:
            d = noise_ev(ms, serial, pid, ppid)
        else:
            d = kind(ms, serial, pid, ppid)
        docs.append(d)
    rules = [replace(SEED, max_signals=rng.choice([1, 2, 100])), replace(parse_rule(EVENT_RULE, "ev.toml"), max_signals=rng.choice([1, 3, 100]))]
    fast = replay(docs, rules=rules).alerts
    slow = naive(rules, docs)
    assert [a["kibana.alert.uuid"] for a in fast] == [a["kibana.alert.uuid"] for a in slow]
    assert fast == slow


def test_replay_equals_naive_on_the_recorded_corpus(corpus):
    docs = []
    with gzip.open(corpus / "auditbeat_oracle.ndjson.gz") as fh:
        for line in fh:
            d = orjson.loads(line)
            d["host"] = {"id": "corpus-host", "os": {"type": "linux"}}
            docs.append(d)
    fast = replay(docs).alerts
    assert len(shells(replay(docs))) == 9
    assert [a["kibana.alert.uuid"] for a in fast] == [a["kibana.alert.uuid"] for a in naive([SEED], docs)]


def test_alerts_of_the_same_rule_are_not_source_events():
    docs = triple(T + 2 * MIN, 10, 500)
    first = replay(docs).alerts
    again = replay(docs + first).alerts  # e.g. an export that mixes events and alerts
    assert [a["kibana.alert.uuid"] for a in again] == [a["kibana.alert.uuid"] for a in first]
    other = replace(SEED, rule_id="another-rule")
    assert len(replay(first, rules=(other,)).alerts) > 0  # another rule may alert on them, as in Kibana


def test_engine_seam_dispatches_through_the_registry(monkeypatch):
    from auditeql.rules import replay as replay_mod

    calls = []

    def counting():
        inner = replay_mod._python_runner()

        def run(rule, docs, options):
            calls.append(len(docs))
            return inner(rule, docs, options)

        return run

    monkeypatch.setitem(replay_mod.ENGINES, "counting", counting)
    rp = Replayer([SEED], engine="counting")
    for d in triple(T + 2 * MIN, 10, 500):
        rp.feed(d)
    assert len(shells(rp.finish())) == 1 and calls == [3]
    with pytest.raises(ValueError, match="unknown engine"):
        Replayer([SEED], engine="nope")


def test_a_wild_timestamp_does_not_blow_up_the_schedule():
    docs = triple(T + 2 * MIN, 10, 500) + [exec_ev(1_000, 99, 77, 1)]  # one event stamped 1970
    res = replay(docs)  # 5.9 million scheduled runs, only those with candidates evaluated
    assert len(shells(res)) == 1 and res.scheduled_runs > 5_000_000
    assert len(res.runs) <= 4


def test_rule_fields_are_cached_but_never_shared_between_alerts():
    """build_alerts reuses one rule's kibana.alert.rule.* fields across groups (speed) but every
    alert gets its own lists and dicts, equal to a fresh rule_fields(), also for a changed rule."""
    from auditeql.alerts.build import rule_fields
    from auditeql.engine.match import Match

    docs = triple(T + MIN, 10, 500) + triple(T + 2 * MIN, 20, 600)
    groups = shells(replay(docs))
    assert len(groups) == 2
    a, b = groups
    assert a["kibana.alert.rule.tags"] == b["kibana.alert.rule.tags"] == list(SEED.tags)
    assert a["kibana.alert.rule.tags"] is not b["kibana.alert.rule.tags"]
    assert a["kibana.alert.rule.parameters"] is not b["kibana.alert.rule.parameters"]
    fresh = rule_fields(SEED)
    assert {k: a[k] for k in fresh} == fresh
    other = replace(SEED, name="renamed", tags=("x",))
    alerts = build_alerts(other, Match(join_keys=(), events=tuple(docs[:3])), run_time_ms=T + 5 * MIN)
    assert alerts[0]["kibana.alert.rule.name"] == "renamed" and alerts[0]["kibana.alert.rule.tags"] == ["x"]
