"""Run techniques one after another against the test host, each with a timeout.

Each technique starts in a new session inside the client namespace (``ip netns exec`` execs in
place, so the technique's first process keeps the pid we started). When it ends or its timeout
expires, every process of that session is killed (shells fork; a session survives its leader).
The result records the time window and root pid (to attribute alerts later) and what the test
host's listener saw (evidence that the technique really reached it and a shell answered).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from auditeql.emulate.netns import TestHost
from auditeql.emulate.techniques import Technique

#: A clean PATH: no pyenv/venv shims in front of the system interpreters (a shim would add a
#: wrapper process and change what the audit trail shows).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GAP_SECONDS = 0.3  # pause between techniques, so time windows do not touch


@dataclass(frozen=True)
class Outcome:
    """What happened when one technique ran (or why it did not)."""

    name: str
    status: str  # "ran" | "skipped" | "error"
    reason: str = ""
    start: float = 0.0  # wall-clock seconds (the audit clock)
    end: float = 0.0
    pid: int | None = None
    returncode: int | None = None
    timed_out: bool = False
    reached_host: bool = False
    shell_answered: bool = False
    output: str = ""
    listener: tuple[dict, ...] = field(default_factory=tuple)


def session_pids(sid: int) -> list[int]:
    """Pids of all live processes whose session id is ``sid`` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # field 2 (comm) may contain spaces and parentheses: split after the last ")"
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 3 and int(rest[3]) == sid:
            pids.append(int(entry))
    return pids


def kill_session(sid: int, grace: float = 0.3) -> None:
    """SIGTERM, then SIGKILL, every process of session ``sid``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and session_pids(sid):
            time.sleep(0.02)


def run_one(host: TestHost, tech: Technique) -> Outcome:
    """Run ``tech`` in the client namespace; always leaves no process of it behind."""
    missing = tech.missing_tools(path=SYSTEM_PATH)
    if missing:
        return Outcome(tech.name, "skipped", f"missing: {', '.join(missing)}")
    assert host.workdir is not None
    values = {"TMP": str(host.workdir), **host.endpoints.placeholders()}
    argv = host.client_argv(tech.command(values))
    argv[0] = shutil.which(argv[0], path=SYSTEM_PATH) or argv[0]  # no PATH search: no failed execve
    env = {"PATH": SYSTEM_PATH, "HOME": str(host.workdir), "LANG": "C.UTF-8", "TERM": "dumb"}
    seen_before = len(host.listener_events())
    start = time.time()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=host.workdir, start_new_session=True,
        )
    except OSError as exc:
        return Outcome(tech.name, "error", f"could not start: {exc}", start, time.time())
    timed_out = False
    try:
        try:
            out, _ = proc.communicate(timeout=tech.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_session(proc.pid)
            out, _ = proc.communicate()
    finally:
        kill_session(proc.pid)  # children that outlived the leader; also when interrupted
    end = time.time()
    time.sleep(0.15)  # let the listener report the last datagrams
    events = tuple(host.listener_events()[seen_before:])
    return Outcome(
        tech.name, "ran", "", start, end, proc.pid, proc.returncode, timed_out,
        reached_host=bool(events),
        shell_answered=any("uid=" in str(e.get("data", "")) for e in events),
        output=(out or b"").decode("utf-8", "replace")[-400:],
        listener=events,
    )


def run_all(
    host: TestHost,
    techniques: Iterable[Technique],
    *,
    keep_going: bool = True,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run the techniques in order. Without ``keep_going`` the first error stops the run."""
    results = []
    for tech in techniques:
        outcome = run_one(host, tech)
        results.append(outcome)
        if on_done is not None:
            on_done(outcome)
        if outcome.status == "error" and not keep_going:
            break
        time.sleep(GAP_SECONDS)
    return results
