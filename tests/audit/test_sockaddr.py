"""SOCKADDR decoding: IPv4, IPv6, unix (path and abstract), netlink, other families, junk."""

from __future__ import annotations

import pytest

from auditeql.audit.sockaddr import parse_saddr

from .conftest import normalize_lines


def test_ipv4() -> None:
    # from the corpus: bash /dev/udp to 203.0.113.2:53001
    assert parse_saddr("0200CF09CB0071020000000000000000") == {"family": "ipv4", "addr": "203.0.113.2", "port": "53001"}


def test_ipv6_with_and_without_flow() -> None:
    base = "0A00CF09" + "00000000" + "20010DB8007700000000000000000002" + "00000000"
    assert parse_saddr(base) == {"family": "ipv6", "addr": "2001:db8:77::2", "port": "53001"}
    flowed = "0A0001BB" + "00012345" + "20010DB8000000000000000000000001" + "00000000"
    assert parse_saddr(flowed) == {"family": "ipv6", "addr": "2001:db8::1", "port": "443", "flow": str(0x12345)}


def test_ipv4_mapped_ipv6_prints_dotted_like_go() -> None:
    mapped = "0A000035" + "00000000" + "00000000000000000000FFFFC6336482" + "00000000"
    assert parse_saddr(mapped)["addr"] == "198.51.100.130"  # type: ignore[index]


def test_unix_path_cut_at_nul_and_abstract() -> None:
    path = "01002F7661722F72756E2F6E7363642F736F636B657400000000C042835E1C56"
    assert parse_saddr(path) == {"family": "unix", "path": "/var/run/nscd/socket"}
    abstract = "0100006165712D6162737472616374"
    assert parse_saddr(abstract) == {"family": "unix", "path": ""}


def test_netlink_and_other_families_keep_raw_saddr() -> None:
    assert parse_saddr("100000000000000000000000") == {"family": "netlink", "saddr": "100000000000000000000000"}
    assert parse_saddr("00000000000000000000000000000000") == {"family": "0", "saddr": "00000000000000000000000000000000"}
    assert parse_saddr("26000000")["family"] == "38"  # AF_ALG, decimal as rules test it  # type: ignore[index]


@pytest.mark.parametrize("junk", ["", "02", "0200CF09", "zz00", "0A00CF0900000000"])
def test_malformed_is_none(junk: str) -> None:
    assert parse_saddr(junk) is None


def _connect_event(saddr: str, syscall: int = 42) -> dict:
    lines = [
        f"type=SYSCALL msg=audit(1700000000.100:50): arch=c000003e syscall={syscall} success=no exit=-115 a0=3 a1=7ffc12ac3ab0 a2=1c a3=0 items=0 ppid=1 pid=10 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"net\"".encode(),
        f"type=SOCKADDR msg=audit(1700000000.100:50): saddr={saddr}".encode(),
        b"type=PROCTITLE msg=audit(1700000000.100:50): proctitle=6375726C",
    ]
    (doc,) = normalize_lines(lines, "auditbeat")
    return doc


def test_ipv6_connect_document() -> None:
    doc = _connect_event("0A0001BB0000000020010DB800000000000000000000000100000000")
    assert doc["destination"] == {"ip": "2001:db8::1", "port": "443"}
    assert doc["network"] == {"direction": "egress"}
    assert doc["auditd"]["data"]["socket"] == {"family": "ipv6", "addr": "2001:db8::1", "port": "443"}
    assert doc["auditd"]["data"]["exit"] == "EINPROGRESS" and doc["event"]["outcome"] == "failure"
    assert doc["event"]["action"] == "connected-to" and doc["event"]["type"] == ["connection", "start"]


def test_unix_connect_document_both_flavours() -> None:
    doc = _connect_event("01002F72756E2F73797374656D642F6A6F75726E616C2F736F636B657400")
    assert doc["destination"] == {"path": "/run/systemd/journal/socket"}
    assert doc["auditd"]["summary"]["object"]["primary"] == "/run/systemd/journal/socket"
    abstract = _connect_event("0100002F746D702F78")
    assert "destination" not in abstract and abstract["network"] == {"direction": "egress"}
    assert abstract["auditd"]["data"]["socket"] == {"family": "unix", "path": ""}


def test_accept_is_ingress_with_source() -> None:
    doc = _connect_event("02001F90C0A80164" + "00" * 8, syscall=43)  # accept
    assert doc["source"] == {"ip": "192.168.1.100", "port": "8080"} and doc["network"]["direction"] == "ingress"
    assert doc["event"]["action"] == "accepted-connection-from"


def test_bind_has_socket_fields_but_no_direction() -> None:
    doc = _connect_event("02001F90C0A80164" + "00" * 8, syscall=49)  # bind
    assert "network" not in doc and "destination" not in doc and "source" not in doc
    assert doc["auditd"]["data"]["socket"]["addr"] == "192.168.1.100"
