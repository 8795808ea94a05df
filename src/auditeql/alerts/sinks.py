"""Where alerts go: a table for people, NDJSON for machines (exactly the alert documents).

The table shows one row per alert *group* (a sample/sequence's shell with its building blocks,
or a single-event alert): when, which host, which process (pid/ppid), as whom, to where, and
the command line with the ancestry auditeql reconstructed. Webhook and syslog sinks live in
their own modules (``alerts.webhook``, ``alerts.syslog``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from auditeql.fields import first

_BB = "kibana.alert.building_block_type"


@dataclass(frozen=True)
class GroupRow:
    """The facts of one alert group that the table shows."""

    time: str
    rule: str
    severity: str
    host: str
    process: str
    pid: str
    ppid: str
    user: str
    destination: str
    command_line: str
    ancestry: str
    uuid: str


def write_ndjson(alerts: Iterable[Mapping[str, Any]], out: IO[bytes]) -> int:
    """One alert document per line, as built (no reshaping). Returns the count."""
    n = 0
    for alert in alerts:
        out.write(orjson.dumps(alert) + b"\n")
        n += 1
    return n


def group_alerts(alerts: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
    """``[(head, members)]``: each shell with its building blocks (by group index), single alerts alone."""
    members: dict[str, list[Mapping[str, Any]]] = {}
    heads: list[Mapping[str, Any]] = []
    for a in alerts:
        gid = a.get("kibana.alert.group.id")
        if gid is not None and a.get("kibana.alert.uuid") != gid:
            members.setdefault(gid, []).append(a)
        else:
            heads.append(a)
    out = []
    for head in heads:
        ms = sorted(members.get(head["kibana.alert.uuid"], []), key=lambda m: m.get("kibana.alert.group.index", 0))
        out.append((head, ms))
    return out


def group_row(head: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> GroupRow:
    """Summarize a group, taking each fact from the event that has it (exec, connect…)."""
    docs = list(members) or [head]
    execs = [d for d in docs if first(d, "kibana.alert.original_event.action") == "executed" or first(d, "event.action") == "executed"]
    main = execs[0] if execs else docs[0]
    times = sorted(str(t) for t in (d.get("kibana.alert.original_time") for d in docs) if t)
    dest = ""
    for d in docs:
        ip = first(d, "destination.ip")
        if ip is not None:
            port = first(d, "destination.port")
            ip_s = f"[{ip}]" if ":" in str(ip) and port is not None else str(ip)
            dest = f"{ip_s}:{port}" if port is not None else ip_s
            break
    ancestry = head.get("auditeql.ancestry") or main.get("auditeql.ancestry") or []
    chain = " < ".join(_ancestor_label(a) for a in ancestry)
    return GroupRow(
        time=times[0] if times else "",
        rule=str(head.get("kibana.alert.rule.name", "")),
        severity=str(head.get("kibana.alert.severity", "")),
        host=str(first(main, "host.name") or first(main, "host.id") or ""),
        process=str(first(main, "process.name") or ""),
        pid=_s(first(main, "process.pid")),
        ppid=_s(first(main, "process.parent.pid")),
        user=str(first(main, "user.name") or first(main, "user.id") or ""),
        destination=dest,
        command_line=str(head.get("auditeql.command_line") or main.get("auditeql.command_line") or ""),
        ancestry=chain,
        uuid=str(head.get("kibana.alert.uuid", "")),
    )


def _ancestor_label(a: Mapping[str, Any]) -> str:
    name = a.get("command_line") or a.get("name") or "?"
    if len(name) > 60:
        name = name[:57] + "..."
    return f"{name} ({a.get('pid')})"


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def write_table(alerts: Sequence[Mapping[str, Any]], out: IO[str], *, width: int | None = None) -> int:
    """A rich table, one row per alert group; returns the number of rows."""
    from rich.console import Console
    from rich.table import Table

    rows = [group_row(h, m) for h, m in group_alerts(alerts)]
    rows.sort(key=lambda r: (r.time, r.uuid))
    if width is None:
        isatty = getattr(out, "isatty", None)
        width = None if isatty is not None and isatty() else 200  # a terminal: its own width
    console = Console(file=out, width=width, soft_wrap=False, highlight=False)
    if not rows:
        console.print("no alerts")
        return 0
    table = Table(show_lines=True, title=f"{len(rows)} alert group(s)", title_justify="left")
    for name, ratio in (("time", 0), ("host", 0), ("process (pid/ppid)", 0), ("user", 0), ("destination", 0),
                        ("command line  < parents", 4), ("rule (severity)", 2), ("alert", 0)):
        table.add_column(name, overflow="fold", ratio=ratio or None, no_wrap=ratio == 0 and name != "time")
    for r in rows:
        cmd = r.command_line + (f"\n  < {r.ancestry}" if r.ancestry else "")
        table.add_row(r.time, r.host, f"{r.process} ({r.pid}/{r.ppid})", r.user, r.destination, cmd,
                      f"{r.rule} ({r.severity})", r.uuid[:12])
    console.print(table)
    return len(rows)
