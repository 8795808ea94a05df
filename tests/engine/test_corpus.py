"""The seed rule's sample over the real recording udp-shells-1 (Elastic's own normalization of it,
auditbeat_oracle.ndjson.gz): one sample for each scenario the corpus says the rule alerts on,
none elsewhere — in batch and streaming."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from auditeql.engine import StreamingEngine, run_batch, timestamp_ms
from auditeql.eql.plan import QueryOptions

from .conftest import compile_text

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "spec" / "seed-rule.md"


@pytest.fixture(scope="module")
def corpus():
    if not (CORPUS / "auditbeat_oracle.ndjson.gz").exists():
        pytest.skip(f"corpus udp-shells-1 not found at {CORPUS} (it ships with the project's shared data)")
    docs = [orjson.loads(line) for line in gzip.open(CORPUS / "auditbeat_oracle.ndjson.gz")]
    for d in docs:  # the oracle lacks host.* (Auditbeat adds it from the machine it runs on)
        d["host"] = {"id": "recorder", "os": {"type": "linux"}}
    scenarios = json.loads((CORPUS / "scenarios.json").read_text())
    text = SEED.read_text()
    query = text[text.index("## Query (verbatim)"):].split("```")[1].strip()
    return docs, scenarios, compile_text(query)


def _scenario_of(match, scenarios):
    # scenario times come from the runner's clock, a few ms off the audit clock: take the last
    # scenario started (with 0.25 s slack) before the sample's newest event, if it ended after it
    t = max(timestamp_ms(e["@timestamp"]) for e in match.events) / 1000
    started = [s for s in scenarios if s["start"] - 0.25 <= t]
    if started and t <= started[-1]["end"] + 0.25:
        return started[-1]["name"]
    return None


def _check(matches, scenarios):
    got = sorted(_scenario_of(m, scenarios) or "outside any scenario" for m in matches)
    want = sorted(s["name"] for s in scenarios if s["seed_rule_alerts"])
    assert got == want
    for m in matches:
        assert [e["auditd"]["data"]["syscall"] for e in m.events] == ["execve", "socket", "connect"]
        assert len({e["process"]["pid"] for e in m.events}) == 1


def test_seed_rule_batch_on_real_recording(corpus):
    docs, scenarios, plan = corpus
    _check(run_batch(plan, docs, QueryOptions(size=100)), scenarios)


def test_seed_rule_streaming_on_real_recording(corpus):
    docs, scenarios, plan = corpus
    eng = StreamingEngine(plan, window_ms=9 * 60_000)
    out = []
    for d in docs:
        out.extend(eng.push(d))
    out.extend(eng.flush())
    _check(out, scenarios)
    assert eng.stats()["late_dropped"] == 0
