"""Place a coalesced :class:`~auditeql.audit.coalesce.Event` into an ECS document.

Two flavours, because Elastic's rules query both indices:

* ``auditbeat``: what Auditbeat's ``auditd`` module publishes (``buildMetricbeatEvent``): all
  ``auditd.data.*`` values as strings, ``event.action`` written even when empty, ``user.audit`` /
  ``user.saved`` / ``user.filesystem`` at the top level, ``auditd.sequence``, ports as strings;
* ``auditd-manager`` (default): the same document after the Auditd Manager integration's ingest
  pipeline: ``event.dataset``/``data_stream`` ``auditd_manager.auditd``, ``auditd.sequence`` →
  ``event.sequence``, non-ECS user objects under ``auditd.user``, unix socket paths as
  ``*.address``, listed counters and ports as numbers, ``-`` in keys → ``_``, empty values removed.

Both get ``host.*`` like ``add_host_metadata`` (see :mod:`auditeql.audit.host`).
"""

from __future__ import annotations

import time
from typing import Any

from auditeql.audit import tables
from auditeql.audit.coalesce import Event
from auditeql.audit.host import HostInfo

FLAVORS = ("auditd-manager", "auditbeat")
AM_DATASET = "auditd_manager.auditd"
AM_ECS_VERSION = "8.11.0"
AM_POLICY_TAG = "auditd_manager-auditd"

_USER_ID_FIELDS = {
    "uid": ("id",), "gid": ("group", "id"), "euid": ("effective", "id"), "egid": ("effective", "group", "id"),
    "suid": ("saved", "id"), "sgid": ("saved", "group", "id"), "fsuid": ("filesystem", "id"),
    "fsgid": ("filesystem", "group", "id"), "auid": ("audit", "id"),
}
_USER_NAME_FIELDS = {
    "uid": ("name",), "gid": ("group", "name"), "euid": ("effective", "name"), "egid": ("effective", "group", "name"),
    "suid": ("saved", "name"), "sgid": ("saved", "group", "name"), "fsuid": ("filesystem", "name"),
    "fsgid": ("filesystem", "group", "name"), "auid": ("audit", "name"),
}
# auditd.data keys the AM pipeline converts to long
_AM_LONG_DATA = frozenset((
    "items", "argc", "nargs", "lport", "rport", "sport", "dport", "entries", "seqno", "removed", "added",
    "changed", "old_vcpu", "new_vcpu", "spid", "opid", "nlnk_pid", "vm_pid", "audit_pid",
))
_AM_USER_MOVED = ("audit", "saved", "filesystem", "selinux", "new_auid", "old_auid")

_ts_cache: dict[int, str] = {}


def format_timestamp(seconds: int, millis: int) -> str:
    """``2026-11-29T14:07:54.517Z`` (UTC, millisecond precision, as libbeat writes it)."""
    prefix = _ts_cache.get(seconds)
    if prefix is None:
        if len(_ts_cache) > 4096:
            _ts_cache.clear()
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _ts_cache[seconds] = prefix
    return f"{prefix}.{millis:03d}Z"


def _put(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            obj[part] = nxt
        obj = nxt
    obj[path[-1]] = value


def _set_path(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """_put for the 1-3 element paths of user fields, without the generic loop."""
    n = len(path)
    if n == 1:
        obj[path[0]] = value
        return
    sub = obj.get(path[0])
    if sub is None:
        sub = obj[path[0]] = {}
    if n == 2:
        sub[path[1]] = value
        return
    sub2 = sub.get(path[1])
    if sub2 is None:
        sub2 = sub[path[1]] = {}
    sub2[path[2]] = value


def _get(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def build_document(event: Event, flavor: str = "auditd-manager", host: HostInfo | None = None, *, original: bool = False) -> dict[str, Any]:
    """The ECS document for one event in the given flavour."""
    if flavor == "auditd-manager":
        return _document(event, host, original, True)
    if flavor != "auditbeat":
        raise ValueError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
    return _document(event, host, original, False)


def auditbeat_document(ev: Event, host: HostInfo | None, *, original: bool = False) -> dict[str, Any]:
    return _document(ev, host, original, False)


def _document(ev: Event, host: HostInfo | None, original: bool, am: bool) -> dict[str, Any]:
    """One pass that builds the document in its final shape.

    ``am=False``: Auditbeat's document. ``am=True``: the same document as
    ``to_auditd_manager(auditbeat_document(ev))`` — same keys, values and key order — without
    building the Auditbeat one first (the two-step route cost a third of the normalizer's time).
    """
    result = ev.result
    outcome = ev.ecs_outcome or ("failure" if result == "fail" else result)
    event: dict[str, Any] = {"category": ev.ecs_category or ev.category}
    action = ev.action
    if not am:
        event["action"] = action
        event["outcome"] = outcome
    else:
        if action:
            event["action"] = action
        if outcome:
            event["outcome"] = outcome
    event["kind"] = "event"
    event["module"] = "auditd"
    if ev.ecs_type:
        event["type"] = ev.ecs_type
    if original:
        lines = [r.original() for r in ev.records]
        event["original"] = "\n".join(lines) if am else lines

    evdata = ev.data
    if "socket_family" in evdata or "socket_saddr" in evdata:
        data: dict[str, Any] = {}
        socket: dict[str, Any] = {}
        for key, value in evdata.items():
            if key[:7] == "socket_":
                socket[key[7:]] = value
            else:
                data[key] = value
        if socket:
            data["socket"] = socket
    else:
        data = evdata.copy()
    auditd: dict[str, Any] = {"message_type": _message_type(ev.record_type)}
    if am:
        event["dataset"] = AM_DATASET
        event["sequence"] = ev.sequence
        if "id" in data:
            event["id"] = data.pop("id")
        longs = _AM_LONG_DATA.intersection(data)
        if longs:
            for key in longs:
                data[key] = _long(data[key])
        sock = data.get("socket")
        if type(sock) is dict:
            if "port" in sock:
                sock["port"] = _long(sock["port"])
            data["socket"] = _clean_flat(sock)
        data = _clean_flat(data)
        if result != "":
            auditd["result"] = result
    else:
        auditd["sequence"] = ev.sequence
        auditd["result"] = result
    auditd["data"] = data
    session = ev.session
    if session and session != "unset":
        auditd["session"] = session

    doc: dict[str, Any] = {"@timestamp": format_timestamp(ev.seconds, ev.millis), "event": event, "auditd": auditd}

    # names (go-libaudit ResolveIDs): actor, every *uid/*gid, file owner/group
    actor_primary, actor_secondary = ev.actor_primary, ev.actor_secondary
    if host is not None:
        if actor_primary and actor_primary != "unset":
            actor_primary = host.user_name(actor_primary) or actor_primary
        if actor_secondary and actor_secondary != "unset":
            actor_secondary = host.user_name(actor_secondary) or actor_secondary
    doc["user"] = _user_object(ev.user_ids, ev.selinux, host, ev.user_key)

    proc = ev.process
    args = ev.args
    if proc or args:
        process: dict[str, Any] = {}
        pid = _int(proc.get("pid"))
        if pid is not None:
            process["pid"] = pid
        ppid = _int(proc.get("ppid"))
        if ppid is not None:
            process["parent"] = {"pid": ppid}
        for key, ecs_field in _PROCESS_TEXT:
            value = proc.get(key)
            if value:
                process[ecs_field] = value
        if args:
            process["args"] = args
        doc["process"] = process

    file_selinux = None
    if ev.file is not None:
        file = {k: v for k, v in ev.file.items() if v}
        if host is not None:
            if file.get("uid"):
                owner = host.user_name(file["uid"])
                if owner:
                    file["owner"] = owner
            if file.get("gid"):
                group = host.group_name(file["gid"])
                if group:
                    file["group"] = group
        if am and "selinux" in file:
            file_selinux = file.pop("selinux")
        doc["file"] = file
    if ev.source is not None:
        doc["source"] = _am_address(ev.source) if am else dict(ev.source)
    if ev.destination is not None:
        doc["destination"] = _am_address(ev.destination) if am else dict(ev.destination)
    if ev.direction:
        doc["network"] = {"direction": ev.direction}
    tags = ev.tags
    if tags:
        if am:
            doc["tags"] = [t for t in tags if t] + [AM_POLICY_TAG]
        else:
            doc["tags"] = list(tags)

    summary: dict[str, Any] = {}
    if actor_primary or actor_secondary:
        actor = summary["actor"] = {}
        if actor_primary:
            actor["primary"] = actor_primary
        if actor_secondary:
            actor["secondary"] = actor_secondary
    if ev.object_primary or ev.object_secondary or ev.object_type:
        obj = summary["object"] = {}
        if ev.object_primary:
            obj["primary"] = ev.object_primary
        if ev.object_secondary:
            obj["secondary"] = ev.object_secondary
        if ev.object_type:
            obj["type"] = ev.object_type
    if ev.how:
        summary["how"] = ev.how
    if summary:
        auditd["summary"] = summary
    paths = ev.paths
    if paths:
        auditd["paths"] = [_clean_flat(p) for p in paths] if am else paths

    if ev.entities:
        _ecs_entities(ev, doc, host)
    _drop_redundant_effective(doc)
    if host is not None:
        doc["host"] = host.for_node(ev.node)
    doc["service"] = {"type": "auditd"}
    if not am:
        return doc

    # -- what the Auditd Manager ingest pipeline changes beyond the above
    doc["data_stream"] = {"type": "logs", "dataset": AM_DATASET, "namespace": "default"}
    doc["ecs"] = {"version": AM_ECS_VERSION}
    if not tags:
        doc["tags"] = [AM_POLICY_TAG]
    user = doc["user"]
    if user:
        if "-" in "".join(user):
            user = doc["user"] = {k.replace("-", "_"): v for k, v in user.items()}
        moved = None
        for k in _AM_USER_MOVED:
            if k in user:
                if moved is None:
                    moved = {}
                moved[k] = user.pop(k)
        if moved is not None:
            if "selinux" in moved:
                selinux = _clean_flat(moved["selinux"])
                if selinux:
                    moved["selinux"] = selinux
                else:
                    del moved["selinux"]
            if moved:
                auditd["user"] = moved
    if file_selinux is not None:
        selinux = _clean_flat(file_selinux)
        if selinux:
            auditd["file"] = {"selinux": selinux}
    if not user:
        del doc["user"]
    if "file" in doc and not doc["file"]:
        del doc["file"]
    return doc


def _am_address(addr: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(addr)
    if "path" in out:
        out["address"] = out.pop("path")
    if "port" in out:
        out["port"] = _long(out["port"])
    return out


# (ids, selinux, host) -> the user object; the same handful of identities recur in every log
_USER_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def _user_object(user_ids: dict[str, str], selinux: dict[str, str], host: HostInfo | None,
                 ids_key: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """``user.*`` as Auditbeat's addUser builds it (ids, then names), copied from a cache.

    ``ids_key``: ``(tuple(user_ids.items()), tuple(selinux.items()))`` when the caller has it.
    """
    # names come from this machine's passwd/group whatever the HostInfo: only its presence matters
    if ids_key is None:
        ids_key = (tuple(user_ids.items()), tuple(selinux.items()))
    key = (ids_key, host is not None)
    blob = _USER_CACHE.get(key)
    if blob is None:
        names: dict[str, str] = {}
        if host is not None:
            for k, value in user_ids.items():
                if value in ("", "unset"):
                    continue
                name = host.user_name(value) if k.endswith("uid") else host.group_name(value)
                if name:
                    names[k] = name
        cached = {}
        for k, value in user_ids.items():
            if value == "unset":
                continue
            _set_path(cached, _USER_ID_FIELDS.get(k) or (k, "id"), value)
            if selinux:
                cached["selinux"] = dict(selinux)
        for k, value in names.items():
            _set_path(cached, _USER_NAME_FIELDS.get(k) or (k, "name"), value)
        if len(_USER_CACHE) > 1024:
            _USER_CACHE.clear()
        blob = _USER_CACHE[key] = cached
    # A fresh top level; the nested objects (group, saved, audit…) are shared between the
    # documents of the same identities and never written to: _ecs_entities copies one before
    # changing it. (Documents are read-only for their consumers, as host.* already is.)
    return blob.copy()


_MESSAGE_TYPES: dict[int, str] = {}


def _message_type(record_type: int) -> str:
    name = _MESSAGE_TYPES.get(record_type)
    if name is None:
        name = _MESSAGE_TYPES[record_type] = tables.type_name(record_type).lower()
    return name


#: ECS ``long`` fields are signed 64-bit (and NDJSON writers refuse more): a bigger number in a
#: record (only a damaged or forged one holds such a pid) is not a number for them.
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


#: process strings of a coalesced event -> ECS ``process.*`` field (set when non-empty)
_PROCESS_TEXT = (("title", "title"), ("name", "name"), ("exe", "executable"), ("cwd", "working_directory"))


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if _LONG_MIN <= n <= _LONG_MAX else None


def _ecs_entities(ev: Event, doc: dict[str, Any], host: HostInfo | None) -> None:
    related: list[str] = []
    for dest in ("user", "user.effective", "user.target", "user.changes", "group"):
        ent = ev.entities.get(dest)
        if ent is None:
            continue
        ent_id, ent_name = ent.id, ent.name
        if host is not None and (ent_id == "") != (ent_name == "") and ent_id != "unset":
            is_group = dest.startswith("group")
            if ent_id:
                ent_name = host.group_name(ent_id) if is_group else host.user_name(ent_id)
            else:
                ent_id = "" if is_group else host.user_id(ent_name)
        if not ent_id and not ent_name:
            continue
        if ent_id == "unset":
            ent_id = ""
        path = tuple(dest.split("."))
        if len(path) == 2:
            # copy-on-write: user.effective & co. may be shared with other documents (_user_object)
            parent = doc.get(path[0])
            if isinstance(parent, dict):
                sub = parent.get(path[1])
                if isinstance(sub, dict):
                    parent[path[1]] = sub.copy()
        if ent_id:
            _put(doc, path + ("id",), ent_id)
        else:
            _delete(doc, path + ("id",))
        if ent_name:
            _put(doc, path + ("name",), ent_name)
            if dest != "group" and ent_name not in related:
                related.append(ent_name)
        else:
            _delete(doc, path + ("name",))
    if related:
        doc["related"] = {"user": related}


def _delete(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = _get(obj, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _drop_redundant_effective(doc: dict[str, Any]) -> None:
    user = doc.get("user")
    if not isinstance(user, dict) or "effective" not in user:
        return
    eff = user["effective"]
    for key in ("id", "name"):
        value = user.get(key)
        if value and isinstance(eff, dict) and eff.get(key) == value:
            del user["effective"]
            return


# -- Auditd Manager ingest pipeline ---------------------------------------------------------

def to_auditd_manager(doc: dict[str, Any]) -> dict[str, Any]:
    """Apply the Auditd Manager integration's ingest pipeline to an Auditbeat document."""
    event = doc["event"]
    auditd = doc["auditd"]
    event["dataset"] = AM_DATASET
    doc["data_stream"] = {"type": "logs", "dataset": AM_DATASET, "namespace": "default"}
    doc["ecs"] = {"version": AM_ECS_VERSION}
    if "sequence" in auditd:
        event["sequence"] = auditd.pop("sequence")
    data = auditd.get("data", {})
    if "id" in data:
        event["id"] = data.pop("id")
    user = doc.get("user")
    if isinstance(user, dict):
        if "-" in "".join(user):
            user = doc["user"] = {k.replace("-", "_"): v for k, v in user.items()}
        moved = {k: user.pop(k) for k in _AM_USER_MOVED if k in user}
        if moved:
            auditd["user"] = moved
    file = doc.get("file")
    if isinstance(file, dict) and "selinux" in file:
        auditd.setdefault("file", {})["selinux"] = file.pop("selinux")
    for side in ("source", "destination"):
        addr = doc.get(side)
        if isinstance(addr, dict):
            if "path" in addr:
                addr["address"] = addr.pop("path")
            if "port" in addr:
                addr["port"] = _long(addr["port"])
    for key in _AM_LONG_DATA.intersection(data):
        data[key] = _long(data[key])
    socket = data.get("socket")
    if isinstance(socket, dict) and "port" in socket:
        socket["port"] = _long(socket["port"])
    if event.get("outcome") == "fail":
        event["outcome"] = "failure"
    tags = doc.get("tags") or []
    doc["tags"] = list(tags) + [AM_POLICY_TAG]
    if isinstance(event.get("original"), list):
        event["original"] = "\n".join(event["original"])
    # Empty values and "-" in keys can only occur where record values land: event.action/outcome,
    # auditd.{result,data,paths,file}, user.*; the other subtrees are built non-empty. Flat dicts
    # are checked with C-level scans first and rebuilt only when needed. process.args keeps empty
    # arguments on purpose (docs/deviations.md).
    for key in ("action", "outcome"):
        if event.get(key) == "":
            del event[key]
    if auditd.get("result") == "":
        del auditd["result"]
    if isinstance(socket, dict):
        data["socket"] = _clean_flat(socket)
    auditd["data"] = _clean_flat(data)
    paths = auditd.get("paths")
    if paths:
        auditd["paths"] = [_clean_flat(p) for p in paths]
    # user ids and names are never empty (empty record values are dropped, names set only when
    # found); only the SELinux context parts can be
    for holder in (auditd.get("file"), auditd.get("user")):
        if holder is not None and "selinux" in holder:
            selinux = _clean_flat(holder["selinux"])
            if selinux:
                holder["selinux"] = selinux
            else:
                del holder["selinux"]
    for holder, key in ((auditd, "file"), (auditd, "user"), (doc, "user"), (doc, "file")):
        if key in holder and not holder[key]:
            del holder[key]
    doc["tags"] = [t for t in doc["tags"] if t]
    return doc


def _clean_flat(d: dict[str, Any]) -> dict[str, Any]:
    """_clean for a dict of strings (plus a nested dict or two), fast when nothing is to do."""
    if "" in d.values() or "-" in "".join(d):
        return _clean(d)
    return d


def _long(value: Any) -> Any:
    if isinstance(value, str):
        try:
            n = int(value)
        except ValueError:
            return value
        return n if _LONG_MIN <= n <= _LONG_MAX else value
    return value


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    """Drop null / "" / {} / [] recursively and turn ``-`` in keys into ``_`` (AM pipeline)."""
    out = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            if not item:
                continue
        elif kind is dict:
            item = _clean(item)
            if not item:
                continue
        elif kind is list:
            item = _clean_list(item)
            if not item:
                continue
        elif item is None:
            continue
        if "-" in key:
            key = key.replace("-", "_")
        out[key] = item
    return out


def _clean_list(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        kind = type(item)
        if kind is str:
            if item:
                out.append(item)
        elif kind is dict:
            item = _clean(item)
            if item:
                out.append(item)
        elif kind is list:
            item = _clean_list(item)
            if item:
                out.append(item)
        elif item is not None:
            out.append(item)
    return out
