"""Live: the real kernel audit + auditd on this machine, ENRICHED and RAW/node, vs netlink.

Skipped (loudly) only when kernel audit is not accessible (not root, no auditctl/auditd) or an
auditd daemon is already running (only one can register; stop it to run these).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from recorder import AUID, kernel_audit_available, record

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer

pytestmark = pytest.mark.kernel


def _require_kernel() -> None:
    reason = kernel_audit_available()
    if reason:
        pytest.skip(f"KERNEL AUDIT NOT ACCESSIBLE: {reason}")
    if subprocess.run(["pgrep", "-x", "auditd"], capture_output=True).returncode == 0:
        pytest.skip("KERNEL TEST SKIPPED: an auditd daemon is already running (only one can register)")


def _docs_from_log(lines: list[bytes], host: HostInfo) -> dict[tuple[int, str], dict[str, Any]]:
    n = Normalizer("auditbeat", host)
    docs = [d for line in lines for d in n.feed_line(line)] + n.flush()
    return {(d["auditd"]["sequence"], d["auditd"]["message_type"]): d for d in docs}


def _docs_from_netlink(messages: list[tuple[int, bytes]], host: HostInfo) -> dict[tuple[int, str], dict[str, Any]]:
    n = Normalizer("auditbeat", host)
    docs = [d for t, p in messages for d in n.feed_netlink(t, p)] + n.flush()
    return {(d["auditd"]["sequence"], d["auditd"]["message_type"]): d for d in docs}


@pytest.mark.parametrize(("log_format", "node"), [("ENRICHED", None), ("RAW", "aeq-live")])
def test_live_recording_log_equals_netlink(log_format: str, node: str | None) -> None:
    _require_kernel()
    rec = record(log_format, node=node)
    host = HostInfo.fixed({"id": "live", "name": "live", "os": {"type": "linux"}})
    if log_format == "ENRICHED":
        assert any(b"\x1d" in ln for ln in rec.log_lines), "auditd did not write ENRICHED lines"
    if node:
        assert all(ln.startswith(f"node={node} ".encode()) for ln in rec.log_lines)
    log = _docs_from_log(rec.log_lines, host)
    kernel = _docs_from_netlink(rec.netlink, host)
    assert len(kernel) > 40
    assert set(kernel) <= set(log)
    for key, doc in kernel.items():
        a = {k: v for k, v in log[key].items() if k != "host"}
        b = {k: v for k, v in doc.items() if k != "host"}
        assert a == b, key
        if node:
            assert log[key]["host"]["name"] == node
    mine = [d for d in kernel.values() if d.get("user", {}).get("audit", {}).get("id") == str(AUID)]
    syscalls = {d["auditd"]["data"].get("syscall") for d in mine}
    assert {"execve", "socket", "connect"} <= syscalls
    args = [d["process"].get("args") for d in mine if d["auditd"]["data"].get("syscall") == "execve"]
    assert ["/bin/true", "", "a b", "x\x01y", "plain"] in args
    assert ["/bin/true"] + [str(i) for i in range(2500)] in args
    dests = {d.get("destination", {}).get("ip") for d in mine}
    assert {"198.51.100.130", "2001:db8:33::2"} <= dests
    if "gcc -m32 unavailable: no i386 records" not in rec.notes:
        assert any(d["auditd"]["data"].get("arch") == "i386" and d["auditd"]["data"].get("syscall") == "socketcall" for d in mine)
