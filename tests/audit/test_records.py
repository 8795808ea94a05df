"""Record parsing: audit.log lines (ENRICHED, node=, UNKNOWN[n]) and netlink payloads, one path."""

from __future__ import annotations

import pytest

from auditeql.audit import enrich, tables
from auditeql.audit.records import AuditRecord, Skip, fields, parse_line, parse_netlink

SYSCALL_LINE = (
    b'type=SYSCALL msg=audit(1795961275.525:23512): arch=c000003e syscall=42 success=yes exit=0 '
    b'a0=3 a1=7ffd1c2e3f40 a2=10 a3=0 items=0 ppid=25680 pid=25683 auid=4294967295 uid=0 gid=0 euid=0 '
    b'suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="bash" exe="/usr/bin/bash" key="rs_conn"'
)
ENRICHED_TAIL = b'\x1dARCH=x86_64 SYSCALL=connect AUID="unset" UID="root" GID="root"'


def test_plain_line() -> None:
    rec = parse_line(SYSCALL_LINE + b"\n")
    assert isinstance(rec, AuditRecord)
    assert (rec.type, rec.seconds, rec.millis, rec.serial) == (1300, 1795961275, 525, 23512)
    assert rec.type_name == "SYSCALL" and rec.node is None
    assert rec.body.startswith("arch=c000003e syscall=42 ") and rec.body.endswith('key="rs_conn"')
    assert rec.original() == SYSCALL_LINE.decode()


def test_enriched_tail_is_cut_and_gives_the_same_record() -> None:
    assert parse_line(SYSCALL_LINE + ENRICHED_TAIL + b"\n") == parse_line(SYSCALL_LINE)


def test_node_prefix() -> None:
    rec = parse_line(b"node=web-01 " + SYSCALL_LINE)
    assert isinstance(rec, AuditRecord) and rec.node == "web-01"
    assert rec.body == parse_line(SYSCALL_LINE).body  # type: ignore[union-attr]


def test_unknown_type_number() -> None:
    rec = parse_line(b"type=UNKNOWN[1999] msg=audit(1700000000.001:7): foo=bar")
    assert isinstance(rec, AuditRecord) and rec.type == 1999 and rec.type_name == "UNKNOWN[1999]"


def test_names_map_to_kernel_numbers() -> None:
    for name, number in [("SYSCALL", 1300), ("EXECVE", 1309), ("SOCKADDR", 1306), ("PROCTITLE", 1327),
                         ("EOE", 1320), ("USER_CMD", 1123), ("CONFIG_CHANGE", 1305), ("SOCKETCALL", 1304)]:
        assert tables.RECORD_TYPE_NUMBERS[name] == number


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hello world, not audit", "not-audit"),
        (b"type=SYSCALL nothing else", "not-audit"),
        (b"type=NOPE_NOT_A_TYPE msg=audit(1.000:1): a=b", "unknown-type"),
        (b"type=SYSCALL msg=audit(17959612", "truncated"),
        (b'type=SYSCALL msg=audit(1795961275.525:23512): arch=c000003e comm="bas', "truncated"),
        (b"type=SYSCALL msg=audit(abc.def:1): a=b", "bad-header"),
        (b"type=SYSCALL msg=audit(1.000:99999999999): a=b", "bad-header"),
        # seconds no calendar can write (found by fuzzing: building the document overflowed)
        (b"type=SYSCALL msg=audit(999999999999999.123:5): arch=c000003e syscall=59", "bad-header"),
        (b"type=SYSCALL msg=foo(1.000:1): a=b", "bad-header"),
        (b"\x00\x01\x02\xff\xfe binary junk", "binary"),
        (b"type=SYSCALL msg=audit(1.000:1): comm=\xff\xfe", "invalid-utf8"),
        (b"type=SYSCALL msg=audit(1.000:1): a=" + b"x" * (2 * 1024 * 1024), "too-long"),
    ],
)
def test_bad_lines_are_skips_with_a_reason(line: bytes, reason: str) -> None:
    result = parse_line(line)
    assert isinstance(result, Skip), result
    assert result.reason == reason


def test_netlink_payload_equals_log_line() -> None:
    payload = SYSCALL_LINE.split(b" msg=", 1)[1]
    assert parse_netlink(1300, payload) == parse_line(SYSCALL_LINE)
    assert parse_netlink(1300, payload + b"\x00") == parse_line(SYSCALL_LINE)
    assert isinstance(parse_netlink(1300, b"garbage"), Skip)
    assert isinstance(parse_netlink(1300, b"audit(1.000:1): a=\xff"), Skip)


def test_fields_keep_raw_values_and_drop_useless_ones() -> None:
    body = 'a0=3 comm="bash" exe=2F746D702F6D792070726F67 tty=(none) key=(null) x="" y=? z="?" subj=unconfined'
    f = fields(body)
    assert f["comm"] == '"bash"' and f["exe"] == "2F746D702F6D792070726F67" and f["tty"] == "(none)"
    assert "key" not in f and "x" not in f and "y" not in f and "z" not in f
    assert f["subj"] == "unconfined"


def test_fields_user_space_msg_is_flattened() -> None:
    body = ("pid=1234 uid=0 auid=1000 ses=3 msg='cwd=\"/root\" cmd=6C73202D6C exe=\"/usr/bin/sudo\" "
            "terminal=pts/0 res=success'")
    f = fields(body)
    assert f["pid"] == "1234" and f["cmd"] == "6C73202D6C" and f["exe"] == '"/usr/bin/sudo"' and f["res"] == "success"
    assert "msg" not in f


def test_enrichment_of_a_syscall_record() -> None:
    rec = parse_line(SYSCALL_LINE)
    rd = enrich.record_data(rec)  # type: ignore[arg-type]
    v = rd.values
    assert v["arch"] == "x86_64" and v["syscall"] == "connect" and v["result"] == "success"
    assert v["auid"] == "unset" and v["ses"] == "unset" and v["a1"] == "7ffd1c2e3f40"
    assert "success" not in v and "key" not in v and rd.tags == ["rs_conn"]


@pytest.mark.parametrize(
    ("exit_", "expected"), [("-115", "EINPROGRESS"), ("-111", "ECONNREFUSED"), ("-2", "ENOENT"), ("3", "3"), ("-9999", "-9999")]
)
def test_exit_errno_names(exit_: str, expected: str) -> None:
    rec = parse_line(f"type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=42 success=no exit={exit_} a0=3".encode())
    assert enrich.record_data(rec).values["exit"] == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw_key", "tags"),
    [('"exec"', ["exec"]), ('"key=net"', ["net"]), ("65786563013634626974", ["exec", "64bit"]), ("(null)", None)],
)
def test_rule_keys_become_tags(raw_key: str, tags: list[str] | None) -> None:
    rec = parse_line(f"type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 success=yes exit=0 key={raw_key}".encode())
    assert enrich.record_data(rec).tags == tags  # type: ignore[arg-type]


def test_syscall_names_per_arch() -> None:
    cases = [("c000003e", 41, "socket"), ("c000003e", 42, "connect"), ("c000003e", 59, "execve"),
             ("40000003", 102, "socketcall"), ("40000003", 359, "socket"), ("40000003", 362, "connect"), ("40000003", 11, "execve"),
             ("c00000b7", 198, "socket"), ("c00000b7", 203, "connect"), ("c00000b7", 221, "execve"),
             ("40000028", 281, "socket"), ("40000028", 283, "connect"), ("40000028", 11, "execve"),
             ("c0000015", 41, "41")]  # ppc64le: no table in go-libaudit, stays numeric
    for arch, number, name in cases:
        rec = parse_line(f"type=SYSCALL msg=audit(1.000:1): arch={arch} syscall={number} success=yes exit=0".encode())
        assert enrich.record_data(rec).values["syscall"] == name, (arch, number)  # type: ignore[arg-type]


def test_hex_decoding_rules() -> None:
    assert enrich.hex_strings("2F746D702F6D792070726F67") == "/tmp/my prog"
    assert enrich.hex_strings("2f746d70") is None  # lower case: not the kernel's hex, kept verbatim
    assert enrich.hex_strings('"2F74"') is None  # quoted: a plain string
    assert enrich.hex_strings("2F7") is None  # odd length
    assert enrich.hex_strings("61620063") == "ab c"  # proctitle: NUL -> space
    assert enrich.hex_string("61620063") == "ab"  # execve arg: cut at NUL


def test_comm_is_hex_decoded_deviation() -> None:
    line = (b"type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 success=yes exit=0 pid=5 "
            b"comm=6D792070726F67 exe=2F746D702F6D792070726F67")
    v = enrich.record_data(parse_line(line)).values  # type: ignore[arg-type]
    assert v["comm"] == "my prog" and v["exe"] == "/tmp/my prog"


def test_netlink_control_messages_are_not_records() -> None:
    from auditeql.audit.pipeline import Normalizer

    n = Normalizer("auditbeat", None)
    assert n.feed_netlink(1000, b"\x00" * 40) == []  # AUDIT_GET reply
    assert n.feed_netlink(1329, b"audit(1.000:1): pid=1") == []  # AUDIT_REPLACE
    assert n.feed_netlink(3001, b"audit(1.000:1): x=1") == []
    docs = n.feed_netlink(1006, b"audit(1700000000.000:5): pid=1 uid=0 old-auid=4294967295 auid=0 tty=(none) old-ses=4294967295 ses=1 res=1")
    assert docs and docs[0]["auditd"]["message_type"] == "login"
    assert n.stats["skipped"] == {"not-a-record": 3}
