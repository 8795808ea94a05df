"""The technique catalogue: complete, well-formed, and in step with the reference recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditeql.emulate import techniques as T
from auditeql.emulate.netns import Endpoints

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "scenarios.json"

#: What the issue asks the emulation to cover (technique families) -> catalogue names.
REQUIRED = {
    "bash /dev/udp IPv4": "bash_dev_udp", "bash /dev/udp IPv6": "bash_dev_udp_ipv6",
    "ksh /dev/udp IPv4": "ksh_dev_udp", "ksh /dev/udp IPv6": "ksh_dev_udp_ipv6",
    "exec on a /dev/udp fd": "bash_exec_fd_udp", "ncat --udp -e": "ncat_udp_exec",
    "OpenBSD nc -u + fifo": "nc_openbsd_udp_fifo", "socat": "socat_udp_exec", "python": "python_udp_dup2",
    "perl": "perl_udp", "php": "php_udp", "ruby": "ruby_udp", "lua": "lua_udp", "gawk": "gawk_inet_udp",
    "openssl DTLS": "openssl_dtls", "node dgram": "node_udp", "busybox nc": "busybox_nc_udp",
    "renamed interpreter": "renamed_bash_udp",
    "DNS query by python": "python_dns_query_external", "metrics line": "bash_udp_metrics",
    "loopback": "bash_udp_loopback", "multicast": "bash_udp_multicast",
    "sendto without connect": "python_udp_sendto_no_connect", "TCP shell": "bash_dev_tcp",
}


def test_every_required_technique_is_in_the_catalogue() -> None:
    missing = {what: name for what, name in REQUIRED.items() if name not in T.BY_NAME}
    assert not missing


def test_names_are_unique_and_real_flags_are_as_documented() -> None:
    names = [t.name for t in T.TECHNIQUES]
    assert len(names) == len(set(names))
    assert T.BY_NAME["bash_udp_metrics"].real is False
    assert T.BY_NAME["python_udp_dup2"].real is True
    # real shells first, then the look-alikes: the run order the docs describe
    flags = [t.real for t in T.TECHNIQUES]
    assert flags == sorted(flags, reverse=True)


def test_placeholders_are_all_filled() -> None:
    values = {"TMP": "/tmp/x", **Endpoints().placeholders()}
    for tech in T.TECHNIQUES:
        argv = tech.command(values)
        joined = " ".join(argv)
        for key in ("HOST4", "HOST6", "UDP", "UDPB", "TCP", "DNS", "METRICS", "TMP"):
            assert f"@{key}@" not in joined, (tech.name, key)


def test_commands_only_target_the_test_range_or_local_addresses() -> None:
    """Nothing may be sent outside the test host: every literal address is ours, loopback or multicast."""
    import ipaddress
    import re

    values = {"TMP": "/tmp/x", **Endpoints().placeholders()}
    allowed = [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "2001:db8:77::/64", "127.0.0.0/8", "224.0.0.0/4")]
    for tech in T.TECHNIQUES:
        text = " ".join(tech.command(values))
        for m in re.finditer(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}\b", text):
            try:
                addr = ipaddress.ip_address(m.group(0))
            except ValueError:
                continue
            assert any(addr in net for net in allowed), (tech.name, str(addr))


def test_select_rejects_unknown_names() -> None:
    assert [t.name for t in T.select(["ruby_udp"])] == ["ruby_udp"]
    with pytest.raises(KeyError):
        T.select(["no_such_technique"])


def test_missing_tools_are_reported() -> None:
    fake = T.Technique("x", ("definitely-not-installed-aeq",), True, "", tools=("definitely-not-installed-aeq",))
    assert fake.missing_tools() == ["definitely-not-installed-aeq"]
    probe = T.Technique("y", ("true",), True, "", tools=("true",), probe=("false",), probe_note="needs a thing")
    assert probe.missing_tools() == ["needs a thing"]


def test_recorded_seed_verdicts_match_the_recording_file() -> None:
    if not SCENARIOS.exists():
        pytest.skip(f"reference recording not available at {SCENARIOS}")
    recorded = {s["name"]: s for s in json.loads(SCENARIOS.read_text())}
    for name, alerts in T.RECORDED_SEED_ALERTS.items():
        assert recorded[name]["seed_rule_alerts"] is alerts, name
        assert recorded[name]["is_udp_reverse_shell"] is T.BY_NAME[name].real, name
