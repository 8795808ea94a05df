"""Coalescing and placement for both flavours, on handcrafted lines in the exact kernel format."""

from __future__ import annotations

from typing import Any

from auditeql.audit.host import HostInfo

from .conftest import normalize_lines

HOST = HostInfo.fixed({"id": "h1", "name": "web-01", "hostname": "web-01", "os": {"type": "linux"}})


def one(lines: list[str], flavor: str = "auditbeat") -> dict[str, Any]:
    docs = normalize_lines([ln.encode() for ln in lines], flavor, HOST)
    assert len(docs) == 1, docs
    return docs[0]


SOCKET = [
    'type=SYSCALL msg=audit(1700000000.104:1002): arch=c000003e syscall=41 success=yes exit=3 a0=2 a1=80002 a2=0 '
    'a3=7ffd5b0c1e60 items=0 ppid=4100 pid=4242 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 '
    'sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="python3" exe="/usr/bin/python3.11" subj=unconfined key="net_socket"',
    "type=PROCTITLE msg=audit(1700000000.104:1002): proctitle=707974686F6E33002D63007072696E74283129",
]


def test_socket_auditbeat() -> None:
    doc = one(SOCKET)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.104Z"
    assert doc["event"] == {"category": ["process"], "type": ["info"], "action": "", "outcome": "success", "kind": "event", "module": "auditd"}
    assert doc["auditd"]["data"] == {"a0": "2", "a1": "80002", "a2": "0", "a3": "7ffd5b0c1e60", "arch": "x86_64", "exit": "3", "syscall": "socket", "tty": "pts0"}
    assert doc["auditd"]["sequence"] == 1002 and doc["auditd"]["session"] == "3" and doc["auditd"]["result"] == "success"
    assert doc["process"] == {"pid": 4242, "parent": {"pid": 4100}, "name": "python3", "executable": "/usr/bin/python3.11", "title": "python3 -c print(1)"}
    assert doc["tags"] == ["net_socket"] and doc["service"] == {"type": "auditd"}
    assert doc["user"]["id"] == "1000" and doc["user"]["audit"]["id"] == "1000" and doc["user"]["selinux"] == {"user": "unconfined"}
    assert "effective" not in doc["user"]
    assert doc["auditd"]["summary"]["how"] == "python3"  # interpreter: comm, as go-libaudit does
    assert doc["host"]["id"] == "h1"


def test_socket_auditd_manager() -> None:
    doc = one(SOCKET, "auditd-manager")
    assert "action" not in doc["event"]  # "" removed by the AM pipeline
    assert doc["event"]["dataset"] == "auditd_manager.auditd" and doc["event"]["sequence"] == 1002
    assert doc["data_stream"] == {"type": "logs", "dataset": "auditd_manager.auditd", "namespace": "default"}
    assert "sequence" not in doc["auditd"]
    assert doc["auditd"]["user"]["audit"]["id"] == "1000" and doc["auditd"]["user"]["selinux"] == {"user": "unconfined"}
    assert set(doc["user"]) <= {"id", "name", "group", "effective"}
    assert doc["tags"] == ["net_socket", "auditd_manager-auditd"]
    assert doc["auditd"]["data"]["a1"] == "80002" and doc["process"]["pid"] == 4242


CONNECT = [
    'type=SYSCALL msg=audit(1492752507.096:9004): arch=c000003e syscall=42 success=no exit=-115 a0=5 a1=7ffc12ac3ab0 '
    'a2=10 a3=4 items=0 ppid=1 pid=1648 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
    'tty=(none) ses=4294967295 comm="google_ip_forwa" exe="/usr/bin/python3.5" key="net"',
    "type=SOCKADDR msg=audit(1492752507.096:9004): saddr=02000050A9FEA9FE0000000000000000",
    'type=PROCTITLE msg=audit(1492752507.096:9004): proctitle="(g_daemon)"',
    "type=EOE msg=audit(1492752507.096:9004): ",
]


def test_connect_like_the_go_libaudit_golden() -> None:
    doc = one(CONNECT)
    assert doc["event"]["action"] == "connected-to" and doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["connection", "start"] and doc["event"]["outcome"] == "failure"
    assert doc["destination"] == {"ip": "169.254.169.254", "port": "80"} and doc["network"] == {"direction": "egress"}
    assert doc["auditd"]["data"]["exit"] == "EINPROGRESS" and doc["auditd"]["result"] == "fail"
    assert doc["auditd"]["summary"] == {"actor": {"primary": "unset", "secondary": "root"}, "how": "google_ip_forwa",
                                        "object": {"primary": "169.254.169.254", "secondary": "80", "type": "socket"}}
    assert "session" not in doc["auditd"] and "audit" not in doc["user"]
    assert doc["process"]["title"] == "(g_daemon)"
    am = one(CONNECT, "auditd-manager")
    assert am["destination"] == {"ip": "169.254.169.254", "port": 80}
    assert am["auditd"]["data"]["socket"] == {"family": "ipv4", "addr": "169.254.169.254", "port": 80}


def test_execve_with_paths_file_and_cwd() -> None:
    doc = one([
        'type=SYSCALL msg=audit(1481077231.371:479): arch=c000003e syscall=59 success=yes exit=0 a0=1def880 a1=1df0fd0 '
        'a2=1d3e5f0 a3=7fff70ed9310 items=2 ppid=1299 pid=1360 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 '
        'sgid=0 fsgid=0 tty=pts0 ses=1 comm="auditctl" exe="/sbin/auditctl" key="audit_access"',
        'type=EXECVE msg=audit(1481077231.371:479): argc=3 a0="auditctl" a1="-a" a2="exit,always"',
        'type=CWD msg=audit(1481077231.371:479):  cwd="/home/some_user"',
        'type=PATH msg=audit(1481077231.371:479): item=0 name="/sbin/auditctl" inode=17367907 dev=08:01 mode=0100750 '
        "ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:auditctl_exec_t:s0 nametype=NORMAL",
        'type=PATH msg=audit(1481077231.371:479): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=1923 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL',
        "type=PROCTITLE msg=audit(1481077231.371:479): proctitle=617564697463746C002D6100657869742C616C77617973",
    ])
    assert doc["process"]["args"] == ["auditctl", "-a", "exit,always"] and doc["auditd"]["data"]["argc"] == "3"
    assert doc["process"]["working_directory"] == "/home/some_user"
    assert doc["process"]["title"] == "auditctl -a exit,always"
    assert doc["file"] == {"path": "/sbin/auditctl", "device": "00:00", "inode": "17367907", "mode": "0750", "uid": "0",
                           "gid": "0", "owner": "root", "group": "root",
                           "selinux": {"user": "system_u", "role": "object_r", "domain": "auditctl_exec_t", "level": "s0"}}
    assert [p["name"] for p in doc["auditd"]["paths"]] == ["/sbin/auditctl", "/lib64/ld-linux-x86-64.so.2"]
    assert "items" not in doc["auditd"]["data"]
    am = one([ln.replace("1481077231.371:479", "1481077231.371:480") for ln in [
        'type=SYSCALL msg=audit(1481077231.371:479): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 '
        'items=1 ppid=1 pid=2 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="x" exe="/x"',
        'type=EXECVE msg=audit(1481077231.371:479): argc=1 a0="x"',
        'type=PATH msg=audit(1481077231.371:479): item=0 name="/x" mode=0100750 obj=system_u:object_r:bin_t:s0 nametype=NORMAL',
        'type=PROCTITLE msg=audit(1481077231.371:479): proctitle="x"']], "auditd-manager")
    assert am["auditd"]["data"]["argc"] == 1 and "selinux" not in am["file"]
    assert am["auditd"]["file"]["selinux"]["domain"] == "bin_t"


def test_empty_and_split_args_are_kept_deviation() -> None:
    doc = one([
        'type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 '
        'ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="echo" exe="/bin/echo"',
        'type=EXECVE msg=audit(1700000000.000:7): argc=4 a0="echo" a1="" a2_len=6 a2[0]=616263 a2[1]=646566',
        'type=EXECVE msg=audit(1700000000.000:7): a3="last"',
        'type=PROCTITLE msg=audit(1700000000.000:7): proctitle=6563686F',
    ])
    assert doc["process"]["args"] == ["echo", "", "abcdef", "last"]


def test_i386_socketcall_handcrafted_kernel_format() -> None:
    doc = one([
        'type=SYSCALL msg=audit(1700000000.200:9): arch=40000003 syscall=102 success=yes exit=3 a0=1 a1=ffb3c1d0 a2=0 a3=0 '
        'items=0 ppid=1 pid=77 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 '
        'fsgid=1000 tty=pts0 ses=2 comm="nc32" exe="/opt/nc32" key="net_socket"',
        "type=SOCKETCALL msg=audit(1700000000.200:9): nargs=3 a0=2 a1=2 a2=0",
        'type=PROCTITLE msg=audit(1700000000.200:9): proctitle="nc32"',
    ])
    data = doc["auditd"]["data"]
    assert (data["arch"], data["syscall"], data["a0"], data["a1"], data["nargs"]) == ("i386", "socketcall", "1", "ffb3c1d0", "3")
    assert doc["event"]["category"] == ["process"] and doc["event"]["type"] == ["info"]


def test_config_change_with_syscall_concatenates_categories() -> None:
    doc = one([
        'type=CONFIG_CHANGE msg=audit(1795961353.037:26598): auid=4294967295 ses=4294967295 op=remove_rule key="rs_exec" list=4 res=1',
        'type=SYSCALL msg=audit(1795961353.037:26598): arch=c000003e syscall=44 success=yes exit=1064 a0=3 a1=7fff59958320 '
        'a2=428 a3=0 items=0 ppid=26383 pid=26384 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
        'tty=(none) ses=4294967295 comm="auditctl" exe="/usr/sbin/auditctl" key=(null)',
        "type=SOCKADDR msg=audit(1795961353.037:26598): saddr=100000000000000000000000",
        "type=PROCTITLE msg=audit(1795961353.037:26598): proctitle=617564697463746C002D44",
    ])
    assert doc["event"]["category"] == ["process", "configuration", "network"]
    assert doc["event"]["type"] == ["change", "connection", "info"]
    assert doc["event"]["action"] == "changed-audit-configuration" and doc["auditd"]["message_type"] == "config_change"
    assert doc["auditd"]["summary"]["object"] == {"primary": "remove_rule", "type": "audit-config"}
    assert doc["auditd"]["data"]["op"] == "remove_rule" and doc["auditd"]["data"]["auid"] == "unset"
    assert "tags" not in doc


def test_user_space_login_record_maps_ecs_user() -> None:
    doc = one([
        "type=USER_LOGIN msg=audit(1700000100.000:300): pid=900 uid=0 auid=0 ses=5 msg='op=login id=0 "
        "exe=\"/usr/sbin/sshd\" hostname=10.0.0.9 addr=10.0.0.9 terminal=/dev/pts/1 res=success'"
    ])
    assert doc["event"]["category"] == ["authentication"] and doc["event"]["type"] == ["start"]
    assert doc["event"]["action"] == "logged-in" and doc["event"]["outcome"] == "success"
    assert doc["source"] == {"ip": "10.0.0.9"} and doc["network"]["direction"] == "ingress"
    assert doc["user"]["id"] == "0" and doc["user"]["name"] == "root"
    assert doc["related"] == {"user": ["root"]}
    assert doc["auditd"]["summary"]["object"]["primary"] == "/dev/pts/1"


def test_unknown_record_type_still_becomes_a_document() -> None:
    doc = one(["type=UNKNOWN[1999] msg=audit(1700000000.000:1): foo=bar res=1"])
    assert doc["auditd"]["message_type"] == "unknown[1999]" and doc["event"]["category"] == "unknown"
    assert doc["auditd"]["data"]["foo"] == "bar"


def test_compound_event_without_syscall_is_kept_deviation() -> None:
    docs = normalize_lines([
        b"type=AVC msg=audit(1700000000.000:11): avc:  denied  { read } for  pid=5 comm=\"cat\" name=\"x\" scontext=u:r:t:s0 tcontext=u:r:f:s0 tclass=file permissive=0",
        b"type=AVC_PATH msg=audit(1700000000.000:11): path=\"/x\"",
        b"type=EOE msg=audit(1700000000.000:11): ",
    ], "auditbeat", HOST)
    assert len(docs) == 1
    assert docs[0]["event"]["action"] == "violated-selinux-policy" and docs[0]["auditd"]["data"]["seresult"] == "denied"
    assert docs[0]["auditd"]["data"]["path"] == "/x"


def _walk(value: Any, path: str = "") -> list[str]:
    bad = []
    if isinstance(value, dict):
        if not value:
            bad.append(path)
        for key, item in value.items():
            if "-" in key:
                bad.append(f"{path}.{key} (dash)")
            bad += _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            bad.append(path)
        if path != ".process.args":
            for item in value:
                bad += _walk(item, path + "[]")
    elif value is None or value == "":
        bad.append(path)
    return bad


def test_auditd_manager_documents_have_no_empty_values_or_dashed_keys(corpus_am: list[dict[str, Any]]) -> None:
    from .test_recordings import _log_docs

    docs = corpus_am + _log_docs("enriched", "auditd-manager", HOST) + [one(CONNECT, "auditd-manager"), one(SOCKET, "auditd-manager")]
    docs += normalize_lines([
        b"type=LOGIN msg=audit(1700000000.000:3): pid=1 uid=0 subj=a::c:s0 old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1",
        b"type=SYSCALL msg=audit(1700000000.000:4): arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=1 a2=f a3=0 items=0 ppid=1 pid=2 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"x\" exe=\"/x\"",
        b"type=SOCKADDR msg=audit(1700000000.000:4): saddr=0100002F746D702F78",
        b"type=PROCTITLE msg=audit(1700000000.000:4): proctitle=78",
    ], "auditd-manager", HOST)
    problems = [(i, p) for i, d in enumerate(docs) for p in _walk(d)]
    assert not problems, problems[:10]
    login = [d for d in docs if d["auditd"]["message_type"] == "login"][-1]
    assert login["auditd"]["data"]["old_ses"] == "4294967295"
    assert login["auditd"]["user"]["selinux"] == {"user": "a", "domain": "c", "level": "s0"}
