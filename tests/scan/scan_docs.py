"""Scan-test helpers: documents shaped like the seed rule's three events, and the corpus location."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"
SEED_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"


def iso(ms: int) -> str:
    from auditeql.alerts.build import iso_ms

    return iso_ms(ms)


def base(ms: int, serial: int, pid: int, ppid: int, name: str = "bash", host: str = "h-1") -> dict:
    return {
        "@timestamp": iso(ms),
        "host": {"id": host, "name": host, "os": {"type": "linux"}},
        "process": {"pid": pid, "parent": {"pid": ppid}, "name": name},
        "auditd": {"sequence": serial, "data": {}},
        "event": {"module": "auditd", "kind": "event"},
    }


def exec_ev(ms, serial, pid, ppid, name="bash", **kw):
    d = base(ms, serial, pid, ppid, name, **kw)
    d["auditd"]["data"]["syscall"] = "execve"
    d["event"].update(category=["process"], type=["start"], action="executed", outcome="success")
    d["process"]["args"] = [name, "-i"]
    return d


def socket_ev(ms, serial, pid, ppid, name="bash", a1="2", **kw):
    d = base(ms, serial, pid, ppid, name, **kw)
    d["auditd"]["data"].update(syscall="socket", a0="2", a1=a1)
    d["event"].update(category=["process"], type=["info"], outcome="success")
    return d


def connect_ev(ms, serial, pid, ppid, name="bash", ip="203.0.113.2", **kw):
    d = base(ms, serial, pid, ppid, name, **kw)
    d["auditd"]["data"]["syscall"] = "connect"
    d["event"].update(category=["network"], type=["connection", "start"], action="connected-to", outcome="success")
    d["network"] = {"direction": "egress"}
    d["destination"] = {"ip": ip, "port": 53001}
    return d


def noise_ev(ms, serial, pid, ppid, name="cron"):
    d = exec_ev(ms, serial, pid, ppid, name)
    return d

