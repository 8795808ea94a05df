"""Real records recorded on this machine (tests/fixtures/audit, made by recorder.py).

Two runs of the same workload: auditd with ``log_format = ENRICHED``, and with ``RAW`` plus
``name_format = user`` (``node=aeq-node``), each captured at the same time from the kernel's
netlink multicast group. So the kernel's own text (netlink: no ENRICHED tail, no node) is the
reference for what auditd wrote.
"""

from __future__ import annotations

from typing import Any

import pytest
from recorder import AUID, load_netlink

from auditeql.audit.host import HostInfo, node_host_id
from auditeql.audit.pipeline import Normalizer

from .conftest import FIXTURES, normalize_lines

STEMS = ["enriched", "raw_node"]


def _log_docs(stem: str, flavor: str = "auditbeat", host: HostInfo | None = None) -> list[dict[str, Any]]:
    return normalize_lines((FIXTURES / f"{stem}.log").read_bytes().splitlines(keepends=True), flavor, host)


def _netlink_docs(stem: str, flavor: str = "auditbeat", host: HostInfo | None = None) -> list[dict[str, Any]]:
    n = Normalizer(flavor, host)
    out = []
    for msg_type, payload in load_netlink(FIXTURES / f"{stem}.netlink.jsonl"):
        out += n.feed_netlink(msg_type, payload)
    return out + n.flush()


def _by_key(docs: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(d["auditd"].get("sequence") or d["event"]["sequence"], d["auditd"]["message_type"]): d for d in docs}


def _without_host(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "host"}


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("flavor", ["auditbeat", "auditd-manager"])
def test_auditd_log_and_kernel_netlink_give_identical_documents(stem: str, flavor: str) -> None:
    host = HostInfo.fixed({"id": "fixture-host", "name": "fixture", "os": {"type": "linux"}})
    log = _by_key(_log_docs(stem, flavor, host))
    kernel = _by_key(_netlink_docs(stem, flavor, host))
    assert len(kernel) > 50
    # auditd adds its own DAEMON_START record; every kernel event is in the log, identical
    assert set(log) - set(kernel) == {k for k in log if k[1] == "daemon_start"}
    assert set(kernel) <= set(log)
    for key, doc in kernel.items():
        assert _without_host(log[key]) == _without_host(doc), key


def test_enriched_and_plain_lines_give_identical_documents() -> None:
    """The same auditd lines with and without the ENRICHED tail."""
    lines = (FIXTURES / "enriched.log").read_bytes().splitlines(keepends=True)
    assert sum(b"\x1d" in ln for ln in lines) > 50
    plain = [ln.split(b"\x1d")[0].rstrip() + b"\n" for ln in lines]
    assert normalize_lines(lines) == normalize_lines(plain)


def test_node_prefix_names_the_host() -> None:
    local = HostInfo.detect()
    docs = _log_docs("raw_node", "auditd-manager", local)
    assert docs and all(d["host"]["name"] == "aeq-node" and d["host"]["hostname"] == "aeq-node" for d in docs)
    assert all(d["host"]["id"] == node_host_id("aeq-node") and d["host"]["os"]["type"] == "linux" for d in docs)
    forced = _log_docs("raw_node", "auditd-manager", HostInfo.detect(host_id="abc123"))
    assert all(d["host"]["id"] == "abc123" and d["host"]["name"] == "aeq-node" for d in forced)


@pytest.fixture(scope="module", params=STEMS)
def workload(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    docs = _netlink_docs(request.param, "auditbeat", HostInfo.detect())
    return [d for d in docs if d.get("user", {}).get("audit", {}).get("id") == str(AUID)]


def _execs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["auditd"]["data"].get("syscall") == "execve" and d["event"]["outcome"] == "success"]


def test_execve_arguments_empty_hex_and_plain(workload) -> None:
    (doc,) = [d for d in _execs(workload) if d["process"].get("args", [None])[-1] == "plain"]
    assert doc["process"]["args"] == ["/bin/true", "", "a b", "x\x01y", "plain"]
    assert doc["auditd"]["data"]["argc"] == "5"
    assert doc["event"]["action"] == "executed" and doc["event"]["category"] == ["process"]


def test_hex_comm_exe_and_cwd(workload) -> None:
    (doc,) = [d for d in _execs(workload) if d["process"].get("args") == [d["process"].get("executable"), "arg"]]
    assert doc["process"]["name"] == "my prog"
    assert doc["process"]["executable"].endswith("/aeq rec dir/my prog")
    assert doc["process"]["working_directory"].endswith("/aeq rec dir")


def test_argv_across_several_execve_records(workload) -> None:
    (doc,) = [d for d in _execs(workload) if len(d["process"].get("args", [])) > 100]
    assert doc["process"]["args"] == ["/bin/true"] + [str(i) for i in range(2500)]


def test_one_argument_split_over_chunks(workload) -> None:
    (doc,) = [d for d in _execs(workload) if d["process"].get("args", [""])[-1].startswith("AAAA")]
    assert doc["process"]["args"] == ["/bin/true", "A" * 9000]


def test_failed_execve(workload) -> None:
    fails = [d for d in workload if d["auditd"]["data"].get("syscall") == "execve" and d["event"]["outcome"] == "failure"]
    assert any(d["file"]["path"] == "/nonexistent/aeq-prog" and d["auditd"]["data"]["exit"] == "ENOENT" for d in fails)
    assert all(d["event"]["action"] == "executed" and d["event"]["type"] == ["start"] for d in fails)


def test_network_events(workload) -> None:
    conns = [d for d in workload if d["auditd"]["data"].get("syscall") == "connect"]
    dests = {(d.get("destination", {}).get("ip"), d.get("destination", {}).get("port"), d["auditd"]["data"]["exit"]) for d in conns}
    assert ("198.51.100.130", "53001", "0") in dests
    assert ("2001:db8:33::2", "53001", "0") in dests
    assert ("198.51.100.130", "53002", "ECONNREFUSED") in dests
    assert ("198.51.100.130", "53002", "EINPROGRESS") in dests
    paths = {d["auditd"]["data"]["socket"].get("path") for d in conns if d["auditd"]["data"]["socket"]["family"] == "unix"}
    assert "" in paths and any(p and p.endswith("/aeq rec dir/aeq.sock") for p in paths)
    assert all(d["network"]["direction"] == "egress" for d in conns)
    sendto = [d for d in workload if d["auditd"]["data"].get("syscall") == "sendto"]
    assert any(d["auditd"]["data"].get("socket", {}).get("family") == "netlink" and d["event"]["action"] == "sent-to" for d in sendto)


def test_bash_dev_udp_socket_is_what_the_seed_rule_wants(workload) -> None:
    socks = [d for d in workload if d["auditd"]["data"].get("syscall") == "socket" and d["process"]["name"] == "bash"]
    assert any(d["auditd"]["data"]["a0"] == "2" and d["auditd"]["data"]["a1"] == "2" for d in socks)
    assert all(d["event"]["action"] == "" and d["event"]["category"] == ["process"] and d["event"]["type"] == ["info"] for d in socks)
    py = [d for d in workload if d["auditd"]["data"].get("syscall") == "socket" and d["process"]["name"] == "python"]
    assert any(d["auditd"]["data"]["a1"] == "80002" for d in py)  # CPython adds SOCK_CLOEXEC


def test_other_user(workload) -> None:
    (doc,) = [d for d in _execs(workload) if d["process"].get("args") == ["/bin/true", "nobody"]]
    assert doc["user"]["id"] == "65534" and doc["user"]["name"] == "nobody"
    assert "effective" not in doc["user"]  # euid == uid: dropped like Auditbeat


def test_real_i386_socketcall_and_socket(workload) -> None:
    i386 = [d for d in workload if d["auditd"]["data"].get("arch") == "i386"]
    calls = {(d["auditd"]["data"]["syscall"], d["auditd"]["data"]["a0"]) for d in i386}
    assert ("socketcall", "1") in calls and ("socket", "2") in calls and ("socketcall", "3") in calls
    (sock,) = [d for d in i386 if d["auditd"]["data"]["syscall"] == "socketcall" and d["auditd"]["data"]["a0"] == "1"]
    # the SOCKETCALL record's real arguments lose to the SYSCALL a0..a3 (go-libaudit); only nargs survives
    assert sock["auditd"]["data"]["nargs"] == "3" and sock["auditd"]["data"]["a1"] != "2"
    assert sock["event"]["category"] == ["process"] and sock["event"]["action"] == ""
    (conn,) = [d for d in i386 if d["auditd"]["data"]["syscall"] == "socketcall" and d["auditd"]["data"]["a0"] == "3"]
    assert conn["auditd"]["data"]["socket"] == {"family": "ipv4", "addr": "198.51.100.130", "port": "53001"}
    assert "network" not in conn  # direction is decided by syscall name; "socketcall" has none


def test_login_record_then_its_syscall(workload: list[dict[str, Any]]) -> None:
    docs = _netlink_docs("enriched", "auditbeat", HostInfo.detect())
    logins = [d for d in docs if d["auditd"]["message_type"] == "login"]
    assert logins and logins[0]["event"]["action"] == "changed-login-id-to"
    assert logins[0]["event"]["category"] == ["authentication"] and logins[0]["auditd"]["summary"]["object"]["primary"] == str(AUID)
