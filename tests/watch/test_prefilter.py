"""The raw-record push-down: sound (never hides an event a filter matches) and effective."""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditeql.alerts.build import source_id
from auditeql.audit import tables
from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.eql.parser import parse_query
from auditeql.rules import builtin_rules
from auditeql.eql.plan import plan_filters
from auditeql.watch.prefilter import RecordPrefilter, required_names

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"


@dataclass(frozen=True)
class _R:
    name: str
    query: str


@functools.cache
def _netlink_records() -> list[tuple[int, bytes]]:
    """The recording's lines as the kernel would have sent them over netlink (type, payload)."""
    if not CORPUS.exists():
        pytest.skip(f"the recording {CORPUS} is not available")
    out = []
    with gzip.open(CORPUS, "rb") as fh:
        for line in fh:
            line = line.rstrip(b"\n").split(b"\x1d", 1)[0]
            name, _, rest = line.partition(b" msg=")
            rtype = tables.RECORD_TYPE_NUMBERS.get(name[5:].decode())
            if rtype is not None:
                out.append((rtype, rest))
    return out


@functools.cache
def _all_docs() -> list[dict]:
    return _docs(_netlink_records(), None)


def _docs(records: list[tuple[int, bytes]], pre: RecordPrefilter | None) -> list[dict]:
    norm = Normalizer("auditd-manager", HostInfo.fixed({"id": "h", "os": {"type": "linux"}}))
    docs = []
    for rtype, payload in records:
        if pre is None or pre.keep(rtype, payload):
            docs.extend(norm.feed_netlink(rtype, payload))
    docs.extend(norm.flush())
    return docs


def test_prefilter_keeps_every_event_a_builtin_filter_matches() -> None:
    rules = builtin_rules()
    records = _netlink_records()
    pre = RecordPrefilter(rules)
    assert pre.active
    everything = _all_docs()
    filtered = _docs(records, pre)
    preds = [f.predicate for r in rules for f in plan_filters(r.plan)]

    def matching(docs: list[dict]) -> set[str]:
        return {source_id(d) for d in docs if any(p(d) for p in preds)}

    want = matching(everything)
    assert want, "the recording should contain events the built-in rules look at"
    assert matching(filtered) == want  # sound: nothing a filter matches was skipped
    # (every event of this recording is an execve, socket or connect, and one built-in rule
    # looks at every execve: here the prefilter can only be sound, the next test shows it effective)


def test_seed_rule_alone_skips_most_events() -> None:
    seed = [r for r in builtin_rules() if r.rule_id == "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"]
    records = _netlink_records()
    pre = RecordPrefilter(seed)
    everything, filtered = _all_docs(), _docs(records, pre)
    pred = [f.predicate for f in plan_filters(seed[0].plan)]
    want = {source_id(d) for d in everything if any(p(d) for p in pred)}
    assert {source_id(d) for d in filtered if any(p(d) for p in pred)} == want
    assert len(filtered) < len(everything) / 2


N, E = "process.name", "process.executable"


@pytest.mark.parametrize(
    ("condition", "names"),
    [
        ('process.name : ("bash", "Python*")', {(N, "bash"), (N, "python*")}),
        ('process.name == "a*b"', {(N, "a\\*b")}),
        ('process.name in ("sh", "ZSH") and event.action == "executed"', {(N, "sh"), (N, "zsh")}),
        ('event.action == "executed" and process.name : "nc"', {(N, "nc")}),
        ('process.name : "sh" or process.executable : "*/bash"', {(N, "sh"), (E, "*/bash")}),
        ('process.name : "nc" or (process.name == "busybox" and process.args : "nc")', {(N, "nc"), (N, "busybox")}),
        ('process.name : "sh" or user.name == "root"', None),
        ('process.name regex "ba.*"', None),
        ('not process.name : "sh"', None),
    ],
)
def test_required_names(condition: str, names: set[tuple[str, str]] | None) -> None:
    got = required_names(parse_query(f"any where {condition}").filter.condition)
    assert got == (frozenset(names) if names is not None else None)


def _syscall_record(comm: bytes, syscall: int = 59, serial: int = 7) -> bytes:
    return (b"audit(1700000000.000:%d): arch=c000003e syscall=%d success=yes exit=0 a0=1 a1=2 a2=3 a3=4 "
            b"items=0 ppid=1 pid=2 auid=0 uid=0 comm=%s exe=\"/x\" key=(null)" % (serial, syscall, comm))


def test_decisions_on_raw_records() -> None:
    pre = RecordPrefilter([_R("r", 'process where event.action == "executed" and process.name : ("bash", "py*")')])
    assert pre.keep(1300, _syscall_record(b'"bash"', serial=1))
    assert pre.keep(1300, _syscall_record(b'"Python3"', serial=2))  # ':' ignores case
    assert not pre.keep(1300, _syscall_record(b'"true"', serial=3))
    assert not pre.keep(1327, b"audit(1700000000.000:3): proctitle=74727565")  # rest of event 3 skipped
    assert pre.keep(1327, b"audit(1700000000.000:1): proctitle=62617368")
    assert not pre.keep(1300, _syscall_record(b'"bash"', syscall=42, serial=4))  # connect: not needed
    assert pre.keep(1300, _syscall_record(b"62612073", serial=5))  # hex comm: cannot tell, keep
    by_exe = RecordPrefilter([_R("e", 'process where process.name : "nc" or process.executable : "*/SOCAT"')])
    assert by_exe.keep(1300, _syscall_record(b'"x"', serial=8).replace(b'exe="/x"', b'exe="/usr/bin/socat"'))
    assert not by_exe.keep(1300, _syscall_record(b'"x"', serial=9))
    assert pre.skipped_events == 2
    # a filter with no usable condition turns the prefilter off
    off = RecordPrefilter([_R("any", 'any where user.name == "root"')])
    assert not off.active and off.keep(1300, _syscall_record(b'"true"'))


def test_skipped_event_records_that_came_first_do_not_hold_back_later_events() -> None:
    """Regression: EVENT_LISTENER (1335) precedes its SYSCALL; skipping the SYSCALL must discard it,
    or the reassembler (which releases events in serial order) holds every later event for 2 s."""
    import time

    seed = [r for r in builtin_rules() if r.rule_id == "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"]
    norm = Normalizer("auditd-manager", HostInfo.fixed({"id": "h", "os": {"type": "linux"}}), clock=time.monotonic)
    pre = RecordPrefilter(seed, on_drop=norm.reassembler.discard)
    records = [
        (1335, b"audit(1700000000.000:10): pid=5 uid=0 auid=0 tty=(none) ses=1 comm=\"python\" nl-mcgrp=1 op=connect res=1"),
        (1300, _syscall_record(b'"python"', syscall=54, serial=10)),
        (1327, b"audit(1700000000.000:10): proctitle=707974686F6E"),
        (1320, b"audit(1700000000.000:10): "),
        (1300, _syscall_record(b'"bash"', syscall=59, serial=11)),
        (1327, b'audit(1700000000.000:11): proctitle="bash"'),
    ]
    docs = []
    for rtype, payload in records:
        if pre.keep(rtype, payload):
            docs.extend(norm.feed_netlink(rtype, payload))
    assert [d["process"]["name"] for d in docs] == ["bash"]  # released at once, not after a timeout
    assert norm.reassembler.in_flight == 0


def _alerts_through_runner(tmp_path: Path, rules: list, prefilter: RecordPrefilter | None) -> list[str]:
    """Alert uuids from the real live pipeline, fed the recording as audisp binary frames."""
    import io
    import os
    import struct

    from auditeql.audit.host import HostInfo
    from auditeql.sources.audisp import StreamReader
    from auditeql.watch.inputs import StreamInput
    from auditeql.watch.runner import LiveRunner, WatchConfig

    frames = tmp_path / f"frames-{prefilter is not None}.bin"
    with open(frames, "wb") as fh:
        for rtype, payload in _netlink_records():
            fh.write(struct.pack("=IIII", 0, 16, rtype, len(payload)) + payload)
    fd = os.open(frames, os.O_RDONLY)
    try:
        norm = Normalizer("auditd-manager", HostInfo.fixed({"id": "h", "os": {"type": "linux"}}))
        source = StreamInput(norm, StreamReader(fd), prefilter=prefilter)
        out = io.BytesIO()
        runner = LiveRunner(source, rules, config=WatchConfig(fmt="ndjson", alert_out=out, health_interval=0,
                                                               stderr=io.StringIO()))
        runner.run()
    finally:
        os.close(fd)
    import orjson

    return sorted(orjson.loads(line)["kibana.alert.uuid"] for line in out.getvalue().splitlines())


def test_sequence_stage_narrowing_changes_no_alert(tmp_path: Path) -> None:
    """All built-in rules (one looks at *every* execve in its third stage): with the prefilter, the
    live pipeline produces exactly the same alerts, while skipping execs no pending sequence awaits."""
    rules = builtin_rules()
    pre = RecordPrefilter(rules)
    assert pre.active and pre._awaits, "the hand-off rule's third stage should be narrowed by awaited keys"
    plain = _alerts_through_runner(tmp_path, rules, None)
    narrowed = _alerts_through_runner(tmp_path, rules, pre)
    assert plain, "the recording should raise alerts"
    assert narrowed == plain
    assert pre.skipped_events > 500


def test_reload_keeps_awaited_keys_of_unchanged_rules() -> None:
    rules = builtin_rules()
    pre = RecordPrefilter(rules)
    tracker = pre._awaits[0]
    tracker.seen[(4242,)] = 1
    pre.update(builtin_rules())  # SIGHUP: same rules, freshly loaded
    assert pre._awaits[0] is tracker and (4242,) in pre._awaits[0].seen
