"""A throwaway test host in private network namespaces: where emulated attacks connect to.

Nothing may leave the machine, so the emulation builds its own tiny network:

* a **server** namespace (``aeq-emu-<tag>-s``, 203.0.113.2 and 2001:db8:77::2) running the
  listener (:mod:`auditeql.emulate.listener`) that plays the attacker: it answers each UDP
  shell with a few commands (``id``, then ``exit``) so the shells terminate by themselves;
* a **client** namespace (``aeq-emu-<tag>-c``, 203.0.113.1 and 2001:db8:77::1) where the
  techniques run. Its only interfaces are ``lo`` and one end of a veth pair whose other end
  is in the server namespace; its default routes point at the server, so even a multicast or
  a mistyped address can only reach the test host.

The host's own routing table is never touched. Still, we refuse to start when the host already
routes part of the test range more specifically than a default route (someone else uses it, and
our results would be confusing). The kernel audit subsystem is not network-namespaced: processes
in the client namespace are recorded like any other, which is all the emulation needs.

Clean-up is guaranteed three ways: the context manager, an ``atexit`` hook and SIGTERM/SIGHUP
handlers that turn the signal into ``SystemExit`` (so ``finally`` blocks run). Deleting a
namespace kills its veth end and with it the pair.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

NAME_PREFIX = "aeq-emu-"
NET4 = ipaddress.ip_network("203.0.113.0/24")
NET6 = ipaddress.ip_network("2001:db8:77::/64")
#: Address plan (inside NET4 / NET6).
CLIENT4, SERVER4 = "203.0.113.1", "203.0.113.2"
CLIENT6, SERVER6 = "2001:db8:77::1", "2001:db8:77::2"
#: Listener ports: UDP shells, TCP shells, a DNS-like UDP sink, a metrics (statsd-like) UDP sink,
#: UDP shells that read one byte per datagram (bash).
UDP_PORT, TCP_PORT, DNS_PORT, METRICS_PORT, UDP_BYTES_PORT = 53001, 53002, 53, 8125, 53003


class TestHostError(RuntimeError):
    """The test host could not be set up; the message says why and what to do."""


@dataclass(frozen=True)
class Endpoints:
    """Where techniques connect to (the values substituted into technique commands)."""

    host4: str = SERVER4
    host6: str = SERVER6
    udp_port: int = UDP_PORT
    tcp_port: int = TCP_PORT
    dns_port: int = DNS_PORT
    metrics_port: int = METRICS_PORT
    udp_bytes_port: int = UDP_BYTES_PORT

    def placeholders(self) -> dict[str, str]:
        """Values for the ``@NAME@`` placeholders of technique commands."""
        return {
            "HOST4": self.host4, "HOST6": self.host6, "UDP": str(self.udp_port), "TCP": str(self.tcp_port),
            "DNS": str(self.dns_port), "METRICS": str(self.metrics_port), "UDPB": str(self.udp_bytes_port),
        }


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise TestHostError(f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


_ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable", "prohibit", "blackhole", "throw", "nat"}
)


def overlapping_routes(routes_v4: str, routes_v6: str) -> list[str]:
    """Host routes (``ip route`` / ``ip -6 route`` output) that cover part of our test range.

    A default route does not count (it is less specific than our own connected route would
    be, and we never add routes on the host anyway); anything else that overlaps does.
    """
    bad = []
    for text, net in ((routes_v4, NET4), (routes_v6, NET6)):
        for line in text.splitlines():
            words = line.split()
            if words and words[0] in _ROUTE_TYPES and len(words) > 1:
                words = words[1:]
            if not words or words[0] == "default":
                continue
            try:
                route = ipaddress.ip_network(words[0], strict=False)
            except ValueError:
                continue
            if route.version == net.version and route.overlaps(net):
                bad.append(line.strip())
    return bad


def _host_routes() -> tuple[str, str]:
    v4 = _run(["ip", "route", "show", "table", "all"], check=False).stdout
    v6 = _run(["ip", "-6", "route", "show", "table", "all"], check=False).stdout
    return v4, v6


def _host_addresses_in_range() -> list[str]:
    out = _run(["ip", "-o", "addr", "show"], check=False).stdout
    hits = []
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] in ("inet", "inet6"):
            try:
                addr = ipaddress.ip_interface(words[3]).ip
            except ValueError:
                continue
            if addr in NET4 or addr in NET6:
                hits.append(line.strip())
    return hits


def require_root(what: str = "auditeql emulate") -> None:
    """Raise :class:`TestHostError` with a clear message when not running as root."""
    if os.geteuid() != 0:
        raise TestHostError(
            f"{what} needs root: it creates network namespaces and (with --check) kernel audit rules. "
            "Run it with sudo, on a test machine."
        )


@dataclass
class TestHost:
    """The client + server namespaces, the veth pair between them and the listener.

    Use as a context manager. ``run_in_client(argv)`` starts a process inside the client
    namespace; ``listener_events`` collects what the listener saw (one dict per line).
    """

    tag: str = field(default_factory=lambda: f"{os.getpid() & 0xFFFF:04x}")
    endpoints: Endpoints = field(default_factory=Endpoints)
    listener_log: list[dict[str, Any]] = field(default_factory=list)
    workdir: Path | None = None
    _listener: subprocess.Popen[str] | None = None
    _created: list[str] = field(default_factory=list)
    _old_handlers: dict[int, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def client_ns(self) -> str:
        return f"{NAME_PREFIX}{self.tag}-c"

    @property
    def server_ns(self) -> str:
        return f"{NAME_PREFIX}{self.tag}-s"

    @property
    def veth_client(self) -> str:
        return f"{NAME_PREFIX}{self.tag}c"  # 13 characters: under IFNAMSIZ (15)

    @property
    def veth_server(self) -> str:
        return f"{NAME_PREFIX}{self.tag}s"

    # -- life cycle ------------------------------------------------------------------------
    def __enter__(self) -> TestHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        require_root()
        if shutil.which("ip") is None:
            raise TestHostError("the `ip` command (iproute2) is needed to build the test host; install iproute2")
        v4, v6 = _host_routes()
        bad = overlapping_routes(v4, v6) + _host_addresses_in_range()
        if bad:
            raise TestHostError(
                f"the test range {NET4} / {NET6} is already in use on this machine; refusing to "
                "run (traffic might leave the machine or disturb someone else's test). Offending "
                "routes/addresses:\n  " + "\n  ".join(bad)
            )
        existing = _run(["ip", "netns", "list"], check=False).stdout.split()
        if self.client_ns in existing or self.server_ns in existing:
            raise TestHostError(
                f"namespace {self.client_ns} or {self.server_ns} already exists (a previous run "
                f"left it?); remove it with `ip netns del NAME` and retry"
            )
        self._install_cleanup_hooks()
        try:
            self._build()
            self._start_listener()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        c, s = self.client_ns, self.server_ns
        for ns in (s, c):
            _run(["ip", "netns", "add", ns])
            self._created.append(ns)
        _run(["ip", "link", "add", self.veth_client, "netns", c, "type", "veth", "peer", "name", self.veth_server, "netns", s])
        for ns, dev, a4, a6 in ((c, self.veth_client, CLIENT4, CLIENT6), (s, self.veth_server, SERVER4, SERVER6)):
            ipn = ["ip", "-n", ns]
            _run([*ipn, "link", "set", "lo", "up"])
            _run([*ipn, "addr", "add", f"{a4}/{NET4.prefixlen}", "dev", dev])
            _run([*ipn, "-6", "addr", "add", f"{a6}/{NET6.prefixlen}", "dev", dev, "nodad"])
            _run([*ipn, "link", "set", dev, "up"])
        # The client's default routes lead to the test host only: multicast and any other
        # destination stay inside our two namespaces.
        _run(["ip", "-n", c, "route", "add", "default", "via", SERVER4])
        _run(["ip", "-n", c, "-6", "route", "add", "default", "via", SERVER6])
        _run(["ip", "-n", c, "route", "add", "224.0.0.0/4", "dev", self.veth_client])
        self.workdir = Path(tempfile.mkdtemp(prefix="aeq-emu-"))

    def _start_listener(self) -> None:
        ep = self.endpoints
        argv = [
            "ip", "netns", "exec", self.server_ns, sys.executable, "-m", "auditeql.emulate.listener",
            "--udp-port", str(ep.udp_port), "--tcp-port", str(ep.tcp_port),
            "--dns-port", str(ep.dns_port), "--metrics-port", str(ep.metrics_port),
            "--bytes-port", str(ep.udp_bytes_port),
        ]
        self._listener = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self._listener.stdout is not None
        first = self._listener.stdout.readline()
        if not first.startswith("{"):
            err = self._listener.stderr.read() if self._listener.stderr else ""
            raise TestHostError(f"the test host's listener did not start: {first.strip()} {err.strip()}")
        threading.Thread(target=self._pump, args=(self._listener.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        import json

        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.listener_log.append(event)

    def listener_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.listener_log)

    def close(self) -> None:
        """Stop the listener and delete everything we created (safe to call twice)."""
        if self._listener is not None:
            _kill_group(self._listener)
            self._listener = None
        for ns in reversed(self._created):
            _run(["ip", "netns", "del", ns], check=False)
        self._created.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self._restore_handlers()

    # -- running things --------------------------------------------------------------------
    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in the client namespace (``ip netns exec`` execs in place)."""
        return ["ip", "netns", "exec", self.client_ns, *argv]

    # -- clean-up hooks --------------------------------------------------------------------
    def _install_cleanup_hooks(self) -> None:
        atexit.register(self.close)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _raise_exit)

    def _restore_handlers(self) -> None:
        try:
            atexit.unregister(self.close)
        except Exception:  # pragma: no cover - atexit never raises here
            pass
        if threading.current_thread() is threading.main_thread():
            for sig, old in self._old_handlers.items():
                signal.signal(sig, old)
        self._old_handlers.clear()


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _kill_group(proc: subprocess.Popen[Any], grace: float = 0.5) -> None:
    """SIGTERM then SIGKILL the process group ``proc`` leads (it was started in a new session)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is not None:
            break
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL always ends it
        pass


def leftover_namespaces() -> list[str]:
    """Namespaces named ``aeq-emu-*`` that exist now (for tests and ``--cleanup`` messages)."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(NAME_PREFIX)]


__all__: list[str] = [
    "CLIENT4", "CLIENT6", "SERVER4", "SERVER6", "Endpoints", "TestHost", "TestHostError",
    "leftover_namespaces", "overlapping_routes", "require_root",
]
