"""The properties each fuzzer checks, as plain functions of bytes (shared by atheris and CI).

Every function takes arbitrary bytes and raises ``AssertionError`` (or any unexpected exception)
only when auditeql misbehaves. The atheris harnesses (``fuzz/fuzz_*.py``) call them under
coverage guidance for minutes; ``tests/fuzz`` calls them with hypothesis-generated and seed inputs
for a few seconds in CI. Keeping the properties here means both runs check the same thing.

Properties:

* records: :func:`auditeql.audit.records.parse_line` / ``parse_netlink`` never raise, return a
  record or a counted ``Skip``; a record's body splits into fields without raising.
* normalizer: any byte stream fed line by line (raw and netlink framing) through
  :class:`auditeql.audit.pipeline.Normalizer` gives JSON-serialisable dict documents, never an
  exception; the counters add up; the in-flight state stays within its limit.
* eql: :func:`auditeql.eql.parse_query` / ``compile_query`` raise nothing but ``EqlError``; a
  query that compiles prints (``to_text``) to text that parses back to the same AST; its
  predicates never raise on odd documents (missing fields, arrays, wrong types).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

import orjson

MAX_IN_FLIGHT = 8


def check_records(data: bytes) -> None:
    from auditeql.audit.records import AuditRecord, Skip, fields, parse_line, parse_netlink

    for out in (parse_line(data), parse_netlink(1300 + (data[0] if data else 0) % 64, data)):
        assert isinstance(out, (AuditRecord, Skip)), type(out)
        if isinstance(out, AuditRecord):
            assert isinstance(out.body, str)
            assert 0 <= out.serial <= 0xFFFFFFFF
            got = fields(out.body)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in got.items())
            out.original()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    out = parse_line(text)
    assert isinstance(out, (AuditRecord, Skip))


def _host() -> Any:
    from auditeql.audit.host import HostInfo

    return HostInfo.detect(host_id="fuzz-host", host_name="fuzz")


_HOST: Any = None


def check_normalizer(data: bytes) -> None:
    """Feed ``data`` as audit.log lines, in both flavours; documents must be sane."""
    from auditeql.audit.pipeline import Normalizer

    global _HOST
    if _HOST is None:
        _HOST = _host()
    lines = data.split(b"\n")
    for flavor in ("auditd-manager", "auditbeat"):
        norm = Normalizer(flavor, _HOST, max_in_flight=MAX_IN_FLIGHT, original=flavor == "auditbeat")
        docs: list[dict[str, Any]] = []
        for line in lines:
            docs.extend(norm.feed_line(line))
            assert norm.reassembler.in_flight <= MAX_IN_FLIGHT + 1
        docs.extend(norm.flush())
        assert norm.reassembler.in_flight == 0
        for doc in docs:
            assert isinstance(doc, dict)
            orjson.dumps(doc)  # every document can be written as NDJSON
        stats = norm.stats
        assert stats["events"] == len(docs), (stats, len(docs))
        assert stats["records"] + stats["skipped_total"] <= len(lines)


def check_netlink(data: bytes) -> None:
    """The same through the netlink entry point: (type, payload) pairs cut from ``data``."""
    from auditeql.audit.pipeline import Normalizer

    global _HOST
    if _HOST is None:
        _HOST = _host()
    norm = Normalizer("auditd-manager", _HOST, max_in_flight=MAX_IN_FLIGHT)
    docs = []
    for chunk in data.split(b"\n"):
        msg_type = 1300 + (chunk[0] % 40 if chunk else 0)
        docs.extend(norm.feed_netlink(msg_type, chunk[1:]))
    docs.extend(norm.flush())
    for doc in docs:
        orjson.dumps(doc)


#: Documents every compiled predicate is tried on: shapes a real stream can contain.
ODD_DOCS: list[dict[str, Any]] = [
    {},
    {"event": {"category": "process"}, "process": {"name": "bash", "pid": 1}},
    {"event": {"category": ["network", "process"]}, "destination": {"ip": "::1", "port": "53"}},
    {"event": {"category": None}, "process": {"name": ["sh", None, 3], "args": []}},
    {"event.category": "process", "process.name": "nc", "auditd": {"data": {"a1": "zz", "a0": 7}}},
    {"event": {"category": "process"}, "process": [{"name": "x"}, {"name": 1.5}], "x": {"y": True}},
    {"@timestamp": "not a date", "event": {"category": "network"}, "destination": {"ip": "999.1.1.1"}},
]


def check_eql(data: bytes) -> None:
    from auditeql.eql import EqlError, compile_query, parse_query, to_text
    from auditeql.eql.plan import EventPlan

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        query = parse_query(text)
    except EqlError:
        return
    try:
        plan = compile_query(query)
    except EqlError:
        return
    printed = to_text(query)
    again = parse_query(printed)
    assert again == query, f"round trip changed the query:\n{text!r}\n-> {printed!r}"
    filters = [plan.filter] if isinstance(plan, EventPlan) else list(plan.filters)
    until = getattr(plan, "until", None)
    if until is not None:
        filters.append(until)
    for f in filters:
        for doc in ODD_DOCS:
            assert f.predicate(doc) in (True, False)


_PUSHDOWN: Any = None


def _pushdown() -> Any:
    """The seed rule plus the push-down test rules (every pushable atom shape), deferring."""
    global _PUSHDOWN
    if _PUSHDOWN is None:
        from pathlib import Path

        from auditeql.rules import load_rules
        from auditeql.rules.pushdown import PushDown

        root = Path(__file__).resolve().parents[1]
        files = [str(root / "src/auditeql/rules/builtin/execution_shell_via_udp_cli_utility_linux.toml")]
        files += [str(p) for p in sorted((root / "tests/perf/rules").glob("*.toml"))]
        rules = load_rules(files, [], builtin=False)
        preds = [f.predicate for r in rules for f in _filters(r.plan)]
        _PUSHDOWN = (PushDown.from_rules(rules, defer=True), preds)
    return _PUSHDOWN


def _filters(plan: Any) -> list[Any]:
    from auditeql.eql.plan import EventPlan

    if isinstance(plan, EventPlan):
        return [plan.filter]
    out = list(plan.filters)
    if getattr(plan, "until", None) is not None:
        out.append(plan.until)
    return out


_SYSCALL_SERIAL = re.compile(rb"type=SYSCALL msg=audit\([0-9]+\.[0-9]+:([0-9]{1,10})\)")


def check_pushdown(data: bytes) -> None:
    """Push-down never changes which documents a rule sees, nor (deferred) what they contain."""
    from auditeql.audit.pipeline import Normalizer
    from auditeql.rules.pushdown import Deferred

    global _HOST
    if _HOST is None:
        _HOST = _host()
    pd, preds = _pushdown()
    lines = data.split(b"\n")
    full = Normalizer("auditd-manager", _HOST)
    docs = [d for line in lines for d in full.feed_line(line)] + full.flush()
    feeder = pd.line_feeder(Normalizer("auditd-manager", _HOST, pd.normalizer_keep))
    items = [d for line in lines for d in feeder.feed(line)] + feeder.flush()
    # The kernel writes one SYSCALL record per event. An event given two (a damaged or forged log)
    # is decided on the first, while the record merge keeps the last values: a documented limit
    # (docs/security.md), so such serials are left out of the comparison.
    twice = {int(s) for s, n in Counter(_SYSCALL_SERIAL.findall(data)).items() if n > 1}

    def single(d: Any) -> bool:
        return (d.get("event") or {}).get("sequence") not in twice

    seen = [d for d in items if not isinstance(d, Deferred)]
    want = [d for d in docs if single(d) and any(p(d) for p in preds)]
    got = [d for d in seen if single(d) and any(p(d) for p in preds)]
    assert got == want, "push-down changed the candidate documents"
    for item in items:
        if isinstance(item, Deferred):
            doc = item.document()
            assert not (single(doc) and any(p(doc) for p in preds)), "push-down skipped a matching event"
    # with the stand-ins built, the stream is the full path's: same documents, same order (what
    # process ancestry sees), a stand-in only where the full path has an event
    built = [d.document() if isinstance(d, Deferred) else d for d in items]
    if not twice:
        assert built == docs, "push-down changed the document stream (stand-ins built)"
    # the chunked path (whole skipped events per regular-expression match) is the line path
    by_line = pd.line_feeder(Normalizer("auditd-manager", _HOST, pd.normalizer_keep))
    # lines as iterating a file gives them (cut after "\n" only), as read_documents reads them
    want_items = [d for line in io.BytesIO(data).readlines() for d in by_line.feed(line)] + by_line.flush()
    by_chunk = pd.line_feeder(Normalizer("auditd-manager", _HOST, pd.normalizer_keep))
    got_items = list(by_chunk.feed_chunks([data])) + by_chunk.flush()
    assert len(got_items) == len(want_items), "the chunked path changed the stream"
    for a, b in zip(got_items, want_items):
        if isinstance(b, Deferred):
            assert isinstance(a, Deferred), "the chunked path built a skipped event"
            assert (a.pid, a.time_ms, a.is_exec) == (b.pid, b.time_ms, b.is_exec), "stand-in facts differ"
            assert a.document() == b.document(), "stand-in documents differ"
        else:
            assert a == b, "the chunked path changed a document"


def check_all(data: bytes) -> None:
    """Every property, chosen by the first byte (one instrumented process for the CI smoke run)."""
    checks = (check_records, check_normalizer, check_pushdown, check_netlink, check_eql)
    if data:
        checks[data[0] % len(checks)](data[1:])


def warm_up() -> None:
    """Load rules and tables before fuzzing starts (so the first input is not charged for it)."""
    global _HOST
    if _HOST is None:
        _HOST = _host()
    _pushdown()
    check_normalizer(b"")
    check_eql(b"any where true")
