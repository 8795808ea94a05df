"""The test host refuses a range the machine already routes (pure parsing; no namespace needed)."""

from auditeql.emulate import netns
from auditeql.emulate.netns import NAME_PREFIX, overlapping_routes

HOST_V4 = """default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 192.0.2.255 dev eth0 table local proto kernel scope link src 192.0.2.2
"""
HOST_V6 = """fd00::/64 dev eth0 proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
default via fd00::1 dev eth0 metric 1024 pref medium
multicast ff00::/8 dev eth0 table local proto kernel metric 256 pref medium
"""


def test_a_default_route_is_not_an_overlap() -> None:
    assert overlapping_routes(HOST_V4, HOST_V6) == []


def test_more_specific_or_covering_routes_are_refused() -> None:
    assert overlapping_routes(HOST_V4 + "203.0.113.0/25 via 192.0.2.9 dev eth0\n", HOST_V6)
    assert overlapping_routes(HOST_V4 + "203.0.0.0/16 dev eth1\n", HOST_V6)
    assert overlapping_routes(HOST_V4 + "unreachable 203.0.113.7\n", HOST_V6)
    assert overlapping_routes(HOST_V4, HOST_V6 + "2001:db8::/32 dev eth1 metric 1024\n")
    assert not overlapping_routes(HOST_V4 + "198.51.100.0/25 dev aeq-watch-1\n", HOST_V6 + "2001:db8:55::/64 dev x\n")


def test_names_fit_the_kernel_limits_and_the_allocation() -> None:
    host = netns.TestHost(tag="ffff")
    for name in (host.veth_client, host.veth_server):
        assert len(name) <= 15 and name.startswith(NAME_PREFIX)
    assert host.client_ns.startswith(NAME_PREFIX) and host.server_ns.startswith(NAME_PREFIX)
