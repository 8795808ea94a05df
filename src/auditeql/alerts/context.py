"""Process context Elastic does not give for audit data: command lines and ancestry.

Auditbeat/Auditd Manager documents carry a process's pid, parent pid and (from EXECVE /
PROCTITLE) its arguments, but an alert on a shell's ``connect()`` does not say *who started
that shell*. While scanning, :class:`ProcessContext` remembers, per host and pid, the last few
executions (and, for processes whose exec the stream never showed, what their other events
said). An alert then gets the command line of its process and the chain of parent processes
as far as the stream shows them, under the ``auditeql.*`` namespace so nobody mistakes it for
an Elastic field:

* ``auditeql.command_line``: the process's command line (``process.args`` shell-quoted, or
  ``process.title``);
* ``auditeql.ancestry``: parents nearest first, each ``{pid, ppid, name, executable,
  command_line, time, exec}`` (``exec`` false when only a non-exec event of that pid was seen);
  an unknown parent ends the chain as ``{pid}``.

Memory is bounded: at most ``max_pids`` (host, pid) entries, least recently seen dropped first,
each keeping at most ``per_pid`` entries (pids get reused).
"""

from __future__ import annotations

import shlex
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditeql.fields import first, values

#: how far after an event an execution may be stamped and still count as "before" it
#: (audit events of one process share a millisecond and arrive in any order).
SLACK_MS = 1_000
MAX_DEPTH = 16


@dataclass(frozen=True)
class ProcInfo:
    """What the stream said about one process at one time."""

    time_ms: int
    pid: int
    ppid: int | None
    name: str | None
    executable: str | None
    command_line: str | None
    exec: bool
    time: str | None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "pid": self.pid,
            "ppid": self.ppid,
            "name": self.name,
            "executable": self.executable,
            "command_line": self.command_line,
            "time": self.time,
            "exec": self.exec,
        }
        return {k: v for k, v in out.items() if v is not None}


def command_line(doc: Mapping[str, Any]) -> str | None:
    """``process.args`` shell-quoted, else ``process.title``, else ``None``."""
    args = values(doc, "process.args")
    if args:
        return shlex.join(str(a) for a in args)
    title = first(doc, "process.title")
    return str(title) if title is not None else None


_MISS = object()


def _get(doc: Mapping[str, Any], path: str) -> Any:
    """``first(doc, path)`` with a fast path for nested dicts holding a scalar (the usual ECS shape)."""
    node: Any = doc
    for part in path.split("."):
        if node.__class__ is not dict:
            return first(doc, path)
        node = node.get(part, _MISS)
        if node is _MISS:
            return first(doc, path)
    if node is None or node.__class__ is list or node.__class__ is dict:
        return first(doc, path)
    return node


def is_exec(doc: Mapping[str, Any]) -> bool:
    """A successful execve/execveat (a failed one left the old program running)."""
    syscall = _get(doc, "auditd.data.syscall")
    action = _get(doc, "event.action")
    if syscall not in ("execve", "execveat") and action != "executed":
        return False
    return first(doc, "event.outcome") != "failure" and first(doc, "auditd.result") != "fail"


def _info(doc: Mapping[str, Any], time_ms: int, pid: int, execd: bool) -> ProcInfo:
    return ProcInfo(
        time_ms=time_ms,
        pid=pid,
        ppid=_int(_get(doc, "process.parent.pid")),
        name=_get(doc, "process.name"),
        executable=_get(doc, "process.executable"),
        command_line=command_line(doc),
        exec=execd,
        time=_get(doc, "@timestamp"),
    )


class _Lazy:
    """A skipped event's entry: ordered by time now, turned into a :class:`ProcInfo` on demand."""

    __slots__ = ("time_ms", "item")

    def __init__(self, time_ms: int, item: Any) -> None:
        self.time_ms = time_ms
        self.item = item

    def materialize(self, pid: int) -> ProcInfo:
        return _info(self.item.document(), self.time_ms, pid, self.item.is_exec)


def _doc_ms(doc: Mapping[str, Any]) -> int | None:
    from auditeql.engine.ordering import timestamp_ms

    try:
        value = timestamp_ms(_get(doc, "@timestamp"))
    except (TypeError, ValueError):
        return None
    return int(value) if value is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ProcessContext:
    """A bounded (host, pid) -> recent executions map, fed every document of a scan."""

    def __init__(self, max_pids: int = 262_144, per_pid: int = 4) -> None:
        self.max_pids = max_pids
        self.per_pid = per_pid
        self._procs: OrderedDict[tuple[Any, int], list[ProcInfo]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._procs)

    def observe(self, doc: Mapping[str, Any], time_ms: int | None = None) -> None:
        """Remember what ``doc`` says about its process (cheap; call for every document).

        ``time_ms`` is the document's time; when ``None`` it is read from ``@timestamp``, and only
        if the document is remembered (most documents of a known process are not).
        """
        pid = _get(doc, "process.pid")
        if pid.__class__ is not int:
            pid = _int(pid)
        if pid is None:
            return
        key = (_get(doc, "host.id"), pid)
        entries = self._procs.get(key)
        execd = is_exec(doc)
        if entries is not None:
            self._procs.move_to_end(key)
            if not execd:
                return
        if time_ms is None:
            time_ms = _doc_ms(doc)
            if time_ms is None:
                return
        info = _info(doc, time_ms, pid, execd)
        if entries is None:
            self._procs[key] = [info]
            if len(self._procs) > self.max_pids:
                self._procs.popitem(last=False)
            return
        entries.append(info)
        entries.sort(key=lambda e: e.time_ms)
        if len(entries) > self.per_pid:
            del entries[0]

    def observe_deferred(self, item: Any) -> None:
        """Remember an event the rules' push-down skipped, exactly as :meth:`observe` would.

        ``item`` is an :class:`auditeql.rules.pushdown.Deferred`: the facts read off its SYSCALL
        line (``host``, ``pid``, ``time_ms``, ``is_exec``) decide here; its document is built only
        if :meth:`lookup` ever returns it (an alert's ancestry), so skipping stays cheap.
        """
        key = (item.host, item.pid)
        entries = self._procs.get(key)
        if entries is not None:
            self._procs.move_to_end(key)
            if not item.is_exec:
                return
        lazy = _Lazy(item.time_ms, item)
        if entries is None:
            self._procs[key] = [lazy]  # type: ignore[list-item]
            if len(self._procs) > self.max_pids:
                self._procs.popitem(last=False)
            return
        entries.append(lazy)  # type: ignore[arg-type]
        entries.sort(key=lambda e: e.time_ms)
        if len(entries) > self.per_pid:
            del entries[0]

    def lookup(self, host: Any, pid: int, at_ms: int) -> ProcInfo | None:
        """The latest thing known about ``pid`` at ``at_ms`` (executions preferred)."""
        entries = self._procs.get((host, pid))
        if not entries:
            return None
        best = None
        index = -1
        for i, e in enumerate(entries):
            if e.time_ms <= at_ms + SLACK_MS:
                best, index = e, i
        if isinstance(best, _Lazy):
            best = entries[index] = best.materialize(pid)
        return best

    def ancestry(self, host: Any, ppid: int | None, at_ms: int) -> list[dict[str, Any]]:
        """Parents of a process whose parent pid is ``ppid``, nearest first."""
        chain: list[dict[str, Any]] = []
        seen: set[int] = set()
        while ppid is not None and ppid > 0 and ppid not in seen and len(chain) < MAX_DEPTH:
            seen.add(ppid)
            info = self.lookup(host, ppid, at_ms)
            if info is None:
                chain.append({"pid": ppid})
                break
            chain.append(info.to_dict())
            ppid = info.ppid
        return chain

    def describe(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``auditeql.command_line`` and ``auditeql.ancestry`` for one event's process."""
        return self.describe_group([event])

    def describe_group(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Context for the process of a sample/sequence: its exec event names the command line."""
        from auditeql.alerts.build import timestamp_ms

        events = [e for e in events if e is not None]
        if not events:
            return {}
        main = next((e for e in events if is_exec(e)), events[0])
        times = [t for t in (_safe_ts(e, timestamp_ms) for e in events) if t is not None]
        at = min(times) if times else 0
        host = first(main, "host.id")
        out: dict[str, Any] = {}
        line = command_line(main)
        pid = _int(first(main, "process.pid"))
        if line is None and pid is not None:
            known = self.lookup(host, pid, at)
            line = known.command_line if known else None
        if line is not None:
            out["auditeql.command_line"] = line
        out["auditeql.ancestry"] = self.ancestry(host, _int(first(main, "process.parent.pid")), at)
        return out


def _safe_ts(doc: Mapping[str, Any], parse: Any) -> int | None:
    try:
        return parse(first(doc, "@timestamp"))
    except (ValueError, TypeError):
        return None
