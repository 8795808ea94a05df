"""State stays bounded under adversarial churn: a million fresh pids / serials never grow memory.

An attacker who can make the machine fork (or write audit lines) controls how many distinct
pids, serials and comm values auditeql sees. Every per-key structure must have a cap, and the
caps must hold. These tests assert *sizes*, never times.
"""

from __future__ import annotations

from auditeql.alerts.context import ProcessContext
from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.audit.reassembly import Reassembler
from auditeql.audit.records import AuditRecord, parse_line
from auditeql.engine import StreamingEngine
from auditeql.eql import compile_query
from auditeql.eql.plan import QueryOptions

import pytest

MILLION = 1_000_000
#: Default runs use 50k fresh keys against caps of 5k (the cap-to-churn ratio is what matters);
#: the slow variants (pytest -m slow) push the full million.
CHURN = [pytest.param(50_000, id="50k"), pytest.param(MILLION, id="1M", marks=pytest.mark.slow)]
HOST = HostInfo.detect(host_id="bounded-host", host_name="bounded")

SAMPLE = """sample by host.id, process.pid
  [process where event.action == "executed"] [process where auditd.data.syscall == "socket"]"""
SEQUENCE = """sequence by host.id, process.pid with maxspan=1h
  [process where event.action == "executed"] [process where auditd.data.syscall == "socket"]
  [network where event.action == "connected-to"]"""


def test_reassembler_in_flight_limit_under_a_million_incomplete_events() -> None:
    """Records that never complete (no PROCTITLE/EOE), each with a fresh serial: at most 50 wait."""
    r = Reassembler(max_in_flight=50, timeout_ms=10**12)  # no time-based expiry: only the limit
    released = 0
    peak = 0
    for serial in range(1, MILLION + 1):
        released += len(r.push(AuditRecord(1300, 1_700_000_000, 0, serial, "arch=c000003e syscall=59")))
        if r.in_flight > peak:
            peak = r.in_flight
    assert peak <= 51
    assert released + r.in_flight == MILLION
    assert r.stats.evicted_in_flight == released


def test_normalizer_pushdown_memory_is_capped() -> None:
    """A million dropped serials: the normalizer remembers a bounded number of them."""
    norm = Normalizer("auditd-manager", HOST, keep=lambda t, a, s: False)
    body = "arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid={} comm=\"x\""
    for serial in range(1, 50_001):
        norm.feed_record(AuditRecord(1300, 1_700_000_000, 0, serial, body.format(serial)))
    assert norm.stats["dropped_by_keep"] == 50_000
    assert len(norm._dropped) <= 4096  # noqa: SLF001 - the cap under test
    assert norm.reassembler.in_flight == 0


@pytest.mark.parametrize("n", CHURN)
def test_process_context_is_capped_at_max_pids(n: int) -> None:
    ctx = ProcessContext(max_pids=5_000, per_pid=4)
    for pid in range(1, n + 1):
        ctx.observe({"process": {"pid": pid, "name": "x"}, "host": {"id": "h"}}, pid)
    assert len(ctx) == 5_000
    # the most recent pids are the ones kept
    assert ctx.lookup("h", n, n) is not None
    assert ctx.lookup("h", 1, n) is None


def _docs(n: int):
    for i in range(n):
        pid = 100_000 + i  # a fresh pid every event
        yield {
            "@timestamp": 1_700_000_000_000 + i,
            "host": {"id": "h"},
            "event": {"category": ["process"], "action": "executed"},
            "process": {"pid": pid},
        }


@pytest.mark.parametrize("n", CHURN)
def test_streaming_sample_state_bounded_by_max_keys(n: int) -> None:
    engine = StreamingEngine(compile_query(SAMPLE), QueryOptions(), window_ms=10**12, max_keys=5_000)
    for doc in _docs(n):
        engine.push(doc)
    s = engine.stats()
    assert s["keys"] <= 5_000
    assert s["buffered"] <= 100_000


@pytest.mark.parametrize("n", CHURN)
def test_streaming_sequence_state_and_reorder_buffer_bounded(n: int) -> None:
    engine = StreamingEngine(compile_query(SEQUENCE), QueryOptions(), window_ms=3_600_000, reorder_ms=10**12,
                             max_keys=5_000, max_buffer=10_000)
    peak_buffer = 0
    for doc in _docs(n):
        engine.push(doc)
        b = len(engine._buffer)  # noqa: SLF001 - the cap under test
        if b > peak_buffer:
            peak_buffer = b
    s = engine.stats()
    assert peak_buffer <= 10_000
    assert s["keys"] <= 5_000


@pytest.mark.parametrize("n", [pytest.param(30_000, id="30k"), pytest.param(MILLION, id="1M", marks=pytest.mark.slow)])
def test_pushdown_line_feeder_memories_are_capped(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh comm values and serials every line: the decision cache and header memories stay capped."""
    from auditeql.rules import load_rules
    from auditeql.rules import pushdown

    if n < MILLION:  # shrink the caps so that a short run overflows them too
        monkeypatch.setattr(pushdown, "_SHAPES", 1_000)
    PushDown, _SHAPES = pushdown.PushDown, pushdown._SHAPES  # noqa: N806, SLF001

    pd = PushDown.from_rules(load_rules([], [], builtin=True), defer=False)
    feeder = pd.line_feeder(Normalizer("auditd-manager", HOST, pd.normalizer_keep))
    in_flight = 0
    for i in range(n):
        line = (
            f"type=SYSCALL msg=audit(1700000000.000:{i}): arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 "
            f'a2=0 a3=0 items=0 ppid=1 pid={i} comm="c{i}" exe="/x"'
        ).encode()
        feeder.feed(line)
        if i % 3 == 0:
            feeder.feed(f"type=CWD msg=audit(1700000000.000:{i + 1}): cwd=\"/\"".encode())
        # skipped events wait as placeholders in the normalizer's reassembler (none of these is
        # ever completed), whose in-flight limit bounds them
        in_flight = max(in_flight, feeder.normalizer.reassembler.in_flight, len(feeder.normalizer._placeholders))  # noqa: SLF001
    feeder.flush()
    assert len(feeder._shapes) <= _SHAPES  # noqa: SLF001
    assert len(pd._arg_decisions) <= _SHAPES  # noqa: SLF001
    assert in_flight <= 51
    assert feeder.skipped_events > 0
