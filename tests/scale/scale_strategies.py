"""Hypothesis strategies: documents and queries that probe the corners SQL must get right.

Documents mix the shapes Elasticsearch flattens (nested objects, dotted keys, arrays of objects),
values of unexpected types (numbers where strings are usual and the reverse), multi-valued
fields, IPv4/IPv6/junk addresses, ASCII and non-ASCII case, and timestamps in several forms.
Queries are built from atoms over the same fields, combined with and/or/not, as event queries,
samples and sequences.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

_NAMES = ["bash", "Bash", "BASH", "python3", "Python3.11", "nc", "ncat", "sh", "ßh", "İbash", "a_b", "a%b", "x*y", ""]
_IPS = ["10.0.0.1", "10.1.2.3", "127.0.0.1", "169.254.3.4", "224.0.0.9", "203.0.113.2", "::1", "2001:db8::1",
        "::ffff:10.0.0.1", "junk", "010.1.1.1", "256.1.1.1", "1.2.3"]
_CATS = ["process", "network", "file"]
_TIMES = [
    "2026-11-29T14:07:54.517Z", "2026-11-29T14:07:54.517Z", "2026-11-29T14:07:55Z", "2026-11-29T14:07:54.517123456Z",
    "2026-11-29T14:07:53.100Z", "2026-11-29 14:07:54.517", "2026-11-29T15:07:54.517+01:00", "2026-11-29",
]


def _put(doc: dict[str, Any], path: str, value: Any, style: str) -> None:
    """Place ``value`` at ``path`` nested, as a dotted key, or half-dotted."""
    parts = path.split(".")
    if style == "dotted" and len(parts) > 1:
        doc[path] = value
        return
    if style == "half" and len(parts) > 2:
        node = doc.setdefault(parts[0], {})
        if isinstance(node, dict):
            node[".".join(parts[1:])] = value
        return
    node = doc
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value


_STYLE = st.sampled_from(["nested"] * 8 + ["dotted", "half"])


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    fields: dict[str, Any] = {
        "@timestamp": st.one_of(st.sampled_from(_TIMES), st.integers(1795961270000, 1795961279999)),
        "event.category": st.one_of(st.sampled_from(_CATS), st.lists(st.sampled_from(_CATS), max_size=2)),
        "event.type": st.one_of(st.just(["start"]), st.just("start"), st.just(["end"]), st.just([])),
        "event.action": st.sampled_from(["executed", "connected-to", "Executed", None]),
        "host.id": st.one_of(st.sampled_from(["h1", "h2", "H1"]), st.just(7), st.just(["h1", "h2"])),
        "host.os.type": st.sampled_from(["linux", "Linux", None]),
        "process.pid": st.one_of(st.integers(1, 4), st.just("2"), st.just([1, 2]), st.just(2.0)),
        "process.parent.pid": st.integers(1, 3),
        "process.name": st.one_of(st.sampled_from(_NAMES), st.lists(st.sampled_from(_NAMES), max_size=2), st.just(5)),
        "auditd.data.a1": st.one_of(st.sampled_from(["2", "80002", "02", "2.0"]), st.just(2)),
        "destination.ip": st.one_of(st.sampled_from(_IPS), st.lists(st.sampled_from(_IPS), max_size=2)),
        "network.direction": st.sampled_from(["egress", "ingress"]),
        "custom.tag": st.one_of(st.sampled_from(["a", "B", "c d"]), st.lists(st.sampled_from(["a", "b"]), max_size=2),
                                st.integers(0, 3), st.booleans()),
    }
    for path, strat in fields.items():
        if draw(st.integers(0, 9)) < 2 and path != "@timestamp":
            continue  # missing
        if path == "@timestamp" and draw(st.integers(0, 19)) == 0:
            continue
        value = draw(strat)
        if value is None:
            continue
        _put(doc, path, value, draw(_STYLE) if path not in ("@timestamp",) else "nested")
    if draw(st.integers(0, 9)) == 0:
        # an array of objects on a path the queries read
        doc["custom"] = [{"tag": draw(st.sampled_from(["a", "b"]))}, {"tag": "z"}]
    if draw(st.integers(0, 14)) == 0:
        doc["process"] = [{"pid": 1, "name": "bash"}]
    return doc


# ------------------------------------------------------------------------------- queries

_STR_FIELDS = ["process.name", "host.id", "custom.tag", "event.action", "auditd.data.a1", "host.os.type"]


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


_PID_LITERALS = ["2", "2.5", '"2"', '"x"']
_A1_LITERALS = ["2", '"2"', "true"]


@st.composite
def atoms(draw: Any) -> str:
    kind = draw(st.integers(0, 15))
    f = draw(st.sampled_from(_STR_FIELDS))
    name = draw(st.sampled_from(_NAMES + ["py*", "*sh", "b?sh", "*", "BA*", "*a*b*"]))
    if kind == 0:
        return f"{f} == {_q(name)}"
    if kind == 1:
        return f"{f} != {_q(name)}"
    if kind == 2:
        vals = draw(st.lists(st.sampled_from(_NAMES + ["py*", "*sh", "b?sh"]), min_size=1, max_size=3))
        return f"{f} : ({', '.join(_q(v) for v in vals)})"
    if kind == 3:
        op = draw(st.sampled_from(["like", "like~"]))
        return f"{f} {op} {_q(name)}"
    if kind == 4:
        vals = draw(st.lists(st.sampled_from(_NAMES + ["2", "a"]), min_size=1, max_size=3))
        op = draw(st.sampled_from(["in", "not in", "in~", "not in~"]))
        return f"{f} {op} ({', '.join(_q(v) for v in vals)})"
    if kind == 5:
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return f"process.pid {op} {draw(st.sampled_from(_PID_LITERALS))}"
    if kind == 6:
        blocks = draw(st.lists(st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "::1", "2001:db8::/32",
                                                 "::ffff:10.0.0.0/104", "169.254.0.0/16", "203.0.113.2"]),
                               min_size=1, max_size=3))
        return f"cidrmatch(destination.ip, {', '.join(_q(b) for b in blocks)})"
    if kind == 7:
        fn = draw(st.sampled_from(["startsWith", "endsWith", "stringContains", "startswith~", "endsWith~", "stringContains~"]))
        arg = draw(st.sampled_from(["b", "B", "sh", "", "a_", "%", "x*"]))
        return f"{fn}({f}, {_q(arg)})"
    if kind == 8:
        return f"{f} {draw(st.sampled_from(['==', '!=']))} null"
    if kind == 9:
        return f"{f} {draw(st.sampled_from(['<', '>=']))} {_q(draw(st.sampled_from(['b', 'C', '2', 'a'])))}"
    if kind == 10:
        return f"{f} regex~ \"b.*\""
    if kind == 11:
        return f"length({f}) > 2"
    if kind == 12:
        return f"auditd.data.a1 == {draw(st.sampled_from(_A1_LITERALS))}"
    if kind == 13:
        return f"event.type : \"start\""
    if kind == 14:
        return draw(st.sampled_from(["true", "false"]))
    return f"custom.tag"


@st.composite
def conditions(draw: Any, depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(atoms())
    op = draw(st.sampled_from(["and", "or", "not"]))
    if op == "not":
        return f"not ({draw(conditions(depth - 1))})"
    return f"({draw(conditions(depth - 1))}) {op} ({draw(conditions(depth - 1))})"


_CAT = st.sampled_from(["process", "network", "any"])


@st.composite
def event_queries(draw: Any) -> str:
    q = f"{draw(_CAT)} where {draw(conditions())}"
    pipe = draw(st.sampled_from(["", " | head 3", " | tail 2", " | tail 5 | head 2"]))
    return q + pipe


_KEYS = st.sampled_from(["host.id", "host.id, process.pid", "?custom.tag", "process.name", "process.pid, ?host.id"])


@st.composite
def sample_queries(draw: Any) -> str:
    keys = draw(_KEYS)
    n = draw(st.integers(2, 3))
    flts = " ".join(f"[{draw(_CAT)} where {draw(conditions(1))}]" for _ in range(n))
    return f"sample by {keys} {flts}"


@st.composite
def sequence_queries(draw: Any) -> str:
    keys = draw(st.sampled_from(["host.id", "host.id, process.pid", "?custom.tag"]))
    n = draw(st.integers(2, 3))
    flts = " ".join(f"[{draw(_CAT)} where {draw(conditions(1))}]" for _ in range(n))
    span = draw(st.sampled_from(["", " with maxspan=2s"]))
    until = draw(st.sampled_from(["", " until [any where custom.tag == \"B\"]"]))
    return f"sequence by {keys}{span} {flts}{until}"
