"""Merge the records of one audit event into one :class:`Event` (go-libaudit ``aucoalesce``).

The shape mirrors aucoalesce's event because Auditbeat's document is a direct projection of it
(see :mod:`auditeql.audit.ecs`): the SYSCALL record's fields feed ``data``/``user``/``summary``,
PATH records become ``paths``, SOCKADDR fields become ``socket_*`` data plus source/destination and
direction, EXECVE gives ``process.args``, and everything else is merged into ``data`` (first value
wins). Then the normalization table (tables/normalizations.json) gives category/type/action/object.

Deliberate differences, each listed in docs/deviations.md:

* EXECVE arguments are rebuilt across continuation records and split (``aN_len``/``aN[i]``)
  arguments, and empty arguments are kept — go-libaudit drops ``process.args`` entirely then;
* a multi-record event without a SYSCALL record is still coalesced (go-libaudit emits an error
  document with no fields) — first record first, the others merged into ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditeql.audit import tables
from auditeql.audit.enrich import RecordData, hex_string, record_data, decode_hex
from auditeql.audit.records import AuditRecord

_INGRESS = frozenset(("recvfrom", "recvmsg", "accept", "accept4"))
_EGRESS = frozenset(("connect", "sendto", "sendmsg"))
_HOW_INTERPRETERS = ("/usr/bin/python", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/perl")


@dataclass(slots=True)
class Entity:
    """An ECS user/group reference set by a normalization mapping (id or name, or ``unset``)."""

    id: str = ""
    name: str = ""

    def set(self, value: str) -> None:
        if value in ("", "unset", "4294967295", "-1"):
            self.id, self.name = "unset", ""
        elif value.isdigit():
            self.id = value
        else:
            self.name = value


@dataclass(slots=True)
class Event:
    """One coalesced audit event (the analogue of go-libaudit's ``aucoalesce.Event``)."""

    seconds: int
    millis: int
    sequence: int
    record_type: int
    category: str
    node: str | None
    records: list[AuditRecord]
    result: str = "unknown"
    session: str = ""
    tags: list[str] | None = None
    data: dict[str, str] = field(default_factory=dict)
    paths: list[dict[str, str]] = field(default_factory=list)
    user_ids: dict[str, str] = field(default_factory=dict)
    user_names: dict[str, str] = field(default_factory=dict)
    selinux: dict[str, str] = field(default_factory=dict)
    actor_primary: str = ""
    actor_secondary: str = ""
    action: str = ""
    object_type: str = ""
    object_primary: str = ""
    object_secondary: str = ""
    how: str = ""
    process: dict[str, Any] = field(default_factory=dict)
    args: list[str] | None = None
    file: dict[str, Any] | None = None
    source: dict[str, str] | None = None
    destination: dict[str, str] | None = None
    direction: str | None = None
    ecs_category: list[str] = field(default_factory=list)
    ecs_type: list[str] = field(default_factory=list)
    ecs_outcome: str = ""
    entities: dict[str, Entity] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: hashable (ids, selinux) for ecs's user-object cache, computed once per memoised record
    user_key: tuple[Any, ...] | None = None

    @property
    def syscall(self) -> str | None:
        return self.data.get("syscall")


_LEGACY: dict[int, str] = {}


def legacy_category(record_type: int) -> str:
    """go-libaudit's pre-ECS event category (``audit-rule``, ``user-login``…)."""
    name = _LEGACY.get(record_type)
    if name is None:
        name = "unknown"
        for lo, hi, cat in tables.normalizations()["legacy_categories"]:
            if lo <= record_type <= hi:
                name = cat
                break
        _LEGACY[record_type] = name
    return name


def coalesce(records: list[AuditRecord]) -> Event:
    """Build one event from the records of one serial (EOE already removed by reassembly)."""
    EOE, SYSCALL = tables.EOE, tables.SYSCALL
    syscall = None
    for r in records:
        rtype = r.type
        if rtype == SYSCALL:
            if syscall is None:
                syscall = r
        elif rtype == EOE:
            records = [r for r in records if r.type != EOE] or records
            syscall = next((r for r in records if r.type == SYSCALL), None)
            break
    first = records[0]
    if len(records) == 1:
        ev = _new_event(records, first, record_data(first))
    elif syscall is None:
        ev = _new_event(records, first, record_data(first), first)
        for rec in records[1:]:
            _merge(ev, rec, record_data(rec))
    else:
        ev = _new_event(records, syscall, record_data(syscall), first if first.type != SYSCALL else None)
        PATH, SOCKADDR, EXECVE = tables.PATH, tables.SOCKADDR, tables.EXECVE
        execve: list[AuditRecord] | None = None
        for rec in records:
            rtype = rec.type
            if rtype == SYSCALL:
                ev.data.pop("items", None)
            elif rtype == PATH:
                rd = record_data(rec)
                if rd.error:
                    ev.warnings.append(f"failed to parse PATH message: {rd.error}")
                else:
                    ev.paths.append(rd.values.copy())
            elif rtype == SOCKADDR:
                _add_sockaddr(ev, record_data(rec))
            elif rtype == EXECVE:
                if execve is None:
                    execve = [rec]
                else:
                    execve.append(rec)
            else:
                _merge(ev, rec, record_data(rec))
        if execve:
            _add_execve(ev, execve)
    _normalize(ev)
    _add_process(ev)
    return ev


def _new_event(records: list[AuditRecord], main: AuditRecord, rd: RecordData, special: AuditRecord | None = None) -> Event:
    head = special or main
    rtype = head.type
    category = _LEGACY.get(rtype)
    if category is None:
        category = legacy_category(rtype)
    if rd.error:
        ev = Event(head.seconds, head.millis, head.serial, rtype, category, head.node, records, result="")
        ev.warnings.append(rd.error)
        return ev
    values = rd.values  # shared (memoised): read only
    split = rd.split
    if split is None:
        ids: dict[str, str] = {}
        selinux: dict[str, str] = {}
        data: dict[str, str] = {}
        for key, value in values.items():
            tail = key[-3:]
            if tail == "uid" or tail == "gid":
                ids[key] = value
            elif key[:5] == "subj_":
                selinux[key[5:]] = value
            elif key != "result" and key != "ses":
                data[key] = value
        split = rd.split = (ids, selinux, data, (tuple(ids.items()), tuple(selinux.items())))
    ses = values.get("ses")
    # user_ids / selinux are shared with the memoised record: nothing writes to them
    return Event(
        head.seconds, head.millis, head.serial, rtype, category, head.node, records,
        result=values.get("result", "unknown"), session="" if ses is None else ses, tags=rd.tags,
        data=split[2].copy(), user_ids=split[0], selinux=split[1], actor_primary=values.get("auid", ""),
        actor_secondary=values.get("uid", ""), user_key=split[3],
    )


def _merge(ev: Event, rec: AuditRecord, rd: RecordData) -> None:
    if rd.error:
        ev.warnings.append(f"failed to parse message: {rd.error}")
        return
    data = ev.data
    for key, value in rd.values.items():
        if key in data:
            ev.warnings.append(f"duplicate key ({key}) from {rec.type_name} message")
            continue
        data[key] = value


def _add_sockaddr(ev: Event, rd: RecordData) -> None:
    if rd.error:
        ev.warnings.append(f"failed to parse SOCKADDR message: {rd.error}")
        return
    syscall = ev.data.get("syscall")
    if syscall is None:
        ev.warnings.append("failed to add SOCKADDR data because syscall is unknown")
        return
    values = rd.values
    for key, value in values.items():
        ev.data["socket_" + key] = value
    if syscall in _EGRESS:
        ev.destination = _address(values)
        ev.direction = "egress"
    elif syscall in _INGRESS:
        ev.source = _address(values)
        ev.direction = "ingress"


def _address(values: dict[str, str]) -> dict[str, str] | None:
    ip, port, path = values.get("addr", ""), values.get("port", ""), values.get("path", "")
    if not (ip or port or path):
        return None
    out = {}
    if ip:
        out["ip"] = ip
    if port:
        out["port"] = port
    if path:
        out["path"] = path
    return out


def _add_execve(ev: Event, execve: list[AuditRecord]) -> None:
    """Rebuild argv from all EXECVE records of the event.

    The kernel writes ``argc=N a0=… a1=…``; long argument lists continue in more EXECVE records
    (without ``argc``), an argument too long for one record is split as ``aN_len=L aN[0]=… aN[1]=…``
    (always hex), and an empty argument is ``aN=""``. go-libaudit only reads a single record and
    drops all arguments when any is missing; we keep every argument we can see.
    """
    argc_raw: str | None = None
    pieces: dict[int, str] = {}
    parts: dict[int, dict[int, str]] = {}
    for rec in execve:
        for token in rec.body.split():
            key, eq, raw = token.partition("=")
            if not eq:
                continue
            if key == "argc":
                if argc_raw is None:
                    argc_raw = raw
                continue
            if not key.startswith("a") or len(key) < 2:
                continue
            name = key[1:]
            if name.isdigit():
                pieces[int(name)] = raw
            elif name.endswith("]") and "[" in name:
                idx, _, part = name[:-1].partition("[")
                if idx.isdigit() and part.isdigit():
                    parts.setdefault(int(idx), {})[int(part)] = raw
    if argc_raw is None:
        ev.warnings.append("argc key not found in EXECVE message")
        return
    try:
        argc = int(argc_raw.strip('"'))
    except ValueError:
        ev.warnings.append(f"failed to convert argc='{argc_raw}' to number")
        return
    ev.data["argc"] = str(argc)
    args: list[str] = []
    for i in range(argc):
        if i in pieces:
            args.append(_arg_value(pieces[i]))
        elif i in parts:
            chunks = parts[i]
            data = b"".join(decode_hex(chunks[k]) or chunks[k].strip('"').encode() for k in sorted(chunks))
            nul = data.find(b"\x00")
            args.append((data[:nul] if nul >= 0 else data).decode("utf-8", "replace"))
        else:
            ev.warnings.append(f"failed to find arg a{i}")
            break
    ev.args = args


def _arg_value(raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1] if raw.endswith('"') and len(raw) >= 2 else raw[1:]
    decoded = hex_string(raw)
    return decoded if decoded is not None else raw


def _add_process(ev: Event) -> None:
    data = ev.data
    proc = ev.process
    for key, dest in (("pid", "pid"), ("ppid", "ppid"), ("proctitle", "title"), ("comm", "name"), ("exe", "exe"), ("cwd", "cwd")):
        value = data.pop(key, None)
        if value is not None:
            proc[dest] = value


# -- normalization --------------------------------------------------------------------------

class _Norms:
    """The normalization table indexed by syscall name and record type name."""

    def __init__(self) -> None:
        table = tables.normalizations()
        self.syscalls: dict[str, dict[str, Any]] = {}
        self.record_types: dict[str, list[dict[str, Any]]] = {}
        for entry in table["syscalls"]:
            for name in entry.get("syscalls", []):
                self.syscalls[name] = entry
            for rtype in entry.get("record_types", []):
                self.record_types.setdefault(rtype, []).append(entry)
        for entry in table["record_types"]:
            for rtype in entry["record_types"]:
                self.record_types.setdefault(rtype, []).append(entry)


_NORMS: _Norms | None = None


def _norms() -> _Norms:
    global _NORMS
    if _NORMS is None:
        _NORMS = _Norms()
    return _NORMS


def _get(ev: Event, key: str) -> str | None:
    value = ev.data.get(key)
    if value is None:
        value = ev.user_ids.get(key)
    return value


def _normalize(ev: Event) -> None:
    norms = _norms()
    data = ev.data
    exe = data.get("exe") or data.get("comm")
    if exe:
        ev.how = exe
        if exe.startswith(_HOW_INTERPRETERS) and "comm" in data:
            ev.how = data["comm"]

    syscall_norm = None
    syscall = data.get("syscall")
    if syscall is not None:
        syscall_norm = norms.syscalls.get(syscall) or norms.syscalls["*"]
    if ev.record_type == tables.SYSCALL:
        norm = syscall_norm
    else:
        norm = None
        candidates = norms.record_types.get(tables.type_name(ev.record_type), [])
        if len(candidates) == 1:
            norm = candidates[0]
        else:
            for cand in candidates:
                if all(f in data for f in cand.get("has_fields", [])):
                    norm = cand
    if norm is None:
        ev.warnings.append("no normalization found for event")
        return
    plan = _plan(norm, syscall_norm)
    ev.ecs_category = list(plan.category)
    ev.ecs_type = list(plan.type)
    if plan.merged and ev.result == "fail":
        ev.ecs_outcome = "failure"
    ev.action = plan.action

    what = plan.what
    ev.object_type = what
    if what == "file" or what == "filesystem":
        _file_object(ev, plan.path_index)
    elif what == "socket":
        primary = data.get("socket_addr")
        if primary is None:
            primary = data.get("socket_path")
        if primary is not None:
            ev.object_primary = primary
        if "socket_port" in data:
            ev.object_secondary = data["socket_port"]

    if plan.subject_primary:
        _first(ev, plan.subject_primary, "actor_primary", "subject primary")
    if plan.subject_secondary:
        _first(ev, plan.subject_secondary, "actor_secondary", "subject secondary")
    if plan.object_primary:
        _first(ev, plan.object_primary, "object_primary", "object primary")
    if plan.object_secondary:
        _first(ev, plan.object_secondary, "object_secondary", "object secondary")
    if plan.how:
        _first(ev, plan.how, "how", "how")
    source_keys = plan.source_ip
    if ev.source is None and source_keys:
        for key in source_keys:
            if key in data:
                ev.source = {"ip": data.pop(key)}
                ev.direction = "ingress"
                break
        else:
            ev.warnings.append(f"failed to set source IP using keys={source_keys} because they were not found")
    if plan.mappings:
        entities = ev.entities
        for src, dest in plan.mappings:
            value = _mapping_value(ev, src)
            entity = entities.get(dest)
            if entity is None:
                entity = entities[dest] = Entity()
            entity.set(value)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One normalization entry (plus the syscall entry merged into it) read once, not per event."""

    category: tuple[str, ...]
    type: tuple[str, ...]
    merged: bool
    action: str
    what: str
    path_index: int
    subject_primary: Any
    subject_secondary: Any
    object_primary: Any
    object_secondary: Any
    how: Any
    source_ip: Any
    mappings: Any


_PLANS: dict[tuple[int, int], _Plan] = {}


def _plan(norm: dict[str, Any], syscall_norm: dict[str, Any] | None) -> _Plan:
    key = (id(norm), id(syscall_norm))
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    ecs = norm.get("ecs") or {}
    category = list(ecs.get("category", []))
    types = list(ecs.get("type", []))
    merged = syscall_norm is not None and syscall_norm is not norm
    if merged:
        sys_ecs = syscall_norm.get("ecs") or {}  # type: ignore[union-attr]
        category += sys_ecs.get("category", [])
        types += sys_ecs.get("type", [])
    obj = norm.get("object") or {}
    subject = norm.get("subject") or {}
    plan = _Plan(
        tuple(category), tuple(types), merged, norm.get("action", ""), obj.get("what", ""),
        obj.get("path_index", 0), subject.get("primary"), subject.get("secondary"),
        obj.get("primary"), obj.get("secondary"), norm.get("how"), norm.get("source_ip"),
        ecs.get("mappings", []),
    )
    _PLANS[key] = plan
    return plan


def _first(ev: Event, keys: list[str] | None, attr: str, what: str) -> None:
    if not keys:
        return
    for key in keys:
        value = _get(ev, key)
        if value is not None:
            setattr(ev, attr, value)
            return
    ev.warnings.append(f"failed to set {what} using keys={keys} because they were not found")


def _mapping_value(ev: Event, src: str) -> str:
    if src == "subject.primary":
        return ev.actor_primary
    if src == "subject.secondary":
        return ev.actor_secondary
    if src == "object.primary":
        return ev.object_primary
    if src == "object.secondary":
        return ev.object_secondary
    if src.startswith("uid."):
        return ev.user_ids.get(src[4:], "")
    return ""


def _file_object(ev: Event, path_index: int) -> None:
    paths = ev.paths
    if not paths:
        return
    start = path_index if len(paths) > path_index else 0
    path = paths[start]
    for cand in paths[start:]:
        if cand.get("nametype") not in ("PARENT", "UNKNOWN"):
            path = cand
            break
    file: dict[str, Any] = {}
    if "name" in path:
        ev.object_primary = path["name"]
        file["path"] = path["name"]
    if "inode" in path:
        file["inode"] = path["inode"]
    if "rdev" in path:
        file["device"] = path["rdev"]
    if "mode" in path:
        try:
            mode = int(path["mode"], 8)
        except ValueError:
            mode = None
        if mode is not None:
            file["mode"] = "0" + format(mode & 0o777, "03o")
            # go's os.FileMode never sees its own type bits in a raw st_mode: always "file"
            ev.object_type = "file"
    if "ouid" in path:
        file["uid"] = path["ouid"]
    if "ogid" in path:
        file["gid"] = path["ogid"]
    # SELinux object context (obj_user…): a C-level look at the keys before the comprehension,
    # which most paths (no SELinux) would run for nothing
    if "\0obj_" in "\0" + "\0".join(path):
        selinux = {k[4:]: v for k, v in path.items() if k.startswith("obj_")}
        if selinux:
            file["selinux"] = selinux
    ev.file = file
