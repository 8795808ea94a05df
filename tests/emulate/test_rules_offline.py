"""The built-in rules on real recordings, offline (no root needed).

* udp-shells-1 (the shared reference recording; audit rules execve/socket/connect only):
  Elastic's seed rule must alert exactly where the recording says; auditeql's two rules must
  together catch every real UDP shell whose records are there, and nothing benign.
* emulate-1 (recorded here by ``auditeql emulate --check --record``, with the audit rules
  ``audit-rules`` derives, dup2/dup3 included): replaying it offline must give the same matrix
  as the live run did.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.emulate.check import Alert, attribute
from auditeql.emulate.runner import Outcome
from auditeql.engine import run_batch
from auditeql.engine.ordering import timestamp_ms
from auditeql.eql.plan import QueryOptions
from auditeql.fields import first
from auditeql.rules.loader import builtin_rules

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"
DATA = Path(__file__).parent / "data"
SEED = "Potential Reverse Shell via UDP"
HANDOFF = "UDP Reverse Shell via Socket Hand-off (auditeql)"
RELAY = "UDP Relay Tool Connected to a Remote Host (auditeql)"


def _docs(path: Path) -> list[dict]:
    norm = Normalizer(host=HostInfo.detect(host_id="recording-host", host_name="recording-host"))
    docs: list[dict] = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            docs.extend(norm.feed_line(line))
    docs.extend(norm.flush())
    return docs


def _alerts(docs: list[dict]) -> dict[str, list[Alert]]:
    out = {}
    for rule in builtin_rules():
        matches = run_batch(rule.plan, docs, QueryOptions(size=100_000))
        out[rule.name] = [Alert(rule.name, tuple(e for e in m.events if e is not None)) for m in matches]
    return out


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict], list[dict], dict[str, list[Alert]]]:
    if not (CORPUS / "audit.log.gz").exists():
        pytest.skip(f"reference recording not available at {CORPUS}")
    docs = _docs(CORPUS / "audit.log.gz")
    scenarios = json.loads((CORPUS / "scenarios.json").read_text())
    return docs, scenarios, _alerts(docs)


def _scenario_verdicts(scenarios: list[dict], alerts: list[Alert]) -> dict[str, int]:
    """Alerts per scenario: an alert belongs to the scenario whose window holds its last event
    (scenarios follow each other with 0.5 s gaps; the last event is the one that completes it)."""
    counts = {s["name"]: 0 for s in scenarios}
    for alert in alerts:
        t = max(alert.times)
        owners = [s["name"] for s in scenarios if s["start"] - 0.05 <= t <= s["end"] + 0.45]
        assert owners, f"alert outside every scenario at {t}: {[first(e, 'process.name') for e in alert.events]}"
        counts[owners[-1]] += 1
    return counts


def test_seed_rule_alerts_exactly_where_the_recording_says(corpus) -> None:
    _docs_, scenarios, alerts = corpus
    got = _scenario_verdicts(scenarios, alerts[SEED])
    assert {n for n, c in got.items() if c} == {s["name"] for s in scenarios if s["seed_rule_alerts"]}


def test_auditeql_rules_catch_every_recorded_udp_shell_and_nothing_benign(corpus) -> None:
    docs, scenarios, alerts = corpus
    handoff = _scenario_verdicts(scenarios, alerts[HANDOFF])
    relay = _scenario_verdicts(scenarios, alerts[RELAY])
    real = {s["name"] for s in scenarios if s["is_udp_reverse_shell"]}
    benign = {s["name"] for s in scenarios} - real
    assert not {n for n in benign if handoff[n] or relay[n]}
    caught = {n for n in real if handoff[n] or relay[n]}
    # busybox's nc on the recording machine has no -u: it printed its usage and exited, so there
    # is no socket() in its window and no rule can see a UDP shell there.
    busybox = next(s for s in scenarios if s["name"] == "busybox_nc_udp")
    sockets = [d for d in docs if first(d, "auditd.data.syscall") == "socket"
               and busybox["start"] <= timestamp_ms(first(d, "@timestamp")) / 1000 <= busybox["end"]
               and first(d, "process.name") == "busybox"]
    assert sockets == []
    assert real - caught == {"busybox_nc_udp"}
    # what each rule contributes (pinned, so that a change in either rule shows up here)
    assert {n for n in real if handoff[n]} == real - {"nc_openbsd_udp_fifo", "openssl_dtls", "busybox_nc_udp"}
    assert {n for n in real if relay[n]} == {"ncat_udp_exec", "nc_openbsd_udp_fifo", "socat_udp_exec", "openssl_dtls"}


@pytest.fixture(scope="module")
def emulate1() -> tuple[dict, list[dict], dict[str, list[Alert]]]:
    matrix = json.loads((DATA / "emulate-1.matrix.json").read_text())
    docs = _docs(DATA / "emulate-1.audit.log.gz")
    return matrix, docs, _alerts(docs)


def test_replaying_the_emulation_recording_gives_the_live_matrix(emulate1) -> None:
    matrix, docs, alerts = emulate1
    outcomes = [Outcome(r["technique"], r["status"], r["reason"], r["start"], r["end"], r["pid"]) for r in matrix["rows"]]
    att = attribute(outcomes, [a for rule_alerts in alerts.values() for a in rule_alerts], docs)
    for row in matrix["rows"]:
        if row["status"] != "ran":
            continue
        for rule in (SEED, HANDOFF, RELAY):
            live = row["verdicts"][rule]["verdict"]
            offline = bool(att.per_technique.get((row["technique"], rule)))
            assert offline == (live in ("detected", "false positive")), (row["technique"], rule, live)


def test_emulation_recording_facts(emulate1) -> None:
    """What the rules were designed from, checked on the recording itself."""
    matrix, _docs_, _alerts_ = emulate1
    rows = {r["technique"]: r for r in matrix["rows"]}
    ran = [r for r in matrix["rows"] if r["status"] == "ran"]
    union = "auditeql† rules together"
    assert all(r["verdicts"][union]["verdict"] == "detected" for r in ran if r["real"])
    assert all(r["verdicts"][union]["verdict"] == "quiet" for r in ran if not r["real"])
    # the until clause (bash restoring stdout after a /dev/udp metrics line) needs dup2 events
    assert rows["bash_udp_metrics_script"]["verdicts"][HANDOFF]["verdict"] == "quiet"
    # the seed rule's documented false positive: bash writing a metrics line to /dev/udp
    assert rows["bash_udp_metrics"]["verdicts"][SEED]["verdict"] == "false positive"


def test_the_until_clause_is_what_keeps_the_metrics_script_quiet(emulate1) -> None:
    """Without its `until` (bash restoring stdout after writing to /dev/udp) the hand-off rule
    reports a script that sends a metrics line and then runs commands."""
    from dataclasses import replace

    from auditeql.rules.loader import compile_rule

    matrix, docs, alerts = emulate1
    rule = next(r for r in builtin_rules() if r.name == HANDOFF)
    assert "until" in rule.query
    bare = compile_rule(replace(rule, query=rule.query.split("until")[0]))
    outcomes = [Outcome(r["technique"], r["status"], r["reason"], r["start"], r["end"], r["pid"]) for r in matrix["rows"]]

    def flagged(found: list[Alert]) -> set[str]:
        return {t for (t, _r) in attribute(outcomes, found, docs).per_technique}

    without = [Alert(HANDOFF, tuple(e for e in m.events if e)) for m in run_batch(bare.plan, docs, QueryOptions(size=100_000))]
    assert "bash_udp_metrics_script" in flagged(without)
    assert "bash_udp_metrics_script" not in flagged(alerts[HANDOFF])
