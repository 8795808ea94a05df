"""Decode a SOCKADDR record's ``saddr`` hex into family / address / port / path.

The kernel logs the raw ``struct sockaddr`` bytes. The first two bytes are the family in host
byte order (little-endian on the machines we target, as go-libaudit assumes); ports and IPv4/IPv6
addresses are in network order. Field names follow go-libaudit (what lands in
``auditd.data.socket.*``): ``family`` (``unix`` / ``ipv4`` / ``ipv6`` / ``netlink`` / the number),
``addr``, ``port``, ``flow`` (IPv6 flowinfo when > 0), ``path`` (unix, cut at the first NUL — so an
abstract socket has ``path: ""``) and, for netlink and unknown families, the raw ``saddr``.
"""

from __future__ import annotations

import ipaddress

_HEX = frozenset("0123456789abcdefABCDEF")


def parse_saddr(saddr: str) -> dict[str, str] | None:
    """Decoded fields, or None when the hex is malformed (go-libaudit then fails the record)."""
    if len(saddr) < 4 or not _HEX.issuperset(saddr):
        return None
    family = int(saddr[2:4] + saddr[0:2], 16)
    if family == 1:  # AF_UNIX
        if len(saddr) & 1:
            return None
        data = bytes.fromhex(saddr[4:])
        nul = data.find(b"\x00")
        if nul >= 0:
            data = data[:nul]
        return {"family": "unix", "path": data.decode("utf-8", "replace")}
    if family == 2:  # AF_INET
        if len(saddr) < 16:
            return None
        port = int(saddr[4:8], 16)
        ip = ".".join(str(int(saddr[i : i + 2], 16)) for i in range(8, 16, 2))
        return {"family": "ipv4", "addr": ip, "port": str(port)}
    if family == 10:  # AF_INET6
        if len(saddr) < 48:
            return None
        port = int(saddr[4:8], 16)
        flow = int(saddr[8:16], 16)
        out = {"family": "ipv6", "addr": format_ipv6(bytes.fromhex(saddr[16:48])), "port": str(port)}
        if 0 < flow < 0x80000000:  # go parses it as a signed 32-bit value
            out["flow"] = str(flow)
        return out
    if family == 16:  # AF_NETLINK
        return {"family": "netlink", "saddr": saddr}
    return {"family": str(family), "saddr": saddr}


def format_ipv6(packed: bytes) -> str:
    """RFC 5952 text, with IPv4-mapped addresses in dotted form (as Go's net.IP prints them)."""
    addr = ipaddress.IPv6Address(packed)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return str(mapped)
    return addr.compressed
