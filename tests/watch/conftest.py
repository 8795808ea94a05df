"""Fixtures for the live-detection tests: kernel audit access and self-cleaning audit rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest


def _kernel_audit_problem() -> str | None:
    if os.geteuid() != 0:
        return "not root: the kernel audit tests need root (CAP_AUDIT_READ, CAP_AUDIT_CONTROL)"
    if shutil.which("auditctl") is None:
        return "auditctl is not installed (apt install auditd)"
    from auditeql.sources import netlink

    try:
        netlink.audit_status()
        netlink.NetlinkSource(rcvbuf=65536).close()
    except OSError as exc:
        return f"the kernel audit subsystem is not accessible here: {exc}"
    return None


@pytest.fixture(scope="session")
def kernel_audit() -> None:
    """Kernel audit enabled, backlog large enough for bursts; skips LOUDLY when inaccessible."""
    problem = _kernel_audit_problem()
    if problem:
        pytest.skip(f"KERNEL AUDIT NOT ACCESSIBLE — live-detection test skipped: {problem}")
    from auditeql.sources import netlink

    status = netlink.audit_status()
    if status.enabled == 0:
        subprocess.run(["auditctl", "-e", "1"], check=True, capture_output=True)
    if status.backlog_limit < 8192:
        subprocess.run(["auditctl", "-b", "8192"], check=True, capture_output=True)


@pytest.fixture
def audit_key() -> str:
    """A key unique to this test, so that clean-up removes our rules and nobody else's."""
    return f"aeq-watch-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def add_audit_rule(kernel_audit: None, audit_key: str) -> Iterator[Callable[[str], None]]:
    """``add("-a always,exit -F arch=b64 -S execve")``: the rule gets our key; removed at teardown."""
    added: list[list[str]] = []

    def add(spec: str) -> None:
        args = spec.split() + ["-k", audit_key]
        subprocess.run(["auditctl", *args], check=True, capture_output=True)
        added.append(args)

    yield add
    for args in added:
        subprocess.run(["auditctl", "-d", *args[1:]], capture_output=True)
    from auditeql.watch import audit_rules

    audit_rules.uninstall(audit_key)  # anything else carrying our key


# --------------------------------------------------------------------------- the test host

import ipaddress  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

#: This area's address plan (docs/watch.md; the machine routes none of it).
WATCH_NET4 = ipaddress.ip_network("198.51.100.0/25")
WATCH_NET6 = ipaddress.ip_network("2001:db8:55::/64")
CLIENT4, SERVER4 = "198.51.100.1", "198.51.100.2"
CLIENT6, SERVER6 = "2001:db8:55::1", "2001:db8:55::2"

_LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
answered = set()
while True:
    data, peer = s.recvfrom(65535)
    if peer in answered:
        continue
    answered.add(peer)
    print("shell from", peer, flush=True)
    # the attacker's first command ends the shell; one byte per datagram, because an
    # interactive bash reads its stdin one byte at a time and a datagram read is all-or-rest-lost
    for ch in b"exit\n":
        s.sendto(bytes([ch]), peer)
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass
class NetnsHost:
    """Two private namespaces joined by a veth pair: the client runs shells, the server listens."""

    tag: str
    client_ns: str = ""
    server_ns: str = ""
    port: int = 0
    listener: subprocess.Popen[str] | None = None
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client_ns = f"aeq-watch-{self.tag}-c"
        self.server_ns = f"aeq-watch-{self.tag}-s"

    def start(self) -> None:
        vc, vs = f"aeqw{self.tag}c", f"aeqw{self.tag}s"  # 11 characters
        _ip("netns", "add", self.client_ns)
        _ip("netns", "add", self.server_ns)
        _ip("link", "add", vc, "netns", self.client_ns, "type", "veth", "peer", "name", vs, "netns", self.server_ns)
        for ns, dev, a4, a6 in ((self.client_ns, vc, CLIENT4, CLIENT6), (self.server_ns, vs, SERVER4, SERVER6)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{a4}/25", "dev", dev)
            _ip("-n", ns, "-6", "addr", "add", f"{a6}/64", "dev", dev, "nodad")
            _ip("-n", ns, "link", "set", dev, "up")
        self.listener = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, sys.executable, "-c", _LISTENER, SERVER4],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        line = self.listener.stdout.readline() if self.listener.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"test host listener did not start: {line!r}")
        self.port = int(line)

    def spawn(self, argv: list[str], **kw: object) -> subprocess.Popen[str]:
        """Start ``argv`` inside the client namespace (its own session, killed at clean-up)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.client_ns, *argv], start_new_session=True,
                                text=True, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in [*self.procs, self.listener]:
            if proc is None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for ns in (self.client_ns, self.server_ns):
            _ip("netns", "del", ns, check=False)  # deleting a namespace removes its veth end, and the pair


@pytest.fixture
def test_host(kernel_audit: None) -> Iterator[NetnsHost]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed: cannot build the namespaced test host")
    host = NetnsHost(uuid.uuid4().hex[:6])
    try:
        host.start()
        yield host
    finally:
        host.close()
        leftover = _ip("netns", "list", check=False).stdout
        assert host.client_ns not in leftover and host.server_ns not in leftover


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
