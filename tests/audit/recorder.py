"""Record real audit events on this machine: auditd's log and the kernel's netlink copy.

Used by the ``kernel`` tests (live) and to refresh the small fixtures in tests/fixtures/audit/
(``python -m tests.audit.recorder`` from the repository root, as root).

What it does, and what it cleans up whatever happens:

* a network namespace ``aeq-audit-rec`` behind a veth pair on this area's range
  (198.51.100.128/25, 2001:db8:33::/64), so that every packet the workload sends stays inside it;
* audit rules selecting only processes whose loginuid is :data:`AUID` (the workload sets its own
  loginuid), so other people's activity on the machine is not recorded; the rules are deleted
  one by one with the same spec (never ``auditctl -D``);
* auditd started in the foreground with a private configuration (``log_format`` ENRICHED or RAW,
  optional ``name_format=user`` for ``node=`` prefixes), logging to a temporary directory, and
  stopped with SIGTERM;
* while auditd runs, a NETLINK_AUDIT socket joined to the read-only multicast group 1 captures
  the same records as the kernel sends them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

AUID = 4242
NETNS = "aeq-audit-rec"
VETH_HOST, VETH_NS = "aeqa-rec0", "aeqa-rec1"
HOST_V4, NS_V4 = "198.51.100.129", "198.51.100.130"
HOST_V6, NS_V6 = "2001:db8:33::1", "2001:db8:33::2"
NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
RULES = [
    ["-a", "always,exit", "-F", "arch=b64", "-S", "execve,socket,connect,sendto", "-F", f"auid={AUID}", "-k", "aeq_rec", "-k", "exec"],
    ["-a", "always,exit", "-F", "arch=b32", "-S", "execve,socket,connect,socketcall", "-F", f"auid={AUID}", "-k", "aeq_rec32"],
]

I386_SOURCE = r"""
/* i386, no libc: socketcall(SYS_SOCKET), socket(), socketcall(SYS_CONNECT) to the test host */
static long sc(long n, long a, long b, long c) {
    long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory"); return r;
}
void _start(void) {
    unsigned long sargs[3] = {2, 2, 0};                       /* AF_INET, SOCK_DGRAM, 0 */
    long fd = sc(102, 1, (long)sargs, 0);                     /* socketcall(SYS_SOCKET) */
    sc(359, 2, 2, 0);                                         /* socket(AF_INET, SOCK_DGRAM, 0) */
    unsigned char sin[16] = {2, 0, 0xCF, 0x09, 198, 51, 100, 130, 0,0,0,0,0,0,0,0};   /* :53001 */
    unsigned long cargs[3] = {(unsigned long)fd, (unsigned long)sin, 16};
    sc(102, 3, (long)cargs, 0);                               /* socketcall(SYS_CONNECT) */
    sc(1, 0, 0, 0);                                           /* exit(0) */
}
"""

WORKLOAD = r"""
import os, shutil, socket, subprocess, sys, time
d, i386 = sys.argv[1], sys.argv[2]
os.chdir(d)
run = lambda argv, **kw: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
run(["/bin/true", "", "a b", "x\x01y", "plain"])                 # empty, hex and plain args
shutil.copy("/bin/true", os.path.join(d, "my prog"))
run([os.path.join(d, "my prog"), "arg"])                          # comm/exe/cwd hex-encoded
run(["/bin/true"] + [str(i) for i in range(2500)])                # argv over several EXECVE records
run(["/bin/true", "A" * 9000])                                    # one argument split aN[0], aN[1]…
try:
    run(["/nonexistent/aeq-prog"])                               # failed execve: ENOENT
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("198.51.100.130", 53001)); s.send(b"x"); s.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(("2001:db8:33::2", 53001)); s.send(b"x"); s.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)                # blocking: the RST comes at once
try:
    s.connect(("198.51.100.130", 53002))                          # refused: ECONNREFUSED
except OSError:
    pass
s.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.setblocking(False)
s.connect_ex(("198.51.100.130", 53002)); s.close()                # EINPROGRESS
path = os.path.join(d, "aeq.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); srv.bind(path)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.connect(path); c.close(); srv.close()
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); srv.bind("\0aeq-abstract")
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.connect("\0aeq-abstract"); c.close(); srv.close()
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
nl.sendto(b"\x14\x00\x00\x00\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", (0, 0)); nl.close()
run(["/bin/bash", "-c", "echo hi > /dev/udp/198.51.100.130/53001"])   # bash /dev/udp: socket a1=2
run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/true", "nobody"])
if i386:
    run([i386])
run(["/bin/true", "last"])                                        # a last complete event
"""


@dataclass
class Recording:
    log_lines: list[bytes]
    netlink: list[tuple[int, bytes]]
    serials: set[int]
    notes: list[str] = field(default_factory=list)


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def kernel_audit_available() -> str | None:
    """None when usable, else the reason (not root, no auditctl, kernel refuses)."""
    if os.geteuid() != 0:
        return "needs root (kernel audit rules and auditd)"
    for tool in ("auditctl", "auditd", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    try:
        res = _sh("auditctl", "-s", check=False)
    except OSError as exc:
        return f"auditctl failed: {exc}"
    if res.returncode != 0:
        return f"kernel audit not accessible: {res.stderr.strip() or res.stdout.strip()}"
    return None


def build_i386(workdir: Path) -> str | None:
    """A static 32-bit program that calls socketcall; None if gcc -m32 cannot build it."""
    if shutil.which("gcc") is None:
        return None
    src = workdir / "s32.c"
    out = workdir / "aeq-s32"
    src.write_text(I386_SOURCE)
    res = subprocess.run(["gcc", "-m32", "-nostdlib", "-static", "-O1", "-fno-pie", "-no-pie", str(src), "-o", str(out)],
                         capture_output=True, text=True)
    return str(out) if res.returncode == 0 else None


class _NetnsGuard:
    def __enter__(self) -> _NetnsGuard:
        self.close()
        _sh("ip", "netns", "add", NETNS)
        _sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        _sh("ip", "link", "set", VETH_NS, "netns", NETNS)
        _sh("ip", "addr", "add", f"{HOST_V4}/25", "dev", VETH_HOST)
        _sh("ip", "-6", "addr", "add", f"{HOST_V6}/64", "dev", VETH_HOST, "nodad")
        _sh("ip", "link", "set", VETH_HOST, "up")
        _sh("ip", "-n", NETNS, "addr", "add", f"{NS_V4}/25", "dev", VETH_NS)
        _sh("ip", "-n", NETNS, "-6", "addr", "add", f"{NS_V6}/64", "dev", VETH_NS, "nodad")
        _sh("ip", "-n", NETNS, "link", "set", VETH_NS, "up")
        _sh("ip", "-n", NETNS, "link", "set", "lo", "up")
        return self

    def close(self) -> None:
        _sh("ip", "link", "del", VETH_HOST, check=False)
        _sh("ip", "netns", "del", NETNS, check=False)

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RulesGuard:
    def __enter__(self) -> _RulesGuard:
        self.added: list[list[str]] = []
        for rule in RULES:
            _sh("auditctl", *rule)
            self.added.append(rule)
        return self

    def __exit__(self, *exc: object) -> None:
        for rule in self.added:
            spec = ["-d" if a == "-a" else a for a in rule]
            _sh("auditctl", *spec, check=False)


class _Capture(threading.Thread):
    """Read the kernel's audit multicast group until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[int, bytes]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if len(data) >= 16:
                _length, msg_type, _flags, _seq, _pid = struct.unpack("=IHHII", data[:16])
                self.messages.append((msg_type, data[16:]))
        self.sock.close()


def _auditd_conf(directory: Path, log_format: str, node: str | None) -> None:
    plugins = directory / "plugins.d"
    plugins.mkdir()
    name_lines = f"name_format = user\nname = {node}\n" if node else "name_format = NONE\n"
    (directory / "auditd.conf").write_text(textwrap.dedent(f"""\
        local_events = yes
        write_logs = yes
        log_file = {directory}/audit.log
        log_format = {log_format}
        flush = SYNC
        freq = 0
        max_log_file = 64
        num_logs = 2
        max_log_file_action = IGNORE
        space_left = 2
        space_left_action = IGNORE
        admin_space_left = 1
        admin_space_left_action = IGNORE
        disk_full_action = IGNORE
        disk_error_action = IGNORE
        plugin_dir = {plugins}
        end_of_event_timeout = 2
        """) + name_lines)
    os.chmod(directory / "auditd.conf", 0o640)


def _wait_registered(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _sh("auditctl", "-s", check=False).stdout
        for line in out.splitlines():
            if line.startswith("pid ") and line.split()[1] == str(pid):
                return
        time.sleep(0.1)
    raise RuntimeError("auditd did not register with the kernel (is another auditd running?)")


def record(log_format: str = "ENRICHED", node: str | None = None) -> Recording:
    """Run the workload under auditd (+ netlink capture) and return its records."""
    reason = kernel_audit_available()
    if reason:
        raise RuntimeError(reason)
    if subprocess.run(["pgrep", "-x", "auditd"], capture_output=True).returncode == 0:
        raise RuntimeError("an auditd is already running; stop it first (only one can register)")
    work = Path(tempfile.mkdtemp(prefix="aeq-rec-"))
    notes: list[str] = []
    try:
        rec_dir = work / "aeq rec dir"
        rec_dir.mkdir()
        i386 = build_i386(work)
        if i386 is None:
            notes.append("gcc -m32 unavailable: no i386 records")
        conf = work / "conf"
        conf.mkdir()
        _auditd_conf(conf, log_format, node)
        _sh("auditctl", "-b", "8192", check=False)
        with _NetnsGuard(), _RulesGuard():
            capture = _Capture()
            capture.start()
            daemon = subprocess.Popen(["auditd", "-n", "-s", "nochange", "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _wait_registered(daemon.pid)
                script = work / "workload.py"
                script.write_text(WORKLOAD)

                def set_loginuid() -> None:
                    with open("/proc/self/loginuid", "w") as fh:
                        fh.write(str(AUID))

                subprocess.run([sys.executable, str(script), str(rec_dir), i386 or ""], check=True,
                               preexec_fn=set_loginuid, timeout=60)
                # auditd completes events after end_of_event_timeout (2 s): let it write them
                time.sleep(2.5)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
                time.sleep(0.3)
                capture.stop.set()
                capture.join(timeout=5)
        log = (conf / "audit.log").read_bytes().splitlines(keepends=True)
        serials = _workload_serials(log)
        lines = [ln for ln in log if _serial(ln) in serials or b"type=DAEMON_START" in ln]
        netlink = [(t, p) for t, p in capture.messages if _serial(p) in serials]
        return Recording(lines, netlink, serials, notes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _serial(data: bytes) -> int | None:
    start = data.find(b"audit(")
    if start < 0:
        return None
    colon = data.find(b":", start)
    close = data.find(b")", colon)
    try:
        return int(data[colon + 1 : close])
    except ValueError:
        return None


def _workload_serials(lines: list[bytes]) -> set[int]:
    out = set()
    for ln in lines:
        if b"type=SYSCALL " in ln and f" auid={AUID} ".encode() in ln:
            serial = _serial(ln)
            if serial is not None:
                out.add(serial)
    return out


def save(recording: Recording, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".log").write_bytes(b"".join(recording.log_lines))
    with open(stem.with_suffix(".netlink.jsonl"), "w") as fh:
        for msg_type, payload in recording.netlink:
            fh.write(json.dumps({"type": msg_type, "payload": payload.hex()}) + "\n")


def load_netlink(path: Path) -> list[tuple[int, bytes]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            obj = json.loads(line)
            out.append((obj["type"], bytes.fromhex(obj["payload"])))
    return out


if __name__ == "__main__":  # refresh the fixtures
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "audit"
    enriched = record("ENRICHED")
    save(enriched, fixtures / "enriched")
    raw = record("RAW", node="aeq-node")
    save(raw, fixtures / "raw_node")
    print(f"enriched: {len(enriched.log_lines)} lines, {len(enriched.netlink)} netlink; "
          f"raw: {len(raw.log_lines)} lines, {len(raw.netlink)} netlink; {enriched.notes + raw.notes}")
