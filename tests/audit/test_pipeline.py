"""Normalizer: the keep (push-down) seam, bad input between events, counters."""

from __future__ import annotations

from typing import Any

import pytest

from auditeql.audit.pipeline import Normalizer, syscall_hint
from auditeql.audit.records import parse_line

from .conftest import normalize_lines


def test_keep_none_and_accept_all_are_identical(corpus_lines: list[bytes], corpus_auditbeat, local_host) -> None:
    calls: list[tuple[int, Any, Any]] = []

    def accept_all(rtype: int, arch: str | None, syscall: str | None) -> bool:
        calls.append((rtype, arch, syscall))
        return True

    assert corpus_auditbeat == normalize_lines(corpus_lines, "auditbeat", local_host, keep=accept_all)
    assert len({c for c in calls if c[0] == 1300}) >= 3  # (1300, x86_64, execve/socket/connect/sendto)
    assert (1300, "x86_64", "connect") in calls


def test_keep_drops_events_before_any_parsing(corpus_lines: list[bytes], corpus_auditbeat, local_host) -> None:
    wanted = {"socket", "connect"}
    n = Normalizer("auditbeat", local_host, keep=lambda rtype, arch, syscall: syscall in wanted)
    docs = [d for line in corpus_lines for d in n.feed_line(line)] + n.flush()
    full = [d for d in corpus_auditbeat if d["auditd"]["data"].get("syscall") in wanted]
    assert docs == full
    assert n.stats["dropped_by_keep"] == 3144 - len(full)  # incl. CONFIG_CHANGE events (their SYSCALL is sendto)
    assert n.stats["events"] == len(full)


class Policy:
    """An object with a keep() method works as well as a callable."""

    def keep(self, record_type: int, arch: str | None, syscall: str | None) -> bool:
        return record_type != 1300 or syscall == "execve"


def test_keep_object_and_non_syscall_events() -> None:
    lines = [
        b"type=USER_CMD msg=audit(1700000000.000:1): pid=1 uid=0 auid=0 ses=1 msg='cwd=\"/\" cmd=6C73 terminal=pts/0 res=success'",
        b'type=SYSCALL msg=audit(1700000000.001:2): arch=c000003e syscall=41 success=yes exit=3 a0=2 a1=2 a2=0 a3=0 items=0 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="x" exe="/x"',
        b"type=PROCTITLE msg=audit(1700000000.001:2): proctitle=78",
    ]
    docs = normalize_lines(lines, keep=Policy())
    assert [d["auditd"]["message_type"] for d in docs] == ["user_cmd"]
    docs = normalize_lines(lines, keep=lambda rtype, arch, syscall: rtype == 1300)
    assert [d["auditd"]["data"]["syscall"] for d in docs] == ["socket"]


def test_syscall_hint_reads_the_front_of_the_record() -> None:
    rec = parse_line(b"type=SYSCALL msg=audit(1.000:1): arch=40000003 syscall=102 success=yes exit=3 a0=1")
    assert syscall_hint(rec) == ("i386", "socketcall")  # type: ignore[arg-type]
    rec = parse_line(b"type=SYSCALL msg=audit(1.000:1): arch=c0000015 syscall=41 success=yes")
    assert syscall_hint(rec) == ("ppc64le", "41")  # type: ignore[arg-type]


GARBAGE = [
    b"this is not an audit record\n",
    b"\x00\x00\x00\x01\x02 binary \xff\xff\n",
    b"type=SYSCALL msg=audit(1795961275.52\n",  # truncated header
    b'type=SYSCALL msg=audit(1795961999.000:1): arch=c000003e syscall=42 comm="cut\n',  # truncated body
    b"type=PATH msg=audit(1795961999.000:2): name=\xc3\x28 item=0\n",  # invalid UTF-8
    b"type=PATH msg=audit(1795961999.000:3): name=" + b"A" * (2 * 1024 * 1024) + b"\n",  # 2 MB
    b"\n",
    b"type=FOO_BAR msg=audit(1795961999.000:4): x=1\n",
]


def test_garbage_between_events_changes_no_document(corpus_lines: list[bytes]) -> None:
    clean = normalize_lines(corpus_lines[:3000])
    dirty_lines: list[bytes] = []
    for i, line in enumerate(corpus_lines[:3000]):
        dirty_lines.append(line)
        if i % 97 == 0:
            dirty_lines.extend(GARBAGE)
    n = Normalizer("auditbeat", None)
    dirty = [d for line in dirty_lines for d in n.feed_line(line)] + n.flush()
    assert dirty == clean
    times = len(range(0, 3000, 97))
    assert n.stats["skipped"] == {"not-audit": times, "binary": times, "truncated": 2 * times,
                                  "invalid-utf8": times, "too-long": times, "unknown-type": times}
    assert n.stats["records"] == 3000


@pytest.mark.parametrize("junk", GARBAGE)
def test_each_bad_line_alone_is_counted_not_raised(junk: bytes) -> None:
    n = Normalizer("auditd-manager", None)
    assert n.feed_line(junk) == [] and n.flush() == []
    assert sum(n.stats["skipped"].values()) == (0 if junk.strip() == b"" else 1)


def test_str_lines_and_crlf() -> None:
    line = ('type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 '
            'ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="x" exe="/x"\r\n')
    assert normalize_lines([line]) == normalize_lines([line.encode()])  # type: ignore[list-item]
    assert normalize_lines([line])[0]["process"]["executable"] == "/x"  # type: ignore[list-item]


def test_interleaved_real_events_give_the_same_documents(corpus_lines: list[bytes], corpus_auditbeat, local_host) -> None:
    """Records of neighbouring events mixed together (as the kernel may deliver them)."""
    from auditeql.audit.records import parse_line as parse

    events: list[list[bytes]] = []
    last = None
    for line in corpus_lines:
        serial = parse(line).serial  # type: ignore[union-attr]
        if serial != last:
            events.append([])
            last = serial
        events[-1].append(line)
    mixed: list[bytes] = []
    for i in range(0, len(events) - 1, 2):
        a, b = events[i], events[i + 1]
        for j in range(max(len(a), len(b))):  # a0 b0 a1 b1 …: b may complete before a
            mixed += a[j : j + 1] + b[j : j + 1]
    if len(events) % 2:
        mixed += events[-1]
    assert mixed != corpus_lines and sorted(mixed) == sorted(corpus_lines)
    assert normalize_lines(mixed, "auditbeat", local_host) == corpus_auditbeat
